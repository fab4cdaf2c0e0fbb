//! `edgeplane-lab bench-report DIR`: the runs `cargo xtask bench --report`
//! wrote to DIR/runs (one JSON file per benchmark run, its `--json` output
//! under `result`) into one self-contained page, DIR/index.html. Each
//! benchmark gets plots of what it measured beside the baseline from the
//! same run, a table of its figures, the command that made them and the
//! raw JSON.
//!
//! The page checks itself when a browser loads it (`CHECK_SCRIPT`): every
//! plot must have a size on screen and, in each series' colour, at least
//! the marks the plot drew. The result is written into the page, where
//! `tests/bench_report.rs` reads it back from headless Chromium.

pub mod plot;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;

use super::{changes, cluster, migration, pfcp, sip, sip_scale, veth, vrrp, xdp};
use plot::{bars, distribution, Plot, Series};

/// One benchmark run as `cargo xtask bench --report` records it.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct Run {
    pub bench: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub what: String,
    pub command: String,
    #[serde(default)]
    pub started_unix: u64,
    #[serde(default)]
    pub secs: f64,
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub file: String,
}

impl Run {
    /// Run `edgeplane-lab bench BENCH ARGS --json` with `lab` and record
    /// it; a run that fails is recorded with its `error`.
    pub fn measure(lab: &Path, bench: &str, args: &[String], what: &str) -> anyhow::Result<Run> {
        let t = std::time::Instant::now();
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let command = format!(
            "edgeplane-lab bench {bench} {}--json",
            args.iter().map(|a| format!("{a} ")).collect::<String>()
        );
        let o = std::process::Command::new(lab)
            .arg("bench")
            .arg(bench)
            .args(args)
            .arg("--json")
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| lab.display().to_string())?;
        let json = String::from_utf8_lossy(&o.stdout)
            .lines()
            .rev()
            .find(|l| l.starts_with(['{', '[']))
            .and_then(|l| serde_json::from_str::<Value>(l).ok());
        let (result, error) = match json {
            Some(v) if o.status.success() => (Some(v), None),
            Some(_) => (None, Some(format!("{command} exited with {}", o.status))),
            None => (
                None,
                Some(format!("{command} exited with {} and no JSON", o.status)),
            ),
        };
        Ok(Run {
            bench: bench.into(),
            args: args.to_vec(),
            what: what.into(),
            command,
            started_unix,
            secs: t.elapsed().as_secs_f64(),
            result,
            error,
            file: String::new(),
        })
    }
}

/// Where the runs were made (DIR/machine.json).
#[derive(Debug, Default, Deserialize)]
pub struct Machine {
    #[serde(default)]
    pub commit: String,
    #[serde(default)]
    pub dirty: bool,
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub cpu: String,
    #[serde(default)]
    pub cpus: usize,
    #[serde(default)]
    pub date: String,
}

pub struct Figure {
    pub title: String,
    pub caption: String,
    pub plot: Plot,
}

/// What `render` wrote.
pub struct Written {
    pub path: PathBuf,
    pub runs: usize,
    pub failed: usize,
    pub figures: usize,
}

/// Read DIR/runs/*.json (in name order) and DIR/machine.json.
pub fn load(dir: &Path) -> anyhow::Result<(Machine, Vec<Run>)> {
    let machine = match std::fs::read_to_string(dir.join("machine.json")) {
        Ok(s) => serde_json::from_str(&s).context("machine.json")?,
        Err(_) => Machine::default(),
    };
    let runs_dir = dir.join("runs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&runs_dir)
        .with_context(|| {
            format!(
                "{}: no runs to report (make them with `cargo xtask bench --report`)",
                runs_dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "{}: no runs in it", runs_dir.display());
    let mut runs = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&f).with_context(|| f.display().to_string())?;
        let mut run: Run = serde_json::from_str(&text).with_context(|| format!("runs/{name}"))?;
        run.file = name;
        runs.push(run);
    }
    Ok((machine, runs))
}

fn parse<T: serde::de::DeserializeOwned>(run: &Run) -> anyhow::Result<T> {
    let v = run.result.clone().context("no result")?;
    serde_json::from_value(v).with_context(|| {
        format!(
            "runs/{}: the {} result is not in the shape this report reads; run `cargo xtask bench --report` again",
            run.file, run.bench
        )
    })
}

fn label(run: &Run) -> String {
    if run.args.is_empty() {
        run.bench.clone()
    } else {
        format!("{} {}", run.bench, run.args.join(" "))
    }
}

/// The plots of one benchmark's runs (a benchmark run with different
/// arguments has several; `gateway-changes` puts all of its runs in one).
pub fn figures(bench: &str, runs: &[&Run]) -> anyhow::Result<Vec<Figure>> {
    let mut out = Vec::new();
    match bench {
        "gateway-changes" => {
            let mut cats = Vec::new();
            let (mut gtpu, mut plain, mut lost) = (Vec::new(), Vec::new(), Vec::new());
            let pct = |a: usize, b: usize| {
                if b == 0 {
                    0.0
                } else {
                    100.0 * a as f64 / b as f64
                }
            };
            let mut caption = Vec::new();
            for run in runs {
                let r: changes::ChangesResult = parse(run)?;
                cats.push(format!("{} ({})", label(run), r.mode));
                gtpu.push(pct(r.gtpu.broken, r.gtpu.sessions));
                plain.push(pct(r.plain.broken, r.plain.sessions));
                lost.push(pct(r.packets_lost as usize, r.packets_sent as usize));
                caption.push(format!(
                    "{}: {} of {} GTP-U and {} of {} plain sessions broken, {} of {} packets lost",
                    label(run),
                    r.gtpu.broken,
                    r.gtpu.sessions,
                    r.plain.broken,
                    r.plain.sessions,
                    r.packets_lost,
                    r.packets_sent
                ));
            }
            out.push(Figure {
                title: "Sessions broken and packets lost while gateways join, reweigh and drain"
                    .into(),
                caption: format!(
                    "The baseline is the run with daisy chaining off (--no-chain). {}.",
                    caption.join("; ")
                ),
                plot: bars(
                    &cats,
                    &[
                        Series::new("GTP-U sessions broken", gtpu),
                        Series::new("plain UDP sessions broken", plain),
                        Series::new("packets lost", lost),
                    ],
                    "% of the sessions, % of the packets sent",
                )?,
            });
        }
        _ => {
            for run in runs {
                out.push(figure(run)?);
            }
        }
    }
    Ok(out)
}

fn figure(run: &Run) -> anyhow::Result<Figure> {
    let name = label(run);
    Ok(match run.bench.as_str() {
        "xdp" => {
            let rows: Vec<xdp::BenchRow> = parse(run)?;
            anyhow::ensure!(!rows.is_empty(), "runs/{}: no rows", run.file);
            let ratios: Vec<f64> = rows.iter().map(|r| r.ratio).collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), r| (a.min(*r), b.max(*r)));
            Figure {
                title: "ns per packet of each XDP program against the floor program".into(),
                caption: format!(
                    "{} cases through BPF_PROG_TEST_RUN; each program is measured in alternating rounds with the floor program (parse Ethernet, count, pass) on the same packet. Ratio to the floor: {lo:.2} to {hi:.2}, median {:.2}.",
                    rows.len(),
                    super::median(ratios.clone())
                ),
                plot: bars(
                    &rows
                        .iter()
                        .map(|r| format!("{} {}", r.program, r.case))
                        .collect::<Vec<_>>(),
                    &[
                        Series::new("program", rows.iter().map(|r| r.ns_per_packet).collect()),
                        Series::new(
                            "floor program, same run",
                            rows.iter().map(|r| r.floor_ns_per_packet).collect(),
                        ),
                    ],
                    "ns per packet",
                )?,
            }
        }
        "gateway-veth" => {
            let r: veth::VethRow = parse(run)?;
            Figure {
                title: "Forwarding rate on veth: the XDP gateway against nftables".into(),
                caption: format!(
                    "{}: XDP gateway {:.0} pps, nftables DNAT+SNAT with conntrack {:.0} pps, ratio {:.2}; the GTP-U uplink {:.0} pps ({:.2} x the plain gateway). Median of {}. Generator: {}{}.",
                    r.case, r.xdp_pps, r.nftables_pps, r.ratio, r.gtpu_uplink_pps, r.gtpu_vs_plain, r.repetitions,
                    if r.generator.is_empty() { "xdp-live-frames" } else { &r.generator },
                    if r.xdp_pps >= 0.95 * r.generator_pps {
                        " (the XDP gateway forwarded about all it was offered: the ratio is a lower bound, set by the generator)"
                    } else {
                        ""
                    }
                ),
                plot: bars(
                    &[
                        "XDP gateway".to_string(),
                        "nftables DNAT+SNAT (the baseline)".to_string(),
                        "XDP gateway, GTP-U uplink".to_string(),
                    ],
                    &[
                        Series::new("forwarded", vec![r.xdp_pps, r.nftables_pps, r.gtpu_uplink_pps]),
                        Series::new(
                            "offered by the generator",
                            vec![r.generator_pps, r.generator_pps, r.gtpu_generator_pps],
                        ),
                    ],
                    "packets per second",
                )?,
            }
        }
        "vrrp-failover" => {
            let rows: Vec<vrrp::FailoverRow> = parse(run)?;
            anyhow::ensure!(!rows.is_empty(), "runs/{}: no rows", run.file);
            Figure {
                title: "Traffic lost when the VRRP master fails: edgeplane against keepalived"
                    .into(),
                caption: rows
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}: {:.0} ms lost (runs {:?}), bound {:.0} ms",
                            r.implementation,
                            r.family,
                            r.lost_ms,
                            r.lost_ms_runs,
                            r.master_down_interval_ms
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                plot: bars(
                    &rows
                        .iter()
                        .map(|r| {
                            format!(
                                "{} {}, advert {} ms",
                                r.implementation, r.family, r.advert_interval_ms
                            )
                        })
                        .collect::<Vec<_>>(),
                    &[
                        Series::new(
                            "probe traffic lost (median)",
                            rows.iter().map(|r| r.lost_ms).collect(),
                        ),
                        Series::new(
                            "Master_Down_Interval (the bound)",
                            rows.iter().map(|r| r.master_down_interval_ms).collect(),
                        ),
                    ],
                    "ms",
                )?,
            }
        }
        "migration" => {
            let r: migration::BenchReport = parse(run)?;
            Figure {
                title: format!("Migration pause against the wait with nothing moving ({name})"),
                caption: format!(
                    "{} migrations: pause p50 {:.2} ms, p99 {:.2} ms against {:.2} / {:.2} ms just before each ({:.1} x at p50); switch p50 {} us; {} held packets released, {} requests lost.",
                    r.migrations, r.pause_ms_p50, r.pause_ms_p99, r.baseline_wait_ms_p50, r.baseline_wait_ms_p99,
                    r.pause_over_baseline_p50, r.switch_us_p50, r.released_total, r.lost_requests
                ),
                plot: distribution(
                    &[
                        Series::new("longest request wait during a migration", r.pause_ms_samples),
                        Series::new(
                            "the same wait just before, nothing moving",
                            r.baseline_wait_ms_samples,
                        ),
                    ],
                    "ms",
                )?,
            }
        }
        "sip-latency" => {
            let v = run.result.as_ref().context("no result")?;
            if v.get("kamailio").is_some() {
                let r: sip::KamailioRuns = parse(run)?;
                Figure {
                    title: "SIP monitor against Kamailio with pua_dialoginfo: 200 to PUBLISH".into(),
                    caption: format!(
                        "The same calls on fresh labs, each timed from the 200 to the INVITE reaching the transit host to the PUBLISH saying the call is up leaving it. The monitor (passive, talking_on = \"200\"), {} of {} calls: p50 {:.3} ms, p99 {:.3} ms. Kamailio proxying them (dialog, pua, pua_dialoginfo), {} of {}: p50 {:.3} ms, p99 {:.3} ms. The monitor takes {:.2} x Kamailio's time at p50, {:.2} x at p99.",
                        r.monitor.measured, r.monitor.calls, r.monitor.p50_ms, r.monitor.p99_ms,
                        r.kamailio.measured, r.kamailio.calls, r.kamailio.p50_ms, r.kamailio.p99_ms,
                        r.monitor.p50_ms / r.kamailio.p50_ms, r.monitor.p99_ms / r.kamailio.p99_ms
                    ),
                    plot: distribution(
                        &[
                            Series::new("edgeplane sip-monitor", r.monitor.samples_ms),
                            Series::new(
                                "Kamailio proxy with pua_dialoginfo, same calls",
                                r.kamailio.samples_ms,
                            ),
                        ],
                        "ms from the 200 reaching the host to the PUBLISH leaving it",
                    )?,
                }
            } else if v.get("quiet").is_some() {
                let r: sip::FloodRuns = parse(run)?;
                Figure {
                    title: "Wire-to-PUBLISH latency beside a flood of malformed SIP".into(),
                    caption: format!(
                        "p99: {:.3} ms beside the flood to the SIP port, {:.3} ms beside the same flood to an unwatched port (the baseline), {:.3} ms quiet; {} of {} flood datagrams counted as parse errors.",
                        r.flooded.p99_ms, r.baseline.p99_ms, r.quiet.p99_ms, r.flood_refused, r.flood_sent
                    ),
                    plot: distribution(
                        &[
                            Series::new("flood to the SIP port", r.flooded.samples_ms),
                            Series::new("flood to an unwatched port", r.baseline.samples_ms),
                            Series::new("quiet", r.quiet.samples_ms),
                        ],
                        "ms from the ACK on the wire to the PUBLISH on the wire",
                    )?,
                }
            } else {
                let r: sip::LatencyRow = parse(run)?;
                Figure {
                    title: "Wire-to-PUBLISH latency of the SIP monitor".into(),
                    caption: format!(
                        "{} of {} calls measured: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; the monitored host's share p50 {:.3} ms. This run has no baseline: `sip-latency --kamailio` runs calls against Kamailio, `--flood N` beside a flood and a baseline flood.",
                        r.measured, r.calls, r.p50_ms, r.p99_ms, r.max_ms, r.monitor_p50_ms
                    ),
                    plot: distribution(
                        &[Series::new("ACK to PUBLISH", r.samples_ms)],
                        "ms from the ACK on the wire to the PUBLISH on the wire",
                    )?,
                }
            }
        }
        "pfcp" => {
            let r: pfcp::PfcpBench = parse(run)?;
            Figure {
                title: "PFCP session establishments through the gateway against Heartbeats".into(),
                caption: format!(
                    "{} sessions, {} in flight, median of {} rounds: {:.0} establishments/s, {:.0} deletions/s, heartbeats {:.0}/s on the same socket (establishment/heartbeat {:.2}).",
                    r.sessions, r.window, r.rounds.len(), r.establishments_per_s, r.deletions_per_s,
                    r.heartbeats_per_s, r.establishment_vs_heartbeat
                ),
                plot: bars(
                    &(1..=r.rounds.len()).map(|i| format!("round {i}")).collect::<Vec<_>>(),
                    &[
                        Series::new("establishments/s", r.rounds.iter().map(|x| x.establishments_per_s).collect()),
                        Series::new("heartbeats/s (the baseline)", r.rounds.iter().map(|x| x.heartbeats_per_s).collect()),
                        Series::new("deletions/s", r.rounds.iter().map(|x| x.deletions_per_s).collect()),
                        Series::new(
                            "the engine alone, establishments/s",
                            r.rounds.iter().map(|x| x.engine_establishments_per_s).collect(),
                        ),
                    ],
                    "messages per second",
                )?,
            }
        }
        "cluster-convergence" => {
            let r: cluster::Convergence = parse(run)?;
            Figure {
                title: format!("An etcd change to every LB's table against a bare watcher ({} LBs)", r.lbs),
                caption: format!(
                    "{} changes: every table flipped p50 {:.1} ms, p99 {:.1} ms; the bare watcher heard them p50 {:.1} ms, p99 {:.1} ms.",
                    r.changes, r.p50_ms, r.p99_ms, r.watch_p50_ms, r.watch_p99_ms
                ),
                plot: distribution(
                    &[
                        Series::new("every LB's table flipped", r.samples_ms),
                        Series::new("a bare etcd watcher heard it", r.watch_samples_ms),
                    ],
                    "ms after the change was committed",
                )?,
            }
        }
        "cluster-detection" => {
            let r: cluster::Detection = parse(run)?;
            let ttl = r.lease_ttl_s as f64 * 1000.0;
            Figure {
                title: "A SIGKILLed gateway out of every LB's table against the lease TTL".into(),
                caption: format!(
                    "p50 {:.0} ms, max {:.0} ms: {:.2} x the {} s lease TTL.",
                    r.p50_ms, r.max_ms, r.max_over_ttl, r.lease_ttl_s
                ),
                plot: bars(
                    &(1..=r.samples_ms.len())
                        .map(|i| format!("kill {i}"))
                        .collect::<Vec<_>>(),
                    &[
                        Series::new("out of every table", r.samples_ms.clone()),
                        Series::new("the lease TTL", vec![ttl; r.samples_ms.len()]),
                    ],
                    "ms after the SIGKILL",
                )?,
            }
        }
        "sip-scale" => {
            let r: sip_scale::ScaleRow = parse(run)?;
            Figure {
                title: format!(
                    "Memory and disk per registered terminal ({} terminals)",
                    r.terminals
                ),
                caption: format!("{} of {} statuses stored.", r.stored_online, r.terminals),
                plot: bars(
                    &[
                        "sip-monitor, memory".to_string(),
                        "presence server, memory".to_string(),
                        "presence store, disk".to_string(),
                    ],
                    &[Series::new(
                        "bytes per terminal",
                        vec![
                            r.monitor_bytes_per_terminal,
                            r.presence_bytes_per_terminal,
                            r.store_disk_bytes_per_terminal,
                        ],
                    )],
                    "bytes",
                )?,
            }
        }
        other => anyhow::bail!(
            "runs/{}: the report has no plot for benchmark {other:?}",
            run.file
        ),
    })
}

/// The values of a result as table rows: scalars by name (nested objects
/// as `a.b`), arrays by their length.
fn rows(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                rows(&key, v, out);
            }
        }
        Value::Array(a) => out.push((prefix.to_string(), format!("{} values", a.len()))),
        Value::Number(n) => out.push((
            prefix.to_string(),
            match n.as_f64() {
                Some(f) if n.is_f64() => format!("{f:.3}"),
                _ => n.to_string(),
            },
        )),
        other => out.push((
            prefix.to_string(),
            other.to_string().trim_matches('"').to_string(),
        )),
    }
}

fn table(v: &Value) -> String {
    let mut h = String::from("<table>");
    match v {
        // A list of rows (xdp, vrrp-failover): one table row each.
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let cols: Vec<String> = items[0].as_object().unwrap().keys().cloned().collect();
            h.push_str("<tr>");
            for c in &cols {
                let _ = write!(h, "<th>{}</th>", esc(c));
            }
            h.push_str("</tr>");
            for it in items {
                h.push_str("<tr>");
                for c in &cols {
                    let mut cell = Vec::new();
                    rows("", &it[c], &mut cell);
                    let text = match (&it[c], cell.first()) {
                        (Value::Array(a), _) => a
                            .iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        (_, Some((_, t))) => t.clone(),
                        _ => String::new(),
                    };
                    let _ = write!(h, "<td>{}</td>", esc(&text));
                }
                h.push_str("</tr>");
            }
        }
        v => {
            let mut r = Vec::new();
            rows("", v, &mut r);
            for (k, val) in r {
                let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(&k), esc(&val));
            }
        }
    }
    h.push_str("</table>");
    h
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Run in the browser when the page loads: see the module's doc.
pub const CHECK_SCRIPT: &str = r#"
(function () {
  const figs = document.querySelectorAll('figure[data-marks]');
  let ok = 0;
  for (const f of figs) {
    const svg = f.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : null;
    const want = JSON.parse(f.dataset.marks);
    const els = svg ? Array.from(svg.querySelectorAll('*')) : [];
    const counted = want.map(([colour, _]) => els.filter(el =>
      (el.getAttribute('fill') || '').toUpperCase() === colour ||
      (el.getAttribute('stroke') || '').toUpperCase() === colour).length);
    const drawn = !!box && box.width > 0 && box.height > 0 &&
      counted.every((k, i) => k >= want[i][1]);
    f.dataset.rendered = drawn ? 'yes' : 'no';
    f.dataset.counted = JSON.stringify(counted);
    if (drawn) ok++;
  }
  const c = document.getElementById('check');
  c.textContent = ok + ' of ' + figs.length + ' plots rendered with all their marks';
  c.dataset.rendered = ok;
  c.dataset.figures = figs.length;
})();
"#;

const STYLE: &str = "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}\
h2{border-top:1px solid #ccc;padding-top:1em}code{background:#f4f4f4;padding:0 .2em}\
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.15em .5em;text-align:left}\
figure{margin:1em 0}figcaption{font-size:.9em;color:#444}.failed{color:#b00}\
pre{background:#f8f8f8;overflow-x:auto;font-size:.75em;max-height:20em}";

/// Render DIR/index.html from DIR's runs.
pub fn render(dir: &Path) -> anyhow::Result<Written> {
    let (machine, runs) = load(dir)?;
    let mut order: Vec<&str> = Vec::new();
    for r in &runs {
        if !order.contains(&r.bench.as_str()) {
            order.push(&r.bench);
        }
    }
    let mut body = String::new();
    let mut toc = String::new();
    let (mut figures_n, mut failed) = (0, 0);
    for bench in &order {
        let group: Vec<&Run> = runs.iter().filter(|r| r.bench == *bench).collect();
        let ok: Vec<&Run> = group
            .iter()
            .copied()
            .filter(|r| r.result.is_some())
            .collect();
        let _ = write!(toc, "<li><a href=\"#{b}\">{b}</a></li>", b = esc(bench));
        let _ = write!(body, "<section id=\"{b}\"><h2>{b}</h2>", b = esc(bench));
        for r in &group {
            let _ = write!(
                body,
                "<p>{} <br><code>{}</code> ({:.0} s)</p>",
                esc(&r.what),
                esc(&r.command),
                r.secs
            );
            if let Some(e) = &r.error {
                failed += 1;
                let _ = write!(body, "<p class=\"failed\">failed: {}</p>", esc(e));
            } else if r.result.is_none() {
                failed += 1;
                body.push_str("<p class=\"failed\">failed: no result recorded</p>");
            }
        }
        if !ok.is_empty() {
            for f in figures(bench, &ok)? {
                figures_n += 1;
                let marks = serde_json::to_string(&f.plot.marks)?;
                let _ = write!(
                    body,
                    "<figure data-marks=\"{}\"><figcaption><b>{}</b></figcaption>{}<figcaption>{}</figcaption></figure>",
                    esc(&marks),
                    esc(&f.title),
                    f.plot.svg,
                    esc(&f.caption)
                );
            }
        }
        for r in &ok {
            let v = r.result.as_ref().unwrap();
            let _ = write!(
                body,
                "<details><summary>{} figures</summary>{}<pre>{}</pre></details>",
                esc(&label(r)),
                table(v),
                esc(&serde_json::to_string_pretty(v)?)
            );
        }
        body.push_str("</section>");
    }
    let when = if machine.date.is_empty() {
        "an unrecorded date".to_string()
    } else {
        esc(&machine.date)
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>edgeplane benchmarks</title><style>{STYLE}</style></head><body>\
<h1>edgeplane benchmarks</h1>\
<p>Every benchmark beside the baseline it ran with, in the same run. Made by <code>cargo xtask bench --report</code> on {when}: \
commit <code>{}</code>{}, kernel {}, {} CPUs ({}). The machines are shared and noisy: read the ratios, not the absolute figures. \
The criterion benches (<code>cargo xtask bench criterion</code>) have no baseline and are not here; BENCHMARKS.md has them.</p>\
<p id=\"check\">(the plots are checked when a browser runs this page's script)</p><ul>{toc}</ul>{body}<script>{CHECK_SCRIPT}</script></body></html>\n",
        esc(&machine.commit),
        if machine.dirty { " with uncommitted changes" } else { "" },
        esc(&machine.kernel),
        machine.cpus,
        esc(&machine.cpu),
    );
    let path = dir.join("index.html");
    std::fs::write(&path, html).with_context(|| path.display().to_string())?;
    Ok(Written {
        path,
        runs: runs.len(),
        failed,
        figures: figures_n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bench: &str, result: Value) -> Run {
        Run {
            bench: bench.into(),
            args: vec![],
            what: String::new(),
            command: format!("edgeplane-lab bench {bench} --json"),
            started_unix: 0,
            secs: 0.0,
            result: Some(result),
            error: None,
            file: format!("01-{bench}.json"),
        }
    }

    #[test]
    fn a_result_of_another_shape_is_refused_with_the_file_named() {
        let r = run("pfcp", serde_json::json!({"sessions": 3}));
        let e = figures("pfcp", &[&r]).err().unwrap();
        assert!(format!("{e:#}").contains("runs/01-pfcp.json"), "{e:#}");
    }

    #[test]
    fn an_unknown_benchmark_is_refused() {
        let r = run("warp", serde_json::json!({}));
        assert!(figures("warp", &[&r]).is_err());
    }

    #[test]
    fn the_table_flattens_objects_and_counts_arrays() {
        let t = table(&serde_json::json!({"a": {"b": 1.5}, "s": [1, 2, 3], "m": "x<y"}));
        assert!(t.contains("<th>a.b</th><td>1.500</td>"), "{t}");
        assert!(t.contains("<td>3 values</td>"), "{t}");
        assert!(t.contains("x&lt;y"), "{t}");
    }
}
