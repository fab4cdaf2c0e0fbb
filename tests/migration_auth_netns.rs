//! Migration frames are authenticated (HMAC-SHA256 with `migration.key`)
//! and void after their deadline, against the real connection controller
//! of the migration lab: a forged switch request changes nothing, a
//! replayed hold is answered from the first answer and holds nothing, and
//! once its deadline passed it is refused; the service answers from
//! server 1 throughout and each refusal is counted.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use control::{
    api::Request,
    migration::{Body, Frame, NetworkInfo, VERSION},
};
use testlab::{
    migration_lab::{Lab, TcpClient, KEY},
    topo::in_netns,
};

const SERVICE: &str = "10.99.0.80";

/// Send raw bytes to the controller (127.0.0.1:7700 in the edge host) and
/// read its one answer, checked with the lab's key.
fn exchange(lab: &Lab, bytes: &[u8]) -> Frame {
    let bytes = bytes.to_vec();
    in_netns(&format!("/run/netns/{}", lab.name("edge")), move || {
        let mut c = TcpStream::connect("127.0.0.1:7700")?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(&bytes)?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(f) = Frame::take(&mut buf, KEY.as_bytes())? {
                return Ok(f);
            }
            let n = c.read(&mut chunk)?;
            anyhow::ensure!(n > 0, "closed without an answer");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .unwrap()
}

fn frame(id: u64, deadline_ms: u64, body: Body) -> Frame {
    Frame {
        v: VERSION,
        id,
        deadline_ms,
        body,
    }
}

fn now_ms() -> u64 {
    edgeplane::migration::now_ms()
}

fn net(id: u32) -> NetworkInfo {
    NetworkInfo {
        name: format!("net{id}"),
        id,
        controller: None,
        via: None,
        next_hop_mac: None,
    }
}

/// The service's network as the controller reports it.
fn steered(lab: &Lab) -> u64 {
    let st = edgeplane::client::call(&lab.sock("edge"), &Request::Status).unwrap();
    let services = &st["migration"]["controller"]["services"];
    services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"] == SERVICE)
        .unwrap_or_else(|| panic!("{services}"))["network"]
        .as_u64()
        .unwrap()
}

fn frames_counter(lab: &Lab, name: &str) -> u64 {
    let rows = edgeplane::client::call(&lab.sock("edge"), &Request::Stats).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["program"] == "frames" && r["name"] == name)
        .unwrap_or_else(|| panic!("no frames/{name} in {rows}"))["packets"]
        .as_u64()
        .unwrap()
}

#[test]
fn forged_and_replayed_frames_change_nothing() {
    if !common::kernel_available("migration_auth") {
        return;
    }
    let _serial = common::serial();
    let mut lab = Lab::new("h", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    lab.start();
    let term = format!("/run/netns/{}", lab.name("term"));
    // The terminal's connection, asked once per step: answered by s1's
    // counter, the count going up by one each time.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let (atx, arx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        testlab::topo::enter_netns(&term).unwrap();
        let mut c = TcpClient::connect(Duration::from_secs(3)).unwrap();
        for req in rx {
            if atx.send(c.ask(&req)).is_err() {
                return;
            }
        }
    });
    let mut asked = 0;
    let mut ask = |what: &str| {
        asked += 1;
        tx.send(format!("{what}{asked}")).unwrap();
        arx.recv().unwrap()
    };
    let first = ask("before").expect("the service answers");
    assert_eq!(steered(&lab), 1);

    // A switch to network 2 under another key, and the same frame with
    // the tag of a genuine one pasted on: refused, nothing steered.
    let switch = frame(
        900,
        now_ms() + 2000,
        Body::SwitchRequest {
            service: SERVICE.parse().unwrap(),
            to: net(2),
        },
    );
    let answer = exchange(&lab, &switch.encode(b"not the lab's key, forged"));
    assert!(
        matches!(&answer.body, Body::Error { reason } if reason.contains("not authenticated")),
        "{answer:?}"
    );
    let genuine = frame(901, now_ms() + 2000, Body::Ok).encode(KEY.as_bytes());
    let mut pasted = switch.encode(b"x");
    let n = pasted.len();
    pasted[n - 32..].copy_from_slice(&genuine[genuine.len() - 32..]);
    exchange(&lab, &pasted);
    assert_eq!(steered(&lab), 1, "a forged switch steers nothing");
    assert_eq!(frames_counter(&lab, "frames_unauthenticated"), 2);
    assert_eq!(ask("forged"), Some(first + 1), "s1 still answers");

    // A genuine hold, released by a genuine switch back to network 1.
    let deadline = now_ms() + 2500;
    let hold = frame(
        910,
        deadline,
        Body::Hold {
            service: SERVICE.parse().unwrap(),
        },
    )
    .encode(KEY.as_bytes());
    assert_eq!(exchange(&lab, &hold).body, Body::Ok);
    let back = frame(
        911,
        now_ms() + 2000,
        Body::SwitchRequest {
            service: SERVICE.parse().unwrap(),
            to: net(1),
        },
    );
    assert!(matches!(
        exchange(&lab, &back.encode(KEY.as_bytes())).body,
        Body::SwitchDone { .. }
    ));
    assert_eq!(ask("released"), Some(first + 2));

    // The hold replayed within its deadline: its first answer, not held.
    assert_eq!(exchange(&lab, &hold).body, Body::Ok);
    assert_eq!(frames_counter(&lab, "requests_answered_again"), 1);
    assert_eq!(
        ask("replayed"),
        Some(first + 3),
        "a replayed hold holds nothing: the service answers at once"
    );

    // After its deadline: refused as void.
    while now_ms() <= deadline + 50 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let late = exchange(&lab, &hold);
    assert!(
        matches!(&late.body, Body::Error { reason } if reason.contains("deadline")),
        "{late:?}"
    );
    assert_eq!(frames_counter(&lab, "requests_expired"), 1);
    assert_eq!(ask("late"), Some(first + 4));
    assert_eq!(steered(&lab), 1);
    assert_eq!(lab.status("s2")["count"], 0, "nothing reached server 2");
}
