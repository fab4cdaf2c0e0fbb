//! `edgeplane-lab`: what `cargo xtask demo` and `cargo xtask bench` run, and
//! the demo workload the migration tests move. Not shipped with the
//! product: `edgeplane --help` lists operator commands only.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use testlab::{bench, counter};

#[derive(Parser)]
#[command(
    name = "edgeplane-lab",
    about = "edgeplane's demo, benchmarks and demo workload (test support)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the demo topology (namespaces, daemons, traffic) and tear it down.
    Demo {
        /// Keep the topology up until Ctrl-C.
        #[arg(long)]
        hold: bool,
    },
    /// Benchmarks, each against its baseline from the same run.
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
    /// DIR/index.html from the runs `cargo xtask bench --report` wrote to
    /// DIR/runs: every benchmark plotted beside its baseline.
    BenchReport { dir: PathBuf },
    /// Run `bench BENCH ARGS --json` and record it in OUT as a run of the
    /// report (`cargo xtask bench --report` runs each benchmark this way).
    /// A failed run is recorded with its error, and the exit status is 1.
    BenchRecord {
        #[arg(long)]
        out: PathBuf,
        /// What the run measures, for the report.
        #[arg(long, default_value = "")]
        what: String,
        bench: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The migration demo workload: a stateful UDP/TCP counter service.
    CounterService {
        #[arg(long)]
        udp: std::net::SocketAddr,
        #[arg(long)]
        tcp: Option<std::net::SocketAddr>,
        /// Control socket (pause, export, import JSON, resume, discard, status).
        #[arg(long)]
        control: PathBuf,
        /// Write the service's pid here (for an agent that stops it with
        /// SIGSTOP and has no control socket to ask).
        #[arg(long)]
        pid_file: Option<PathBuf>,
    },
    /// Send a control command to a counter service (the application
    /// checkpoint backend uses `export` and `import`; `import` alone reads
    /// the state from stdin).
    CounterCtl {
        #[arg(long)]
        control: PathBuf,
        command: Vec<String>,
    },
    /// Attach one of the object's programs to an interface, pinned
    /// (`sink` counts and drops IPv4: the benchmarks' receiver).
    XdpAttach {
        #[arg(long)]
        interface: String,
        #[arg(long, value_parser = ["floor", "sink"])]
        program: String,
        #[arg(long)]
        netns: Option<String>,
        #[arg(long, default_value = "/sys/fs/bpf/edgeplane")]
        pin_root: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Migration pause and switch times (p50/p99) against the request wait
    /// with nothing moving, on a namespace lab.
    Migration {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 60)]
        count: usize,
        /// s2's agent runs `counter-ctl` commands (a process per step)
        /// instead of talking to the control socket.
        #[arg(long)]
        commands: bool,
    },
    /// Wire-to-PUBLISH latency of the SIP monitor (p50/p99 over many calls).
    SipLatency {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 1000)]
        calls: usize,
        /// Also run the calls beside a flood of malformed SIP at this many
        /// datagrams a second to the SIP port, and beside the same flood
        /// to a port the monitor does not watch (the baseline), and print
        /// all three.
        #[arg(long, default_value_t = 0)]
        flood: u64,
        /// Instead: the monitor (`talking_on = "200"`) against Kamailio
        /// proxying the same calls with pua_dialoginfo, each timed from
        /// the 200 reaching the transit host to its PUBLISH leaving it.
        #[arg(long, conflicts_with = "flood")]
        kamailio: bool,
    },
    /// Many registered terminals: memory per terminal in the monitor and
    /// the presence server, and the expiry sweeps' cost.
    SipScale {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100_000)]
        terminals: usize,
    },
    /// Lost probe traffic when the VRRP master fails: edgeplane vs keepalived.
    VrrpFailover {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Forwarding rate on veth: XDP gateway vs nftables DNAT+SNAT (conntrack).
    GatewayVeth {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
    },
    /// Established sessions through two LBs while a gateway is added, a
    /// weight changes and a gateway drains: broken sessions, lost packets.
    GatewayChanges {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 10000)]
        sessions: u32,
        #[arg(long, default_value_t = 10000)]
        pps: u32,
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// Real gateway daemons (GTP-U by PFCP, NAT to the servers); the
        /// servers tell a broken session by a second gateway address/port.
        #[arg(long)]
        daemons: bool,
        /// With --daemons: the LBs' daisy chaining off (what it prevents).
        #[arg(long)]
        no_chain: bool,
        /// Real daemons with the gateway set in etcd (three members): a
        /// gateway registers, then `--changes` - 1 changes through
        /// `edgeplane cluster gateways`, `--secs` apart.
        #[arg(long, conflicts_with_all = ["daemons", "no_chain"])]
        cluster: bool,
        #[arg(long, default_value_t = 20, requires = "cluster")]
        changes: usize,
    },
    /// A change committed in etcd to every LB's table flipped (p50/p99),
    /// against a bare etcd watcher of the same keys.
    ClusterConvergence {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        lbs: usize,
        #[arg(long, default_value_t = 50)]
        changes: usize,
    },
    /// SIGKILL of a registered gateway to its removal from every LB's
    /// table, against the lease TTL.
    ClusterDetection {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 5)]
        ttl: u64,
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// PFCP establishments and deletions per second through the gateway
    /// daemon (maps written), against Heartbeats on the same socket.
    Pfcp {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value_t = 10000)]
        sessions: u32,
    },
    /// ns/packet of each XDP program against the floor program (test_run).
    Xdp {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 15)]
        rounds: usize,
        #[arg(long, default_value_t = 2000)]
        runs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    edgeplane::cli::main("edgeplane-lab", || run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Demo { hold } => testlab::demo::run(hold),
        Cmd::BenchRecord {
            out,
            what,
            bench,
            args,
        } => {
            let me = std::env::current_exe()?;
            let run = bench::report::Run::measure(&me, &bench, &args, &what)?;
            std::fs::write(&out, serde_json::to_string(&run)? + "\n")
                .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
            match run.error {
                Some(e) => anyhow::bail!("{e} (recorded in {})", out.display()),
                None => Ok(()),
            }
        }
        Cmd::BenchReport { dir } => {
            let w = bench::report::render(&dir)?;
            println!(
                "{}: {} plots from {} runs{}",
                w.path.display(),
                w.figures,
                w.runs,
                if w.failed > 0 {
                    format!(" ({} failed)", w.failed)
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        Cmd::XdpAttach {
            interface,
            program,
            netns,
            pin_root,
        } => {
            if let Some(ns) = &netns {
                edgeplane::netns::enter(ns)?;
            }
            let opts = dataplane_user::LoadOptions {
                pin_root,
                ..Default::default()
            };
            dataplane_user::Dataplane::attach(&program, &interface, &opts)?;
            println!("{program} program attached to {interface}");
            Ok(())
        }
        Cmd::CounterService {
            udp,
            tcp,
            control,
            pid_file,
        } => {
            if let Some(f) = &pid_file {
                std::fs::write(f, format!("{}\n", std::process::id()))
                    .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            }
            counter::serve(udp, tcp, &control)
        }
        Cmd::CounterCtl { control, command } => {
            // `import` without its JSON reads it from stdin (the agent's
            // command backend hands the state over that way).
            let mut command = command.join(" ");
            if command == "import" {
                let mut state = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut state)?;
                command = format!("import {}", state.trim());
            }
            println!(
                "{}",
                edgeplane::migration::app::control(&control, &command)?
            );
            Ok(())
        }
        Cmd::Bench {
            cmd:
                BenchCmd::Migration {
                    json,
                    count,
                    commands,
                },
        } => {
            let r = testlab::bench::migration::bench(&testlab::edgeplane_bin()?, count, commands)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{} migrations: pause (longest request wait) p50 {:.2} ms p99 {:.2} ms vs {:.2} / {:.2} ms with nothing moving ({:.1}x at p50); held pause (first held packet to first released, {} migrations) p50 {:.2} ms p99 {:.2} ms; switch p50 {} us p99 {} us; whole migration p50 {:.1} ms; {} held packets released; {} requests lost",
                    r.migrations, r.pause_ms_p50, r.pause_ms_p99, r.baseline_wait_ms_p50, r.baseline_wait_ms_p99, r.pause_over_baseline_p50,
                    r.held_pause_samples, r.held_pause_ms_p50, r.held_pause_ms_p99,
                    r.switch_us_p50, r.switch_us_p99, r.migration_ms_p50, r.released_total, r.lost_requests
                );
            }
            Ok(())
        }
        Cmd::Bench {
            cmd:
                BenchCmd::SipLatency {
                    json,
                    calls,
                    kamailio: true,
                    ..
                },
        } => {
            let r = bench::sip::run_against_kamailio(calls.max(1))?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                for (name, l) in [
                    ("edgeplane sip-monitor (passive)", &r.monitor),
                    ("Kamailio proxy with pua_dialoginfo", &r.kamailio),
                ] {
                    println!("{name}: {} of {} calls measured, 200 at the host to PUBLISH leaving it p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms", l.measured, l.calls, l.p50_ms, l.p99_ms, l.max_ms);
                }
                println!(
                    "the monitor against Kamailio: p50 {:.2} x, p99 {:.2} x",
                    r.monitor.p50_ms / r.kamailio.p50_ms,
                    r.monitor.p99_ms / r.kamailio.p99_ms
                );
            }
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::SipLatency {
                json, calls, flood, ..
            },
        } if flood > 0 => {
            let r = bench::sip::run_with_flood(calls.max(1), flood)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                for (name, l) in [
                    ("quiet", &r.quiet),
                    ("flood to the SIP port", &r.flooded),
                    ("flood to an unwatched port (baseline)", &r.baseline),
                ] {
                    println!("{name}: {} of {} calls measured, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; host's share p50 {:.3} ms, p99 {:.3} ms; {} copies lost to a full ring", l.measured, l.calls, l.p50_ms, l.p99_ms, l.max_ms, l.monitor_p50_ms, l.monitor_p99_ms, l.ring_full);
                }
                println!("flood: {} malformed datagrams sent to the SIP port at {flood}/s, {} counted as parse errors by the monitor; baseline: {} sent elsewhere, {} counted", r.flood_sent, r.flood_refused, r.baseline_sent, r.baseline_refused);
                println!("the monitor's share of the flood's cost: p99 {:+.3} ms against the baseline ({:+.3} ms against quiet)", r.flooded.p99_ms - r.baseline.p99_ms, r.flooded.p99_ms - r.quiet.p99_ms);
            }
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::SipLatency { json, calls, .. },
        } => {
            let r = bench::sip::run(calls.max(1))?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{} calls, {} measured: ACK leaving the UAC to PUBLISH leaving the monitor p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; from the ACK arriving at the monitored host p50 {:.3} ms, p99 {:.3} ms; {} copies lost to a full ring", r.calls, r.measured, r.p50_ms, r.p99_ms, r.max_ms, r.monitor_p50_ms, r.monitor_p99_ms, r.ring_full);
            }
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::SipScale { json, terminals },
        } => {
            let r = bench::sip_scale::run(terminals.max(1))?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{} terminals ({} stored): monitor {:.0} B/terminal, presence server {:.0} B/terminal in memory and {:.0} B/terminal on disk; tracker sweep {:.2} us idle, {:.1} ms with all due; store sweep {:.1} us idle, {:.1} ms with all due",
                    r.terminals, r.stored_online, r.monitor_bytes_per_terminal, r.presence_bytes_per_terminal, r.store_disk_bytes_per_terminal,
                    r.tracker_sweep_idle_us, r.tracker_sweep_all_ms, r.store_sweep_idle_us, r.store_sweep_all_ms
                );
            }
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::VrrpFailover { json, reps },
        } => {
            let rows = bench::vrrp::run_failover(reps.max(1))?;
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!(
                    "{:<11} {:<6} {:>9} {:>12} {:>9}  RUNS",
                    "IMPL", "FAMILY", "ADVERT_MS", "MDI_MS", "LOST_MS"
                );
                for r in rows {
                    println!(
                        "{:<11} {:<6} {:>9} {:>12.0} {:>9.0}  {:?}",
                        r.implementation,
                        r.family,
                        r.advert_interval_ms,
                        r.master_down_interval_ms,
                        r.lost_ms,
                        r.lost_ms_runs
                    );
                }
            }
            Ok(())
        }
        Cmd::Bench {
            cmd:
                BenchCmd::GatewayChanges {
                    json,
                    sessions,
                    pps,
                    secs,
                    daemons,
                    no_chain,
                    cluster,
                    changes,
                },
        } => {
            let r = if cluster {
                bench::changes::run_cluster(sessions, pps, secs, changes)?
            } else if daemons {
                bench::changes::run_daemons(sessions, pps, secs, !no_chain)?
            } else {
                bench::changes::run(sessions, pps, secs)?
            };
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{} sessions through 2 LBs at {} pps ({}), {} s per phase: {}",
                    r.gtpu.sessions + r.plain.sessions,
                    r.pps,
                    r.mode,
                    r.seconds_per_phase,
                    r.phases.join(" | ")
                );
                println!(
                    "GTP-U (TEID owners): {} of {} broken, {} unseen",
                    r.gtpu.broken, r.gtpu.sessions, r.gtpu.unseen
                );
                println!(
                    "plain UDP (terminal key): {} of {} broken, {} unseen",
                    r.plain.broken, r.plain.sessions, r.plain.unseen
                );
                println!(
                    "packets: {} sent, {} received, {} lost",
                    r.packets_sent, r.packets_received, r.packets_lost
                );
            }
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::ClusterConvergence { json, lbs, changes },
        } => {
            let r = bench::cluster::convergence(lbs, changes)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{} changes, {} LBs: every table flipped p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; a bare watcher heard them p50 {:.1} ms, p99 {:.1} ms",
                    r.changes, r.lbs, r.p50_ms, r.p99_ms, r.max_ms, r.watch_p50_ms, r.watch_p99_ms
                );
            }
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::ClusterDetection { json, ttl, reps },
        } => {
            let r = bench::cluster::detection(ttl, reps)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "SIGKILLed gateway out of all 3 LB tables: p50 {:.0} ms, max {:.0} ms ({:.2} x the {} s lease TTL); samples {:?}",
                    r.p50_ms, r.max_ms, r.max_over_ttl, r.lease_ttl_s, r.samples_ms
                );
            }
            Ok(())
        }
        Cmd::Bench {
            cmd:
                BenchCmd::Pfcp {
                    json,
                    rounds,
                    sessions,
                },
        } => {
            let r = bench::pfcp::run(rounds.max(1), sessions)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "PFCP through the gateway daemon, {} sessions, {} in flight (median of {}): {:.0} establishments/s, {:.0} deletions/s; heartbeats {:.0}/s (establishment/heartbeat {:.2}); the engine alone {:.0} establishments/s",
                    r.sessions, r.window, r.rounds.len(), r.establishments_per_s, r.deletions_per_s, r.heartbeats_per_s, r.establishment_vs_heartbeat, r.engine_establishments_per_s
                );
            }
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::GatewayVeth { json, reps, secs },
        } => {
            let r = bench::veth::run_gateway_vs_nftables(reps.max(1), secs)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{}: XDP gateway {:.0} pps, nftables {:.0} pps, ratio {:.2} (generator {} offered {:.0} pps; median of {})",
                    r.case, r.xdp_pps, r.nftables_pps, r.ratio, r.generator, r.generator_pps, r.repetitions);
                println!("gtpu_uplink (same inner datagram in a G-PDU): {:.0} pps, {:.2} x the plain XDP gateway, {:.2} x nftables (generator offered {:.0} pps)",
                    r.gtpu_uplink_pps, r.gtpu_vs_plain, r.gtpu_vs_nftables, r.gtpu_generator_pps);
            }
            Ok(())
        }
        Cmd::Bench {
            cmd: BenchCmd::Xdp { json, rounds, runs },
        } => {
            let rows = bench::xdp::run_all(&bench::xdp::BenchOptions {
                rounds,
                runs_per_round: runs,
            })?;
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!(
                    "{:<8} {:<22} {:>10} {:>10} {:>7} {:>10}",
                    "PROGRAM", "CASE", "NS/PKT", "FLOOR", "RATIO", "ABOVE"
                );
                for r in rows {
                    println!(
                        "{:<8} {:<22} {:>10.1} {:>10.1} {:>7.2} {:>10.1}",
                        r.program,
                        r.case,
                        r.ns_per_packet,
                        r.floor_ns_per_packet,
                        r.ratio,
                        r.ns_above_floor
                    );
                }
            }
            Ok(())
        }
    }
}
