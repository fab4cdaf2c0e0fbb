//! `cargo xtask setup | test | demo | bench`: the project's own commands.
//! `test` and `demo` run `setup` first, so on a fresh machine the README's
//! two commands are all a newcomer types.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{bail, Context as _};

const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "iproute2",
    "iputils-ping",
    "ethtool",
    "nftables",
    "tcpdump",
    "procps",
    "util-linux",
    "keepalived",
    "sip-tester",
    "kamailio",
    "kamailio-presence-modules",
    "kamailio-sqlite-modules",
    "postgresql-15",
    "criu",
    // An independent GTP-U and PFCP implementation for the tests (run by
    // /usr/bin/python3: a pyenv python first in PATH would not have it).
    "python3-scapy",
    // The shared state (issue 12): a real etcd for the tests and the
    // demo, etcdctl, and protoc for the etcd client's generated code.
    "etcd-server",
    "etcd-client",
    "protobuf-compiler",
    "openssl",
    // systemd-analyze verify, for the service unit (issue 16).
    "systemd",
    // Headless Chromium renders the benchmark report in its test.
    "chromium",
];
const BPF_LINKER_VERSION: &str = "0.13.0";

mod bench;
mod package;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("test") => setup().and_then(|_| test(&args[1..])),
        Some("demo") => setup().and_then(|_| demo(&args[1..])),
        Some("bench") => setup().and_then(|_| bench::bench(&args[1..])),
        Some("fuzz") => setup().and_then(|_| fuzz(&args[1..])),
        Some("package") => setup()
            .and_then(|_| package::package())
            .and_then(|deb| package::check(&deb)),
        _ => {
            eprintln!("usage: cargo xtask <setup|test|demo|bench|fuzz|package> [args]\n\n  setup  install what this machine lacks (idempotent)\n  test   every test: unit, test_run fixtures, namespace integration\n  demo   every role end to end on a namespace topology (--hold keeps it up)\n  bench  every benchmark, or one: bench xdp|gateway-veth|vrrp-failover|migration|sip-latency|pfcp|gateway-changes|criterion [--json];
         bench --report [--out DIR] runs them all into an HTML report (target/bench-report), --from DIR re-renders one\n  fuzz   every fuzz target for --secs N (default 60) each, or the ones named: fuzz [--secs N] [sip_parse|pfcp|gtpu]...\n  package  the Debian package (cargo-deb) in target/package, checked as installed");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn say(msg: &str) {
    eprintln!("xtask: {msg}");
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed with {st}");
    }
    Ok(())
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn is_root() -> bool {
    output("id", &["-u"])
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

fn cargo_bin() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env::var("HOME").unwrap_or_default()).join(".cargo"))
        .join("bin")
}

/// Install what a fresh machine lacks. Every step checks first, so a
/// second run does nothing.
fn setup() -> anyhow::Result<()> {
    if !is_root() {
        bail!("setup needs root (apt-get, bpffs mount); the tests need it too (BPF, network namespaces)");
    }
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            output("dpkg-query", &["-W", "-f=${Status}", p])
                .map(|s| !s.contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        say("apt packages: present");
    } else {
        say(&format!("apt packages: installing {}", missing.join(" ")));
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }

    let toolchains = output("rustup", &["toolchain", "list"]).unwrap_or_default();
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        say("rust nightly: installing (builds the eBPF crate)");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let comps = output(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .unwrap_or_default();
    if comps.lines().any(|l| l.starts_with("rust-src")) {
        say("nightly rust-src: present");
    } else {
        say("nightly rust-src: installing (-Z build-std=core for bpfel)");
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }

    let linker = cargo_bin().join("bpf-linker");
    let have = output(linker.to_str().unwrap_or("bpf-linker"), &["--version"]).unwrap_or_default();
    if have.contains(BPF_LINKER_VERSION) {
        say(&format!("bpf-linker {BPF_LINKER_VERSION}: present"));
    } else {
        say(&format!(
            "bpf-linker {BPF_LINKER_VERSION}: building against LLVM 22 (1-2 minutes)"
        ));
        let path = format!(
            "/usr/lib/llvm-22/bin:{}",
            env::var("PATH").unwrap_or_default()
        );
        run(Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("PATH", path)
            .env("LLVM_SYS_221_PREFIX", "/usr/lib/llvm-22"))?;
    }

    package::setup()?;

    if Command::new("mountpoint")
        .args(["-q", "/sys/fs/bpf"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        say("bpffs: mounted at /sys/fs/bpf");
    } else {
        say("bpffs: mounting at /sys/fs/bpf");
        run(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))?;
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    // bpf-linker must be found by the eBPF build.
    c.env(
        "PATH",
        format!(
            "{}:{}",
            cargo_bin().display(),
            env::var("PATH").unwrap_or_default()
        ),
    );
    c
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    say("building every binary and bench (the namespace tests run edgeplane and edgeplane-lab)");
    run(cargo().args(["build", "--bins", "--benches"]))?;
    // The fuzz targets are their own workspace, so `cargo test` does not
    // build them; a decoder's API change must not leave one broken until
    // someone fuzzes.
    say("checking that every fuzz target compiles");
    run(cargo().args(["check", "--manifest-path", "fuzz/Cargo.toml", "--bins"]))?;
    say("running every test (unit, test_run fixtures, namespace integration)");
    run(cargo().args(["test"]).args(extra))?;
    if extra.is_empty() {
        say("building the Debian package and checking it as installed");
        package::check(&package::package()?)?;
    }
    Ok(())
}

/// Ctrl-C reaches the demo and xtask alike (one process group); the demo
/// tears its topology down and exits 0 (`--hold`), and xtask waits for it
/// and reports its status instead of dying first. A handler, not SIG_IGN,
/// so the demo starts with the default action.
extern "C" fn wait_for_the_demo(_: libc::c_int) {}

fn demo(extra: &[String]) -> anyhow::Result<()> {
    run(cargo().args(["build", "--bins"]))?;
    // SAFETY: an empty handler, installed before any child is started.
    unsafe {
        libc::signal(
            libc::SIGINT,
            wait_for_the_demo as extern "C" fn(libc::c_int) as libc::sighandler_t,
        )
    };
    run(Command::new(root().join("target/debug/edgeplane-lab"))
        .arg("demo")
        .args(extra))
}

/// The cargo-fuzz targets (fuzz/Cargo.toml), in the order they run.
const FUZZ_TARGETS: &[&str] = &[
    "sip_parse",
    "pfcp",
    "gtpu",
    "vrrp_advert",
    "loadshare_msg",
    "loadshare_engine",
    "migration_frame",
    "api_request",
    "config_load",
];

/// `cargo xtask fuzz [--secs N] [TARGET...]`: each target for N seconds
/// (libFuzzer, nightly, release with debug assertions off), from a corpus
/// kept under fuzz/corpus/TARGET; prints the executions and crashes per
/// target (the figures BENCHMARKS.md records) and fails on a crash, whose
/// input libFuzzer leaves in fuzz/artifacts/TARGET.
fn fuzz(extra: &[String]) -> anyhow::Result<()> {
    let mut secs: u64 = 60;
    let mut targets: Vec<&str> = Vec::new();
    let mut it = extra.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                secs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|s| *s > 0)
                    .context("--secs takes a number of seconds above 0")?
            }
            t if FUZZ_TARGETS.contains(&t) => {
                targets.push(FUZZ_TARGETS[FUZZ_TARGETS.iter().position(|x| *x == t).unwrap()])
            }
            other => bail!(
                "unknown fuzz argument {other:?}; targets: {}",
                FUZZ_TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    if !cargo_bin().join("cargo-fuzz").exists() {
        say("cargo-fuzz: installing");
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let dir = root().join("fuzz");
    let mut failed = Vec::new();
    for t in &targets {
        let corpus = dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        say(&format!("fuzz {t}: {secs} s"));
        // Built first: a target that does not compile is that, not a crash.
        let built = Command::new(cargo_bin().join("cargo"))
            .env_remove("RUSTUP_TOOLCHAIN")
            .args(["+nightly", "fuzz", "build", "-O", t])
            .current_dir(&dir)
            .status()
            .context("cargo fuzz build")?;
        if !built.success() {
            bail!("fuzz target {t} does not build (the errors are above)");
        }
        let out = Command::new(cargo_bin().join("cargo"))
            .env_remove("RUSTUP_TOOLCHAIN")
            .args(["+nightly", "fuzz", "run", "-O", t])
            .arg(&corpus)
            .args([
                "--",
                &format!("-max_total_time={secs}"),
                "-print_final_stats=1",
            ])
            .current_dir(&dir)
            .output()
            .context("cargo fuzz")?;
        let log = String::from_utf8_lossy(&out.stderr);
        // libFuzzer's final stats: "stat::number_of_executed_units: N".
        let execs = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into());
        let crashed = !out.status.success();
        println!(
            "fuzz {t}: {execs} executions in {secs} s, {} crash{}",
            crashed as u8,
            if crashed { "" } else { "es" }
        );
        if crashed {
            eprintln!(
                "{}",
                log.lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            failed.push(*t);
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets crashed: {} (inputs in fuzz/artifacts/)",
            failed.join(", ")
        );
    }
    Ok(())
}
