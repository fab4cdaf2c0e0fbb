//! `edgeplane demo`: the lb role end to end on a namespace topology (two
//! terminals, two LB ingress points, two gateways), torn down on exit or
//! Ctrl-C.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use control::api::{CounterView, Request};

use crate::topo::{self, gateway_name, Session, Topology};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn check_interrupt() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        anyhow::bail!("interrupted; tearing the topology down");
    }
    Ok(())
}

pub fn run(hold: bool) -> anyhow::Result<()> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as usize);
        libc::signal(libc::SIGTERM, on_signal as *const () as usize);
    }
    let exe = std::env::current_exe()?;
    let prefix = format!("epd{}", std::process::id() % 100000);
    println!("== building topology {prefix}*: 2 terminals, 2 LBs, core bridge, 2 gateways");
    let mut t = Topology::build(&prefix, 2, 2, &exe)?;
    for lb in [1, 2] {
        check_interrupt()?;
        let cfg = t.lb_config(lb, &[0, 1], 2026);
        t.start_lb(lb, &cfg)?;
        println!("   lb{lb} daemon up (netns {}, socket {})", t.ns(&format!("l{lb}")), t.socket(lb).display());
    }
    println!("\n== Maglev table digests (equal = identical tables, seed 002 claim 20)");
    for lb in [1, 2] {
        let d = &t.call(lb, Request::LbDigest)?[0];
        println!("   lb{lb}: {} (M={}, seed={})", d["digest"].as_str().unwrap_or(""), d["table_size"], d["seed"]);
    }
    check_interrupt()?;
    let sessions: Vec<Session> = (0..6)
        .map(|i| Session::Teid(0x0100_0000 + i * 7919))
        .chain((0..6).map(|i| Session::Flow(41000 + i as u16)))
        .collect();
    println!("\n== sending {} sessions (GTP-U by TEID, plain UDP by 5-tuple) through each LB", sessions.len());
    let via1 = t.placement(1, &sessions)?;
    check_interrupt()?;
    let via2 = t.placement(2, &sessions)?;
    println!("   {:<42} {:>8} {:>8}", "SESSION", "VIA LB1", "VIA LB2");
    let name = |m: &std::collections::HashMap<Session, usize>, s: &Session| m.get(s).map(|g| gateway_name(*g)).unwrap_or_else(|| "LOST".into());
    for s in &sessions {
        let label = match s {
            Session::Teid(t) => format!("GTP-U TEID {t:#010x}"),
            Session::Flow(p) => format!("UDP {}:{p} -> {}:{}", topo::TERMINAL, topo::SERVICE, topo::SERVICE_PORT),
        };
        println!("   {:<42} {:>8} {:>8}", label, name(&via1, s), name(&via2, s));
    }
    let same = sessions.iter().filter(|s| via1.get(s).is_some() && via1.get(s) == via2.get(s)).count();
    println!("   {same}/{} sessions reached the same gateway from both LBs", sessions.len());
    println!("\n== per-program counters");
    for lb in [1, 2] {
        let rows: Vec<CounterView> = serde_json::from_value(t.call(lb, Request::Stats)?)?;
        let line: Vec<String> = rows.iter().filter(|r| r.packets > 0).map(|r| format!("{}={}", r.name, r.packets)).collect();
        println!("   lb{lb} ({}): {}", rows.first().map(|r| r.program.as_str()).unwrap_or("lb"), line.join(" "));
    }
    if hold {
        println!("\n== holding the topology; try:");
        println!("   edgeplane --socket {} lb gateways list", t.socket(1).display());
        println!("   edgeplane --socket {} lb lookup --teid 16777216", t.socket(1).display());
        println!("   Ctrl-C tears it down.");
        while !INTERRUPTED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    println!("\n== tearing down");
    drop(t);
    anyhow::ensure!(same == sessions.len(), "some sessions were lost or placed differently");
    Ok(())
}
