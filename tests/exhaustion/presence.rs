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

/// History and entity-tags in `s` (empty): under `max_history = 100`,
/// 300 changes of 3 users keep exactly the newest 100 rows (each user's
/// last row is its current status), 200 counted pruned; under
/// `max_etags = 10`, the 11th tag for a new publication is refused
/// (`StoreError::EtagsFull`, `etag_room` false) and the 10 stay valid, a
/// replacement is taken, and once they expire there is room again.
fn presence_history_and_etags_bounded(s: &mut control::presence::Store) -> String {
    use control::{presence::StoreError, sip_monitor::track::Status};

    s.set_max_history(100);
    let users = ["h0@example.com", "h1@example.com", "h2@example.com"];
    let statuses = [Status::Online, Status::Talking, Status::Offline];
    for i in 0..300usize {
        let st = statuses[(i / 3) % 3];
        s.apply(users[i % 3], "10.5.0.1", st, i as f64, Some(1e10))
            .unwrap();
    }
    let kept: Vec<_> = users.iter().map(|u| s.history(u).unwrap()).collect();
    let total: usize = kept.iter().map(Vec::len).sum();
    assert_eq!(total, 100, "exactly max_history rows kept");
    assert_eq!(s.history_pruned(), 200);
    for (u, rows) in users.iter().zip(&kept) {
        let now = &s.show(Some(u)).unwrap()[0];
        let last = rows.last().unwrap();
        assert_eq!(
            (&last.status, last.at),
            (&now.status, now.updated),
            "{u}: the newest kept"
        );
        // The oldest kept are from the last 100 changes (at 200 on).
        assert!(rows.iter().all(|r| r.at >= 200.0), "{u}: {rows:?}");
    }
    s.set_max_etags(10);
    let tags: Vec<String> = (0..10)
        .map(|i| {
            s.etag_issue(users[i % 3], None, 1000.0, 2000.0)
                .unwrap()
                .unwrap()
        })
        .collect();
    assert!(!s.etag_room(1000.0).unwrap(), "full");
    match s.etag_issue("new@example.com", None, 1000.0, 2000.0) {
        Err(StoreError::EtagsFull { max: 10 }) => {}
        other => panic!("the 11th tag: {other:?}"),
    }
    assert_eq!(s.etags().unwrap(), 10);
    for (i, t) in tags.iter().enumerate() {
        assert!(
            s.etag_valid(t, users[i % 3], 1001.0).unwrap(),
            "tag {i} kept"
        );
    }
    // A refresh replaces its tag (no new room needed).
    let next = s
        .etag_issue(users[0], Some(&tags[0]), 1001.0, 2001.0)
        .unwrap()
        .expect("replaced");
    assert_eq!(s.etags().unwrap(), 10);
    assert!(s.etag_valid(&next, users[0], 1002.0).unwrap());
    // Once expired, they are purged and there is room.
    assert!(s.etag_room(2000.5).unwrap());
    assert_eq!(s.etags().unwrap(), 1, "the replacement lives to 2001");
    "history: 300 changes under max_history 100, 100 newest kept, 200 pruned; entity-tags: 10/10, the 11th refused (EtagsFull), the 10 still valid, a replacement taken, room again after they expire".to_string()
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
    let mut s = control::presence::Store::open(&dir.join("history.db")).unwrap();
    let more = presence_history_and_etags_bounded(&mut s);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    println!("presence store (SQLite): {figures}");
    println!("presence store (SQLite): {more}");
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
    let mut s =
        control::presence::Store::open_url(&pg.database("history").unwrap()).expect("connect");
    let more = presence_history_and_etags_bounded(&mut s);
    println!("presence store (PostgreSQL): {more}");
}

/// A presence server on loopback (its config `[presence]` plus `extra`),
/// and a UDP client that asks it.
struct ServerLab {
    store: std::sync::Arc<std::sync::Mutex<control::presence::Store>>,
    counters: std::sync::Arc<std::sync::Mutex<edgeplane::presence::PresenceCounters>>,
    c: tokio::net::UdpSocket,
    to: String,
    local: String,
}

impl ServerLab {
    /// Send `msg`; the first message back within 3 s.
    async fn ask(&self, msg: String) -> String {
        self.c.send_to(msg.as_bytes(), &self.to).await.unwrap();
        self.recv().await
    }

    async fn recv(&self) -> String {
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(std::time::Duration::from_secs(3), self.c.recv(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// A PUBLISH of `user{i}`'s `status` (Call-ID per user), with an
    /// entity-tag or not.
    fn publish(
        &self,
        i: u32,
        cseq: u32,
        status: control::sip_monitor::track::Status,
        etag: Option<&str>,
    ) -> String {
        use control::presence;
        let user = format!("user{i:02}@example.com");
        presence::publish(
            &user,
            &self.to,
            &self.local,
            &format!("full-{i}"),
            cseq,
            etag,
            600,
            &presence::pidf(&user, status, &[]),
        )
    }

    /// A watcher's SUBSCRIBE to alice on Call-ID `call`.
    fn subscribe(&self, call: &str, expires: u32) -> String {
        format!(
            "SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK{call}{expires}\r\nMax-Forwards: 70\r\nFrom: <sip:w-{call}@example.com>;tag=w{call}\r\nTo: <sip:alice@example.com>\r\nCall-ID: {call}\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:w@{l}>\r\nEvent: presence\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n",
            l = self.local,
            cseq = 1 + expires,
        )
    }
}

/// Run `f` against a presence server started with `extra` config keys,
/// its database in a directory of its own (removed after).
fn with_server<T>(tag: &str, extra: &str, f: impl AsyncFnOnce(&ServerLab) -> T) -> T {
    let dir =
        std::env::temp_dir().join(format!("edgeplane-exhaustion-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = control::config::Config::parse(&format!(
        "[node]\nname = \"p\"\n[presence]\nlisten = \"127.0.0.1:{port}\"\ndatabase = {:?}\nallow = [\"127.0.0.0/8\"]\n{extra}",
        dir.join("presence.db").display().to_string()
    ))
    .unwrap()
    .presence
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(async move {
        let server = edgeplane::presence::Server::start(cfg).await.unwrap();
        let (store, counters) = (server.store.clone(), server.counters.clone());
        tokio::spawn(server.run());
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = c.local_addr().unwrap().to_string();
        let lab = ServerLab {
            store,
            counters,
            c,
            to: format!("127.0.0.1:{port}"),
            local,
        };
        f(&lab).await
    });
    rt.shutdown_background();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// The presence server with `max_statuses = 20`: 20 users publish (200),
/// 5 new users are answered 503 with a Warning and counted
/// `refused_store_full` (and `answers_503`), the store unchanged; a
/// publication of a held user still goes through.
#[test]
fn presence_server_full_store_answers_503_and_counts() {
    use control::sip_monitor::track::Status;

    let (code, counted, answers_503, rows_same) =
        with_server("server", "max_statuses = 20\n", async |lab: &ServerLab| {
            for i in 0..20 {
                let a = lab.ask(lab.publish(i, 1, Status::Online, None)).await;
                assert!(a.starts_with("SIP/2.0 200"), "{a}");
            }
            let rows = lab.store.lock().unwrap().show(None).unwrap();
            assert_eq!(rows.len(), 20);
            let mut code = String::new();
            for i in 20..25 {
                let a = lab.ask(lab.publish(i, 1, Status::Online, None)).await;
                assert!(a.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{a}");
                assert!(
                    a.contains("Warning: 399 presence \"store full: 20 statuses\""),
                    "{a}"
                );
                code = a.lines().next().unwrap().to_string();
            }
            let same = lab.store.lock().unwrap().show(None).unwrap() == rows;
            // A held user's new status is taken (no new row).
            let a = lab.ask(lab.publish(3, 2, Status::Talking, None)).await;
            assert!(a.starts_with("SIP/2.0 200"), "{a}");
            assert_eq!(
                lab.store
                    .lock()
                    .unwrap()
                    .show(Some("user03@example.com"))
                    .unwrap()[0]
                    .status,
                "talking"
            );
            let k = lab.counters.lock().unwrap().clone();
            (
                code,
                k.refused_store_full,
                k.answers.get(&503).copied().unwrap_or(0),
                same,
            )
        });
    assert!(rows_same, "the refused publications changed no row");
    assert_eq!((counted, answers_503), (5, 5), "each refusal counted once");
    println!("presence server: 20/20 statuses, 5 new users refused ({code}, refused_store_full +{counted}), 0 rows changed, an update of a held user accepted");
}

/// `max_etags = 6` and `max_subscriptions = 3`: 6 new publications take
/// the 6 entity-tags, a 7th is answered 503 before anything is stored
/// (counted `refused_etags_full`), and a refresh with a held tag is taken;
/// 3 watchers subscribe (200 and a NOTIFY each), a 4th is answered 503
/// (counted `refused_subscriptions_full`), a held one refreshes, and
/// once one unsubscribes there is room for a new one.
#[test]
fn presence_server_full_etags_and_subscriptions_answer_503() {
    use control::sip_monitor::track::Status;

    let figures = with_server(
        "subs",
        "max_etags = 6\nmax_subscriptions = 3\n",
        async |lab: &ServerLab| {
            let mut tags = Vec::new();
            for i in 0..6 {
                let a = lab.ask(lab.publish(i, 1, Status::Online, None)).await;
                assert!(a.starts_with("SIP/2.0 200"), "{a}");
                let t = a
                    .lines()
                    .find_map(|l| l.strip_prefix("SIP-ETag: "))
                    .expect("an entity-tag")
                    .to_string();
                tags.push(t);
            }
            let rows = lab.store.lock().unwrap().show(None).unwrap();
            let history = lab
                .store
                .lock()
                .unwrap()
                .history("user02@example.com")
                .unwrap();
            let a = lab.ask(lab.publish(7, 1, Status::Online, None)).await;
            assert!(a.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{a}");
            assert!(a.contains("store full: 6 entity-tags"), "{a}");
            // A held user's new publication (no tag) is refused too, and
            // changes nothing.
            let a = lab.ask(lab.publish(2, 2, Status::Talking, None)).await;
            assert!(a.starts_with("SIP/2.0 503"), "{a}");
            assert_eq!(
                lab.store.lock().unwrap().show(None).unwrap(),
                rows,
                "nothing stored"
            );
            assert_eq!(
                lab.store
                    .lock()
                    .unwrap()
                    .history("user02@example.com")
                    .unwrap(),
                history
            );
            // The refresh of a held publication, with its tag, is taken.
            let a = lab
                .ask(lab.publish(2, 3, Status::Talking, Some(&tags[2])))
                .await;
            assert!(a.starts_with("SIP/2.0 200"), "{a}");
            assert_eq!(
                lab.store
                    .lock()
                    .unwrap()
                    .show(Some("user02@example.com"))
                    .unwrap()[0]
                    .status,
                "talking"
            );
            let etags_refused = lab.counters.lock().unwrap().refused_etags_full;

            // Subscriptions: 200, then a NOTIFY, for each of 3.
            for w in ["w1", "w2", "w3"] {
                let a = lab.ask(lab.subscribe(w, 600)).await;
                assert!(a.starts_with("SIP/2.0 200"), "{a}");
                let n = lab.recv().await;
                assert!(n.starts_with("NOTIFY "), "{n}");
            }
            let a = lab.ask(lab.subscribe("w4", 600)).await;
            assert!(a.starts_with("SIP/2.0 503"), "{a}");
            assert!(a.contains("subscriptions full: 3"), "{a}");
            // A held one refreshes (same dialog) and is notified.
            let a = lab.ask(lab.subscribe("w2", 300)).await;
            assert!(a.starts_with("SIP/2.0 200"), "{a}");
            assert!(lab.recv().await.starts_with("NOTIFY "));
            // One unsubscribes: a final NOTIFY; then there is room.
            let a = lab.ask(lab.subscribe("w1", 0)).await;
            assert!(a.starts_with("SIP/2.0 200"), "{a}");
            let n = lab.recv().await;
            assert!(n.contains("Subscription-State: terminated"), "{n}");
            let a = lab.ask(lab.subscribe("w4", 599)).await;
            assert!(a.starts_with("SIP/2.0 200"), "{a}");
            let k = lab.counters.lock().unwrap().clone();
            (etags_refused, k.refused_subscriptions_full)
        },
    );
    assert_eq!(figures, (2, 1), "each refusal counted once");
    println!("presence server: 6/6 entity-tags, 2 new publications refused (503, refused_etags_full +2, nothing stored), a refresh taken; 3/3 subscriptions, a 4th refused (503, refused_subscriptions_full +1), a held one refreshed, room again after an unsubscribe");
}
