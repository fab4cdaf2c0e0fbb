//! The coordinator's store and reload, on SQLite and on PostgreSQL.
use super::*;
use control::migration::{NetworkInfo, ServerInfo};

fn net(name: &str, id: u32) -> NetworkInfo {
    NetworkInfo {
        name: name.into(),
        id,
        controller: None,
        via: None,
        next_hop_mac: None,
    }
}

fn server(name: &str, network: &str) -> ServerInfo {
    ServerInfo {
        name: name.into(),
        address: IpAddr::from([10, 0, 0, 1]),
        network: network.into(),
        agent: "10.0.0.1:7600".parse().unwrap(),
    }
}

/// The store's servers and networks change at runtime, kept across a
/// restart, and nothing is removed that something still uses.
#[test]
fn servers_and_networks_are_added_and_removed_safely() {
    let dir = std::env::temp_dir().join(format!("ep-coord-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    servers_and_networks_on(dir.join("m.db"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Root may run a private PostgreSQL server (as its `postgres` user);
/// others skip, except under CI=true.
/// One at a time: the private servers of one test process share a
/// port number.
fn pg_lab(tag: &str) -> Option<(std::sync::MutexGuard<'static, ()>, testlab::pg_lab::PgLab)> {
    static ONE: Mutex<()> = Mutex::new(());
    if unsafe { libc::geteuid() } != 0 {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{tag}: needs root"
        );
        eprintln!("SKIP {tag}: needs root for a private PostgreSQL server");
        return None;
    }
    let guard = ONE.lock().unwrap_or_else(|e| e.into_inner());
    Some((
        guard,
        testlab::pg_lab::PgLab::start(tag).expect("private PostgreSQL server"),
    ))
}

/// Issue 12: the same store on PostgreSQL by URL.
#[test]
fn servers_and_networks_on_postgresql() {
    let Some((_one, pg)) = pg_lab("coord") else {
        return;
    };
    servers_and_networks_on(pg.url().into());
}

fn servers_and_networks_on(database: std::path::PathBuf) {
    let cfg = MigrationCoordinator {
        controller: Some("127.0.0.1:7700".parse().unwrap()),
        listen: None,
        database,
        timeout_ms: 1000,
        rollback_retry_ms: 0,
        servers: vec![server("s1", "n1")],
        networks: vec![net("n1", 1)],
        processes: vec![control::migration::config::ProcessPlace {
            name: "p".into(),
            server: "s1".into(),
            service: IpAddr::from([192, 0, 2, 80]),
        }],
    };
    let mut c = Coordinator::open(cfg.clone(), Auth::new("coordinator test key")).unwrap();
    assert!(c
        .add_server(&server("s2", "n2"))
        .unwrap_err()
        .contains("no network \"n2\""));
    c.add_network(&NetworkInfo {
        via: Some("eth2".into()),
        next_hop_mac: Some("02:00:00:00:02:0a".parse().unwrap()),
        ..net("n2", 2)
    })
    .unwrap();
    assert!(c
        .add_network(&net("n2b", 2))
        .unwrap_err()
        .contains("id 2 exists"));
    assert!(c
        .add_network(&NetworkInfo {
            via: Some("eth2".into()),
            ..net("n3", 3)
        })
        .unwrap_err()
        .starts_with("via:"));
    c.add_server(&server("s2", "n2")).unwrap();
    assert!(c
        .add_server(&server("s2", "n2"))
        .unwrap_err()
        .contains("exists already"));
    // An agent that is no ADDR:PORT cannot even be said: the request is refused when read.
    let bad = serde_json::json!({ "name": "s3", "address": "10.8.3.10", "network": "n2", "agent": "nowhere" });
    assert!(serde_json::from_value::<ServerInfo>(bad).is_err());
    assert!(
        c.remove_server("s1")
            .unwrap_err()
            .contains("p run on \"s1\""),
        "a server with a process stays"
    );
    assert!(
        c.remove_network("n2").unwrap_err().contains("s2"),
        "a network with a server stays"
    );
    drop(c);
    // Kept across a restart, with the default controller filled in.
    let mut c = Coordinator::open(cfg, Auth::new("coordinator test key")).unwrap();
    let n2 = c
        .networks()
        .unwrap()
        .into_iter()
        .find(|n| n.name == "n2")
        .unwrap();
    assert_eq!(
        (n2.controller.map(|c| c.to_string()), n2.via.as_deref()),
        (Some("127.0.0.1:7700".to_string()), Some("eth2"))
    );
    c.remove_server("s2").unwrap();
    c.remove_network("n2").unwrap();
    assert!(c.remove_network("n2").unwrap_err().contains("no network"));
    assert_eq!(c.servers().unwrap().len(), 1);
}

/// Issue 12: a standby coordinator on the same PostgreSQL store takes
/// over what the first one recorded: where a process runs, and the
/// migrations, an unfinished one included (`recover` finishes it).
#[test]
fn a_standby_coordinator_on_postgresql_sees_the_first_ones_state() {
    let Some((_one, pg)) = pg_lab("standby") else {
        return;
    };
    let cfg = MigrationCoordinator {
        controller: Some("127.0.0.1:7700".parse().unwrap()),
        listen: None,
        database: pg.url().into(),
        timeout_ms: 1000,
        rollback_retry_ms: 0,
        servers: vec![server("s1", "n1"), server("s2", "n1")],
        networks: vec![net("n1", 1)],
        processes: vec![control::migration::config::ProcessPlace {
            name: "p".into(),
            server: "s1".into(),
            service: IpAddr::from([192, 0, 2, 80]),
        }],
    };
    let first = Coordinator::open(cfg.clone(), Auth::new("coordinator test key")).unwrap();
    // The first one moved p to s2 and had a migration under way.
    first
        .exec(
            "UPDATE processes SET server = ?2 WHERE name = ?1",
            &["p".into(), "s2".into()],
        )
        .unwrap();
    let view = MigrationView {
        id: 42,
        process: "p".into(),
        from: "s2".into(),
        to: "s1".into(),
        step: Step::Switching,
        failure: None,
        log: vec![],
        elapsed_ms: 0,
        switch_us: None,
        released: None,
        pause_us: None,
    };
    first
        .exec(
            "INSERT INTO migrations (id, plan, view) VALUES (?1, ?2, ?3)",
            &[
                42i64.into(),
                "{}".into(),
                serde_json::to_string(&view).unwrap().into(),
            ],
        )
        .unwrap();
    // The standby opens the same store (the first still runs).
    let standby = Coordinator::open(cfg, Auth::new("coordinator test key")).unwrap();
    assert_eq!(standby.place("p").unwrap().0, "s2", "where p runs now");
    assert_eq!(standby.migrations.len(), 1);
    assert_eq!(
        standby.migrations[0].step,
        Step::Switching,
        "left for recover"
    );
    drop(first);
}

/// A reload re-applies the config's entries and removes what it no
/// longer names, all or nothing; a check changes nothing.
#[test]
fn a_reload_reconciles_the_store_all_or_nothing() {
    let dir = std::env::temp_dir().join(format!("ep-coord-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    reconciles_on(dir.join("m.db"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_reload_reconciles_the_store_all_or_nothing_on_postgresql() {
    let Some((_one, pg)) = pg_lab("reload") else {
        return;
    };
    reconciles_on(pg.url().into());
}

fn reconciles_on(database: std::path::PathBuf) {
    let place = |server: &str| control::migration::config::ProcessPlace {
        name: "p".into(),
        server: server.into(),
        service: IpAddr::from([192, 0, 2, 80]),
    };
    let cfg = MigrationCoordinator {
        controller: Some("127.0.0.1:7700".parse().unwrap()),
        listen: None,
        database,
        timeout_ms: 1000,
        rollback_retry_ms: 0,
        servers: vec![server("s1", "n1"), server("s2", "n2")],
        networks: vec![net("n1", 1), net("n2", 2)],
        processes: vec![place("s1")],
    };
    let mut c = Coordinator::open(cfg.clone(), Auth::new("coordinator test key")).unwrap();
    let names = |c: &Coordinator| {
        c.servers()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
    };
    // s2 and n2 go, s3 on n3 comes.
    let new = MigrationCoordinator {
        servers: vec![server("s1", "n1"), server("s3", "n3")],
        networks: vec![net("n1", 1), net("n3", 3)],
        timeout_ms: 2000,
        ..cfg.clone()
    };
    assert_eq!(
        c.reconcile(&new, false).unwrap(),
        [
            "server s2 removed",
            "network n2 removed",
            "network n3 added",
            "server s3 added",
            "timeout_ms 1000 → 2000"
        ]
    );
    assert_eq!(
        (names(&c), c.cfg.timeout_ms),
        (vec!["s1".to_string(), "s2".into()], 1000),
        "a check changes nothing"
    );
    c.reconcile(&new, true).unwrap();
    assert_eq!(
        (names(&c), c.cfg.timeout_ms),
        (vec!["s1".to_string(), "s3".into()], 2000)
    );
    assert!(c.networks().unwrap().iter().all(|n| n.name != "n2"));
    // Removing the server a process runs on is refused, and the rest
    // of that reload (a new server) is not applied either.
    let bad = MigrationCoordinator {
        servers: vec![server("s3", "n3"), server("s4", "n3")],
        ..new.clone()
    };
    let e = c.reconcile(&bad, true).unwrap_err();
    assert!(
        e.starts_with("migration.coordinator.server \"s1\": p run on \"s1\""),
        "{e}"
    );
    assert_eq!(names(&c), ["s1", "s3"]);
    // A process being moved is not removed.
    c.busy.insert("p".into());
    let e = c
        .reconcile(
            &MigrationCoordinator {
                processes: vec![],
                ..new.clone()
            },
            false,
        )
        .unwrap_err();
    assert!(e.contains("p is being migrated"), "{e}");
}
