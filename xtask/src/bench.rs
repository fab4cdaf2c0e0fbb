//! `cargo xtask bench`: every benchmark, one of them, or all of them into
//! an HTML report (`--report`), each run by `edgeplane-lab bench`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _};

use crate::{cargo, output, root, run, say};

/// The benchmarks `cargo xtask bench` runs with no arguments, each as
/// `edgeplane-lab bench NAME ARGS`; `cargo xtask bench NAME [ARGS]` runs one.
pub const BENCHES: &[(&str, &[&str], &str)] = &[
    (
        "xdp",
        &[],
        "test_run ns/packet of every XDP program vs the floor program",
    ),
    ("gateway-veth", &[], "XDP gateway vs nftables on veth"),
    ("vrrp-failover", &[], "failover gap vs keepalived"),
    (
        "migration",
        &[],
        "pause and switch times vs the wait with nothing moving",
    ),
    (
        "migration",
        &["--commands"],
        "s2's agent runs the application backend as commands",
    ),
    (
        "sip-latency",
        &["--kamailio"],
        "200-to-PUBLISH vs Kamailio with pua_dialoginfo",
    ),
    (
        "pfcp",
        &[],
        "PFCP establishments/s through the gateway vs heartbeats",
    ),
    (
        "gateway-changes",
        &[],
        "sessions broken while gateways join, reweigh, drain (sink gateways, no chaining)",
    ),
    (
        "gateway-changes",
        &["--daemons"],
        "the same with real gateways, sessions by PFCP, daisy chaining",
    ),
    (
        "gateway-changes",
        &["--daemons", "--no-chain"],
        "the same with chaining off (the baseline)",
    ),
    (
        "gateway-changes",
        &["--cluster", "--secs", "2"],
        "the same with the gateway set in etcd: a gateway registers, 19 changes",
    ),
    (
        "cluster-convergence",
        &[],
        "an etcd change to every LB's table (3 LBs) vs a bare etcd watcher",
    ),
    (
        "cluster-convergence",
        &["--lbs", "10"],
        "the same with 10 LBs",
    ),
    (
        "cluster-detection",
        &[],
        "a SIGKILLed gateway out of every LB's table vs the lease TTL",
    ),
];

pub fn bench(extra: &[String]) -> anyhow::Result<()> {
    if extra.iter().any(|a| a == "--report" || a == "--from") {
        return report(extra);
    }
    run(cargo().args(["build", "--release", "--bins"]))?;
    let lab = root().join("target/release/edgeplane-lab");
    if let Some(name) = extra.first() {
        if name == "criterion" {
            run(cargo()
                .args(["bench", "--bench", "maglev"])
                .args(&extra[1..]))?;
            return run(cargo().args(["bench", "--bench", "sip"]).args(&extra[1..]));
        }
        if !BENCHES.iter().any(|(n, _, _)| n == name) {
            let names: Vec<&str> = BENCHES.iter().map(|(n, _, _)| *n).collect();
            bail!(
                "no benchmark {name:?}; choose one of {} or criterion",
                names.join(", ")
            );
        }
        return run(Command::new(&lab).arg("bench").args(extra));
    }
    for (name, args, what) in BENCHES {
        say(&format!(
            "bench {name} {}({what})",
            args.iter().map(|a| format!("{a} ")).collect::<String>()
        ));
        run(Command::new(&lab).arg("bench").arg(name).args(*args))?;
    }
    say("criterion benches");
    run(cargo().args(["bench", "--bench", "maglev"]))?;
    run(cargo().args(["bench", "--bench", "sip"]))
}

/// `--report [--out DIR] [NAME...]`: run the benchmarks (all, or those
/// named) with `--json` into DIR/runs, then render DIR/index.html.
/// `--from DIR`: render DIR/index.html again from the runs already there.
fn report(extra: &[String]) -> anyhow::Result<()> {
    let mut out = root().join("target/bench-report");
    let mut from = None;
    let mut names = Vec::new();
    let mut args = extra.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--report" => {}
            "--out" | "--from" => {
                let dir = args
                    .next()
                    .with_context(|| format!("{a} needs a directory"))?;
                let dir = std::env::current_dir()?.join(dir);
                if a == "--from" {
                    from = Some(dir);
                } else {
                    out = dir;
                }
            }
            n if BENCHES.iter().any(|(b, _, _)| *b == n) => names.push(n.to_string()),
            other => bail!(
                "bench --report: unknown argument {other:?}; it takes --out DIR, --from DIR, or bench names ({})",
                BENCHES.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        }
    }
    let lab = root().join("target/release/edgeplane-lab");
    if let Some(dir) = from {
        run(cargo().args(["build", "--release", "--bin", "edgeplane-lab"]))?;
        return render(&lab, &dir);
    }
    run(cargo().args(["build", "--release", "--bins"]))?;
    let runs = out.join("runs");
    if runs.exists() {
        std::fs::remove_dir_all(&runs).with_context(|| format!("clearing {}", runs.display()))?;
    }
    std::fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    std::fs::write(out.join("machine.json"), machine())?;
    let mut failed = Vec::new();
    for (i, (name, bargs, what)) in BENCHES.iter().enumerate() {
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            continue;
        }
        let slug = std::iter::once(*name)
            .chain(bargs.iter().map(|a| a.trim_start_matches('-')))
            .collect::<Vec<_>>()
            .join("-");
        let file = runs.join(format!("{:02}-{slug}.json", i + 1));
        say(&format!(
            "report: bench {name} {}({what})",
            bargs.iter().map(|a| format!("{a} ")).collect::<String>()
        ));
        let recorded = Command::new(&lab)
            .arg("bench-record")
            .arg("--out")
            .arg(&file)
            .args(["--what", what, name])
            .args(*bargs)
            .status()
            .with_context(|| format!("running {}", lab.display()))?;
        if !recorded.success() {
            failed.push(slug);
        }
    }
    render(&lab, &out)?;
    if !failed.is_empty() {
        bail!(
            "{} benchmark(s) failed (shown as failed in the report): {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn render(lab: &Path, dir: &PathBuf) -> anyhow::Result<()> {
    run(Command::new(lab).args(["bench-report"]).arg(dir))
}

/// Where the report's figures came from: the commit, the kernel, the CPU.
fn machine() -> String {
    let field = |cmd: &str, args: &[&str]| json_str(output(cmd, args).unwrap_or_default().trim());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root())
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    format!(
        "{{\"commit\": {}, \"dirty\": {dirty}, \"kernel\": {}, \"cpu\": {}, \"cpus\": {cpus}, \"date\": {}}}\n",
        json_str(&git(&["rev-parse", "--short=12", "HEAD"])),
        field("uname", &["-r"]),
        json_str(&cpu),
        field("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
    )
}

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
