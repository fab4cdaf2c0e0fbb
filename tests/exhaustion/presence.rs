//! The presence store's statuses on SQLite and PostgreSQL, and through
//! the real server.

use super::common;

/// Fill `s` to 1,000 statuses (500 users, 2 sources each) under a bound
/// of 1,000; 50 new pairs (new users, and new sources of known users)
/// are refused with `StoreError::Full`, nothing of them written (status
/// or history); the rows held are unchanged, and updates of them, which
/// add no row, still go through. Returns the figures.
fn presence_store_fills(s: &mut control::presence::Store) -> String {
    use control::{presence::StoreError, sip_monitor::track::Status};

    let max = 1_000u64;
    s.set_max_statuses(max);
    let user = |i: u64| format!("user{i:04}@example.com");
    for i in 0..max / 2 {
        for src in ["10.5.0.1", "10.5.0.2"] {
            s.apply(&user(i), src, Status::Online, 1.0 + i as f64, Some(1e10))
                .unwrap();
        }
    }
    assert_eq!(s.statuses().unwrap(), max);
    let rows = s.show(None).unwrap();
    let history: Vec<_> = (0..max / 2).map(|i| s.history(&user(i)).unwrap()).collect();
    let mut refused = 0;
    for i in 0..50 {
        let (u, src) = if i % 2 == 0 {
            (user(max + i), "10.5.0.1".to_string()) // a new user
        } else {
            (user(i), format!("10.5.1.{i}")) // a new source of one held
        };
        match s.apply(&u, &src, Status::Talking, 5e9, Some(1e10)) {
            Err(StoreError::Full { max: m }) => {
                assert_eq!(m, max);
                refused += 1;
            }
            other => panic!("{u} from {src}: {other:?}"),
        }
    }
    assert_eq!(refused, 50);
    assert_eq!(s.statuses().unwrap(), max);
    assert_eq!(s.show(None).unwrap(), rows, "no row added or changed");
    let after: Vec<_> = (0..max / 2).map(|i| s.history(&user(i)).unwrap()).collect();
    assert_eq!(after, history, "no history written for a refusal");
    assert!(s.history(&user(max)).unwrap().is_empty());
    // A held pair is updated as before (it reconciles the other source).
    assert_eq!(
        s.apply(&user(7), "10.5.0.1", Status::Talking, 6e9, Some(1e10))
            .unwrap(),
        1
    );
    assert!(s
        .show(Some(&user(7)))
        .unwrap()
        .iter()
        .all(|r| r.status == "talking"));
    let changed = s
        .show(None)
        .unwrap()
        .iter()
        .zip(&rows)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(changed, 2, "only the updated user's two rows changed");
    format!("{max}/{max} statuses, {refused} refused (StoreError::Full), 0 rows or history changed by them, an update of a held pair accepted")
}

/// The presence store's statuses on SQLite (a file, as the daemon uses).
#[test]
fn presence_store_full_refuses_new_statuses_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "edgeplane-exhaustion-presence-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = control::presence::Store::open(&dir.join("presence.db")).unwrap();
    let figures = presence_store_fills(&mut s);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    println!("presence store (SQLite): {figures}");
}

/// The same on PostgreSQL (a private server).
#[test]
fn presence_store_full_refuses_new_statuses_on_postgresql() {
    if !common::kernel_available("presence_store_full_on_postgresql") {
        return;
    }
    let pg = testlab::pg_lab::PgLab::start("exhaustion").expect("private PostgreSQL server");
    let mut s = control::presence::Store::open_url(&pg.url()).expect("connect");
    let figures = presence_store_fills(&mut s);
    println!("presence store (PostgreSQL): {figures}");
}

/// The presence server with `max_statuses = 20`: 20 users publish (200),
/// 5 new users are answered 503 with a Warning and counted
/// `refused_store_full` (and `answers_503`), the store unchanged; a
/// publication of a held user still goes through.
#[test]
fn presence_server_full_store_answers_503_and_counts() {
    use control::{presence, sip_monitor::track::Status};

    let dir = std::env::temp_dir().join(format!(
        "edgeplane-exhaustion-server-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = control::config::Config::parse(&format!(
        "[node]\nname = \"p\"\n[presence]\nlisten = \"127.0.0.1:{port}\"\ndatabase = {:?}\nallow = [\"127.0.0.0/8\"]\nmax_statuses = 20\n",
        dir.join("presence.db").display().to_string()
    ))
    .unwrap()
    .presence
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (code, counted, answers_503, rows_same) = rt.block_on(async move {
        let server = edgeplane::presence::Server::start(cfg).await.unwrap();
        let (store, counters) = (server.store.clone(), server.counters.clone());
        tokio::spawn(server.run());
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = c.local_addr().unwrap().to_string();
        let to = format!("127.0.0.1:{port}");
        let mut buf = vec![0u8; 4096];
        let publish = |i: u32, cseq: u32, status: Status| {
            let user = format!("user{i:02}@example.com");
            presence::publish(
                &user,
                &to,
                &local,
                &format!("full-{i}"),
                cseq,
                None,
                600,
                &presence::pidf(&user, status, &[]),
            )
        };
        let mut ask = async |msg: String| -> String {
            c.send_to(msg.as_bytes(), &to).await.unwrap();
            let n = tokio::time::timeout(std::time::Duration::from_secs(3), c.recv(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        for i in 0..20 {
            let a = ask(publish(i, 1, Status::Online)).await;
            assert!(a.starts_with("SIP/2.0 200"), "{a}");
        }
        let rows = store.lock().unwrap().show(None).unwrap();
        assert_eq!(rows.len(), 20);
        let mut code = String::new();
        for i in 20..25 {
            let a = ask(publish(i, 1, Status::Online)).await;
            assert!(a.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{a}");
            assert!(
                a.contains("Warning: 399 presence \"store full: 20 statuses\""),
                "{a}"
            );
            code = a.lines().next().unwrap().to_string();
        }
        let same = store.lock().unwrap().show(None).unwrap() == rows;
        // A held user's new status is taken (no new row).
        let a = ask(publish(3, 2, Status::Talking)).await;
        assert!(a.starts_with("SIP/2.0 200"), "{a}");
        assert_eq!(
            store
                .lock()
                .unwrap()
                .show(Some("user03@example.com"))
                .unwrap()[0]
                .status,
            "talking"
        );
        let k = counters.lock().unwrap().clone();
        (
            code,
            k.refused_store_full,
            k.answers.get(&503).copied().unwrap_or(0),
            same,
        )
    });
    rt.shutdown_background();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(rows_same, "the refused publications changed no row");
    assert_eq!((counted, answers_503), (5, 5), "each refusal counted once");
    println!("presence server: 20/20 statuses, 5 new users refused ({code}, refused_store_full +{counted}), 0 rows changed, an update of a held user accepted");
}
