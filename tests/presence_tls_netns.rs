//! The presence server's peers authenticated (issue 15): SIP over TLS
//! (RFC 3261 §26) from the monitor, with mutual TLS, certificates made by
//! openssl; a client without a certificate of the configured authority
//! refused at the handshake and counted; a PUBLISH from a source `allow`
//! does not name refused and counted; a replayed PUBLISH (a CSeq not
//! above the last one taken on its Call-ID, under a fresh Via branch so
//! the transaction layer cannot absorb it) refused and counted, nothing
//! stored.

mod common;

use std::{
    net::UdpSocket,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::{api::Request, sip_monitor::track::Status};
use testlab::{
    sip_lab::{uas, Net},
    topo::enter_netns,
};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (cargo xtask setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An authority `ca` and a certificate `name` it signs, with `ext`
/// (subjectAltName, extendedKeyUsage).
fn authority(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
}

fn signed(dir: &Path, ca: &str, name: &str, ext: &str) -> (PathBuf, PathBuf) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

fn counter(net: &Net, name: &str) -> u64 {
    net.counter("srv", "presence", name)
}

/// A PUBLISH of `status` for `user` from `from` (bound in namespace
/// `role`) over UDP; the answer's status line.
fn publish(net: &Net, role: &str, from: &str, call_id: &str, cseq: u32, branch: &str) -> String {
    let body = control::presence::pidf("eve@example.com", Status::Talking, &[]);
    let msg = control::presence::publish(
        "eve@example.com",
        "10.6.0.2:5070",
        from,
        call_id,
        cseq,
        None,
        600,
        &body,
    )
    .replacen(";branch=z9hG4bK", &format!(";branch=z9hG4bK{branch}"), 1);
    let ns = format!("/run/netns/{}", net.name(role));
    let from = from.to_string();
    thread::spawn(move || {
        enter_netns(&ns).unwrap();
        let s = UdpSocket::bind(&from).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(msg.as_bytes(), "10.6.0.2:5070").unwrap();
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).expect("an answer");
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
    .join()
    .unwrap()
}

#[test]
fn over_tls_only_the_monitor_is_heard_and_replays_are_refused() {
    if !common::kernel_available("presence_tls") {
        return;
    }
    let mut net = Net::new("z", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let dir = net.dir.clone();
    authority(&dir, "ca");
    authority(&dir, "rogue-ca");
    let (srv_crt, srv_key) = signed(
        &dir,
        "ca",
        "presence",
        "subjectAltName=IP:10.6.0.2\nextendedKeyUsage=serverAuth\n",
    );
    let client_ext = "subjectAltName=DNS:monitor\nextendedKeyUsage=clientAuth\n";
    let (mon_crt, mon_key) = signed(&dir, "ca", "monitor", client_ext);
    let (rogue_crt, rogue_key) = signed(&dir, "rogue-ca", "rogue", client_ext);
    let ca = dir.join("ca.crt");

    // PUBLISH only from the monitor's host (10.6.0.1), TLS on 5071 with
    // client certificates of `ca`.
    let db = dir.join("presence.db").display().to_string();
    let srv_cfg = net.presence_config_at("srv", "10.6.0.2:5070", &db).replace(
        "allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]",
        "allow = [\"10.6.0.1\"]",
    ) + &format!(
        "[presence.tls]\nlisten = \"10.6.0.2:5071\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n",
        srv_crt.display().to_string(),
        srv_key.display().to_string(),
        ca.display().to_string()
    );
    net.daemon("srv", &srv_cfg);
    let mon_cfg = net.monitor_config(
        "example.com",
        "10.6.0.2:5071",
        &format!(
            "presence_transport = \"tls\"\n[sip_monitor.presence_tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
            ca.display().to_string(),
            mon_crt.display().to_string(),
            mon_key.display().to_string()
        ),
    );
    net.daemon("mon", &mon_cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let registrar = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());

    // The monitor's publications go over TLS.
    net.register("alice@example.com", "r-a", 600);
    let deadline = Instant::now() + Duration::from_secs(15);
    while net.history("alice@example.com") != ["online"] && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let mon = net.call("mon", Request::SipMonitorStatus);
    assert_eq!(net.history("alice@example.com"), ["online"], "{mon}");
    assert_eq!(
        (&mon["presence_connections"], &mon["presence_tls_failed"]),
        (&1.into(), &0.into()),
        "{mon}"
    );
    assert_eq!(counter(&net, "tls_connections"), 1);
    assert_eq!(net.tcp_established("mon", "10.6.0.2:5071"), 1);

    // A client with another authority's certificate, and one with none:
    // refused at the handshake, counted, nothing stored.
    let srv_ns = format!("/run/netns/{}", net.name("ua"));
    for identity in [Some((rogue_crt.clone(), rogue_key.clone())), None] {
        let (ca, ns) = (ca.clone(), srv_ns.clone());
        let rejected = thread::spawn(move || {
            enter_netns(&ns).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let cfg = edgeplane::tls::client(
                    &ca,
                    identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
                )
                .unwrap();
                let tcp = tokio::net::TcpStream::connect("10.6.0.2:5071")
                    .await
                    .unwrap();
                let name = tokio_rustls::rustls::pki_types::ServerName::IpAddress(
                    std::net::IpAddr::from([10, 6, 0, 2]).into(),
                );
                // TLS 1.3: the client may finish before the server has
                // judged its certificate; the server then closes.
                match tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await
                {
                    Err(_) => true,
                    Ok(mut s) => {
                        let _ = s.write_all(b"OPTIONS sip:x SIP/2.0\r\n\r\n").await;
                        let mut b = [0u8; 64];
                        !matches!(
                            tokio::time::timeout(Duration::from_secs(3), s.read(&mut b)).await,
                            Ok(Ok(n)) if n > 0
                        )
                    }
                }
            })
        })
        .join()
        .unwrap();
        assert!(
            rejected,
            "a client without a certificate of the authority was served"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while counter(&net, "tls_refused") < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(counter(&net, "tls_refused"), 2);
    assert_eq!(counter(&net, "tls_connections"), 1);

    // A PUBLISH from the terminals' network (not allowed): refused.
    let spoofed = publish(&net, "ua", "10.5.0.2:5999", "spoof-1", 1, "s1");
    assert!(spoofed.starts_with("SIP/2.0 403"), "{spoofed}");
    assert_eq!(counter(&net, "refused_source"), 1);

    // From the monitor's host: taken once; the same CSeq (a fresh
    // branch) and a lower one are replays; a higher one is taken.
    let from = "10.6.0.1:5998";
    let first = publish(&net, "mon", from, "rp-1", 5, "a");
    assert!(first.starts_with("SIP/2.0 200"), "{first}");
    for (cseq, branch) in [(5, "b"), (4, "c")] {
        let r = publish(&net, "mon", from, "rp-1", cseq, branch);
        assert!(r.starts_with("SIP/2.0 403"), "CSeq {cseq}: {r}");
    }
    assert_eq!(counter(&net, "replayed"), 2);
    let again = publish(&net, "mon", from, "rp-1", 6, "d");
    assert!(again.starts_with("SIP/2.0 200"), "{again}");
    assert_eq!(
        net.history("eve@example.com"),
        ["talking", "talking"],
        "the two taken, not the refused"
    );
    eprintln!(
        "presence: monitor over mutual TLS; refused {} TLS clients, {} spoofed source, {} replays",
        counter(&net, "tls_refused"),
        counter(&net, "refused_source"),
        counter(&net, "replayed")
    );
    stop.store(true, Ordering::SeqCst);
    registrar.join().unwrap();
}
