//! The migration controller's hold, with the real daemon in the
//! migration lab.

use std::net::IpAddr;

use super::common;

/// The migration controller's hold (AF_XDP sockets, the frames taken off
/// them kept per service): with `hold_max_frames = 100`, a held service
/// sent 150 datagrams keeps the first 100 and refuses 50, counted
/// `held_refused_full`; the switch releases the 100, whole and in order,
/// and the service is reached directly after it.
#[test]
fn migration_hold_full_refuses_new_frames_and_releases_the_held_ones() {
    use std::{
        io::{Read, Write},
        net::{TcpStream, UdpSocket},
        sync::mpsc,
        time::{Duration, Instant},
    };

    use control::{
        api::Request,
        migration::{Body, Frame, NetworkInfo, VERSION},
    };
    use testlab::{
        migration_lab::{Lab, KEY},
        topo::{enter_netns, in_netns},
    };

    if !common::kernel_available("migration_hold_full_refuses_new_frames") {
        return;
    }
    let mut lab = Lab::new("x", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    lab.daemon(
        "edge",
        r#"
[migration.controller]
listen = "127.0.0.1:7700"
interface = "eth0"
hold_max_frames = 100
[[migration.controller.network]]
id = 1
name = "net1"
via = "eth1"
next_hop_mac = "02:00:00:00:01:0a"
[[migration.controller.service]]
address = "10.99.0.80"
network = 1
"#,
    );
    let service: IpAddr = "10.99.0.80".parse().unwrap();
    let ns = |r: &str| format!("/run/netns/{}", lab.name(r));
    let ask = |body: Body| -> Body {
        let bytes = Frame {
            v: VERSION,
            id: edgeplane::migration::now_ms(),
            deadline_ms: edgeplane::migration::now_ms() + 3000,
            body,
        }
        .encode(KEY.as_bytes());
        in_netns(&ns("edge"), move || {
            let mut c = TcpStream::connect("127.0.0.1:7700")?;
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            c.write_all(&bytes)?;
            let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
            loop {
                if let Some(f) = Frame::take(&mut buf, KEY.as_bytes())? {
                    return Ok(f.body);
                }
                let n = c.read(&mut chunk)?;
                anyhow::ensure!(n > 0, "closed without an answer");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .unwrap()
    };
    let stat = |name: &str| -> u64 {
        let rows = edgeplane::client::call(&lab.sock("edge"), &Request::Stats).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["program"] == "controller" && r["name"] == name)
            .unwrap_or_else(|| panic!("no controller/{name} in {rows}"))["packets"]
            .as_u64()
            .unwrap()
    };
    let held = || -> u64 {
        let st = edgeplane::client::call(&lab.sock("edge"), &Request::Status).unwrap();
        st["migration"]["controller"]["held_frames"]
            .as_u64()
            .unwrap()
    };

    // The service on server 1 (the lab put its address on s1's lo).
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let s1 = ns("s1");
    std::thread::spawn(move || {
        enter_netns(&s1).unwrap();
        let s = UdpSocket::bind("10.99.0.80:9000").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 2048];
        loop {
            if let Ok((n, _)) = s.recv_from(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        }
    });
    let term = ns("term");
    let send = move |payloads: Vec<Vec<u8>>| {
        in_netns(&term, move || {
            let s = UdpSocket::bind("10.7.0.2:4000")?;
            for p in payloads {
                s.send_to(&p, "10.99.0.80:9000")?;
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(())
        })
        .unwrap()
    };
    // Neighbours resolved, the path there: one datagram straight through.
    let t0 = Instant::now();
    loop {
        send(vec![b"warm-up".to_vec()]);
        if rx.recv_timeout(Duration::from_millis(300)).is_ok() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the service is not reached"
        );
    }
    while rx.try_recv().is_ok() {}

    assert_eq!(ask(Body::Hold { service }), Body::Ok);
    let payloads: Vec<Vec<u8>> = (0..150u32)
        .map(|i| format!("datagram {i:03}").into_bytes())
        .collect();
    send(payloads.clone());
    let t0 = Instant::now();
    while (held(), stat("held_refused_full")) != (100, 50) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "held {} refused {}",
            held(),
            stat("held_refused_full")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(rx.try_recv().is_err(), "nothing passes a held service");

    let done = ask(Body::SwitchRequest {
        service,
        to: NetworkInfo {
            name: "net1".into(),
            id: 1,
            controller: None,
            via: None,
            next_hop_mac: None,
        },
    });
    assert!(matches!(done, Body::SwitchDone { .. }), "{done:?}");
    let mut got = Vec::new();
    while let Ok(p) = rx.recv_timeout(Duration::from_millis(500)) {
        got.push(p);
    }
    assert_eq!(
        got,
        payloads[..100],
        "the 100 held, whole and in order; the 50 refused never"
    );
    assert_eq!(held(), 0);
    send(vec![b"after".to_vec()]);
    assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), b"after");
    assert_eq!(stat("held_refused_full"), 50, "counted once each");
    println!(
        "migration hold: 100/100 frames held, 50 refused (held_refused_full +50), the 100 released unchanged and in order"
    );
}
