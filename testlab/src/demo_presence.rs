//! The demo's presence section (seed 001), beside `demo.rs`.

use std::time::Duration;

use control::api::Request;

/// Seed 001 where its claims put it: Kamailio is the SIP registrar and
/// proxy, the sip-monitor runs on that host's interface (XDP for what
/// arrives, TC egress for what Kamailio sends), and sipp UAs register,
/// call and hang up through it; the statuses are shown as the presence
/// server stores them, then `edgeplane presence show`. Returns whether
/// each terminal went through the statuses its traffic implies.
pub(crate) fn presence(exe: &std::path::Path) -> anyhow::Result<bool> {
    use crate::sip_lab::Net;
    println!("\n== presence: the sip-monitor on the SIP server itself, publishing to the presence server (seed 001)");
    let mut net = Net::new("d", exe);
    let (kam, _) = net.on_registrar();
    println!(
        "   Kamailio (registrar, record-routing proxy) on 10.5.0.1:5060 in {}, the monitor on its eth0;",
        net.name("mon")
    );
    println!(
        "   the presence server on 10.6.0.2:5070 in {}; sipp UAs alice and bob in {}",
        net.name("srv"),
        net.name("ua")
    );
    let users = ["alice@example.com", "bob@example.com"];
    let mut shown = [0usize; 2];
    // Print what the server stored since the last step (bounded wait for
    // the publications the step implies).
    let mut changes = |net: &Net, want: [usize; 2]| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let h = [net.history(users[0]), net.history(users[1])];
            if (h[0].len() >= want[0] && h[1].len() >= want[1])
                || std::time::Instant::now() > deadline
            {
                for (i, u) in users.iter().enumerate() {
                    for st in h[i].iter().skip(shown[i]) {
                        println!("     {u:<20} -> {st}");
                    }
                    shown[i] = h[i].len();
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    println!("   alice and bob REGISTER (online on the registrar's 200, which only the egress program sees):");
    net.sipp("register.xml", "alice", "5061");
    net.sipp("register.xml", "bob", "5062");
    changes(&net, [1, 1]);
    println!("   alice calls bob; bob answers; half a second later alice hangs up:");
    let bob = net.sipp_uas("uas_answer.xml", "bob", "5062");
    net.sipp("call.xml", "bob", "5061");
    drop(bob);
    changes(&net, [3, 3]);
    println!("   alice de-registers:");
    net.sipp("unregister.xml", "alice", "5061");
    changes(&net, [4, 3]);
    drop(kam);
    println!("   edgeplane presence show:");
    let out = std::process::Command::new(exe)
        .arg("--socket")
        .arg(net.dir.join("srv.sock"))
        .args(["presence", "show"])
        .output()?;
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        println!("     {l}");
    }
    // The monitor reads the programs' counters every 200 ms at most.
    std::thread::sleep(Duration::from_millis(300));
    let mon = net.call("mon", Request::SipMonitorStatus);
    let count = |name: &str| net.counter("mon", "sip-monitor", name);
    println!(
        "   the monitor: {} SIP packets copied ({} of them sent by Kamailio, copied at egress), {} messages parsed, {} PUBLISHes, {} answered 200",
        count("copied"),
        count("egress_copies"),
        mon["parsed"],
        mon["published"],
        mon["publish_ok"]
    );
    Ok(
        net.history(users[0]) == ["online", "talking", "terminated", "offline"]
            && net.history(users[1]) == ["online", "talking", "terminated"],
    )
}
