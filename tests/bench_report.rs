//! `cargo xtask bench --report`'s page, rendered by headless Chromium
//! (Debian's `chromium`, installed by `cargo xtask setup`).
//!
//! The report is made the way xtask makes it: `edgeplane-lab bench-record`
//! runs a benchmark with `--json` into a run file, and `edgeplane-lab
//! bench-report` renders the runs. Four benchmarks are run here, live and
//! small (xdp, migration, sip-latency, pfcp: the quick ones); the others
//! come from the committed report's runs (docs/bench/runs, made by the
//! command in BENCHMARKS.md), so every plot kind the report has is drawn.
//! Chromium loads the page; the page's own script counts, per plot, the
//! marks drawn in each series' colour against what the renderer drew, and
//! the test reads that back from the DOM Chromium dumps. A copy of the
//! page with one colour's marks removed must fail the same check.

mod common;

use std::{path::Path, process::Command};

use testlab::bench::report;

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/bench");

fn lab() -> std::path::PathBuf {
    testlab::lab_bin(Path::new(env!("CARGO_BIN_EXE_edgeplane")))
}

/// Chromium's DOM of `page` after its scripts ran.
fn dump_dom(page: &Path, profile: &Path) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1000,3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (Debian's package; cargo xtask setup installs it)");
    assert!(
        out.status.success(),
        "chromium: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of attribute `name` in the first tag that starts with `tag`.
fn attr<'a>(dom: &'a str, tag: &str, name: &str) -> Option<&'a str> {
    let at = dom.find(tag)?;
    attr_in(&dom[at..at + dom[at..].find('>')?], name)
}

/// The value of attribute `name` in a tag's head (`<tag a="b" ...`).
fn attr_in<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let v = head.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&head[v..v + head[v..].find('"')?])
}

/// Every `<figure ...>` head in the DOM: (rendered, the marks wanted, the
/// marks counted).
fn figures(dom: &str) -> Vec<(String, String, String)> {
    dom.match_indices("<figure ")
        .map(|(i, _)| {
            let head = &dom[i..i + dom[i..].find('>').unwrap()];
            let get = |n: &str| attr_in(head, n).unwrap_or("").to_string();
            (get("data-rendered"), get("data-marks"), get("data-counted"))
        })
        .collect()
}

#[test]
fn the_report_renders_every_plot_in_headless_chromium() {
    if !common::kernel_available("bench_report") {
        return;
    }
    let _serial = common::serial();
    let dir = tempdir();
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    // Live runs, small.
    let live: &[(&str, &[&str])] = &[
        ("xdp", &["--rounds", "2", "--runs", "100"]),
        ("migration", &["--count", "8"]),
        ("sip-latency", &["--calls", "100", "--kamailio"]),
        ("pfcp", &["--rounds", "1", "--sessions", "2000"]),
    ];
    for (i, (bench, args)) in live.iter().enumerate() {
        let file = runs.join(format!("{:02}-{bench}.json", i + 1));
        let st = Command::new(lab())
            .arg("bench-record")
            .arg("--out")
            .arg(&file)
            .args(["--what", "a small live run", bench])
            .args(*args)
            .status()
            .unwrap();
        assert!(st.success(), "bench-record {bench}: {st}");
    }
    // The committed report's runs of every other benchmark.
    let mut committed = 0;
    let mut entries: Vec<_> = std::fs::read_dir(Path::new(DOCS).join("runs"))
        .expect(
            "docs/bench/runs: the committed report (cargo xtask bench --report --out docs/bench)",
        )
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let run: report::Run = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        if run.result.is_none() || live.iter().any(|(b, _)| *b == run.bench) {
            continue;
        }
        committed += 1;
        std::fs::copy(
            &p,
            runs.join(format!("5{}", p.file_name().unwrap().to_string_lossy())),
        )
        .unwrap();
    }
    assert!(committed >= 6, "only {committed} committed runs to add");
    let w = report::render(&dir).unwrap();
    assert_eq!(w.failed, 0);
    let (_, loaded) = report::load(&dir).unwrap();
    let mut kinds: Vec<&str> = loaded.iter().map(|r| r.bench.as_str()).collect();
    kinds.dedup();
    for want in [
        "xdp",
        "migration",
        "sip-latency",
        "pfcp",
        "vrrp-failover",
        "gateway-changes",
        "cluster-convergence",
        "cluster-detection",
    ] {
        assert!(kinds.contains(&want), "no {want} run in {kinds:?}");
    }
    let html = std::fs::read_to_string(&w.path).unwrap();
    // Each plot beside its baseline from the same run, by the legend.
    for legend in [
        "floor program, same run",
        "the same wait just before, nothing moving",
        "heartbeats/s (the baseline)",
        "keepalived",
        "a bare etcd watcher heard it",
        "the lease TTL",
        "(--no-chain)",
        "Kamailio proxy with pua_dialoginfo, same calls",
    ] {
        assert!(html.contains(legend), "the report lacks {legend:?}");
    }

    let profile = dir.join("chromium");
    let dom = dump_dom(&w.path, &profile);
    let figs = figures(&dom);
    assert_eq!(figs.len(), w.figures, "figures in the DOM");
    for (rendered, wanted, counted) in &figs {
        assert_eq!(
            rendered, "yes",
            "a plot not rendered: wanted {wanted}, counted {counted}"
        );
    }
    assert_eq!(
        attr(&dom, "<p id=\"check\"", "data-rendered"),
        Some(&*w.figures.to_string())
    );
    assert_eq!(
        attr(&dom, "<p id=\"check\"", "data-figures"),
        Some(&*w.figures.to_string())
    );
    eprintln!(
        "bench_report: {} plots rendered, from {} runs",
        w.figures, w.runs
    );

    // The check can fail: the first series' colour taken out of every plot.
    let broken = dir.join("broken.html");
    let colour = format!(
        "#{:02X}{:02X}{:02X}",
        report::plot::COLOURS[0].0,
        report::plot::COLOURS[0].1,
        report::plot::COLOURS[0].2
    );
    // (Only the SVG's attributes: the figure's data-marks quote it as &quot;.)
    std::fs::write(
        &broken,
        html.replace(&format!("\"{colour}\""), "\"#000001\""),
    )
    .unwrap();
    let dom = dump_dom(&broken, &profile);
    let figs = figures(&dom);
    assert_eq!(figs.len(), w.figures);
    assert!(
        figs.iter().all(|(r, _, _)| r == "no"),
        "a plot without its first series passed the check: {figs:?}"
    );
    assert_eq!(attr(&dom, "<p id=\"check\"", "data-rendered"), Some("0"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The committed report is what its runs render to now, and BENCHMARKS.md
/// links it.
#[test]
fn the_committed_report_is_current_and_linked() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("runs")).unwrap();
    for e in std::fs::read_dir(Path::new(DOCS).join("runs")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("runs").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        Path::new(DOCS).join("machine.json"),
        dir.join("machine.json"),
    )
    .unwrap();
    let w = report::render(&dir).unwrap();
    let fresh = std::fs::read_to_string(&w.path).unwrap();
    let committed = std::fs::read_to_string(Path::new(DOCS).join("index.html")).unwrap();
    assert!(
        fresh == committed,
        "docs/bench/index.html is not what its runs render to; run `cargo xtask bench --report --from docs/bench`"
    );
    let md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/BENCHMARKS.md")).unwrap();
    assert!(
        md.contains("(docs/bench/index.html)"),
        "BENCHMARKS.md does not link the report"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "edgeplane-report-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
