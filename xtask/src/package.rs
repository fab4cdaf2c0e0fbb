//! `cargo xtask package`: the Debian package (cargo-deb, from
//! `[package.metadata.deb]` in the root Cargo.toml), and the check
//! `cargo xtask test` runs on it: the files it must install are in it,
//! the unit verifies, the manual page and completions are what the binary
//! generates, and the installed binary passes `edgeplane check` on every
//! installed example config.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure, Context as _};

use super::{cargo, cargo_bin, root, run, say};

/// cargo-deb, pinned as bpf-linker is.
pub const CARGO_DEB_VERSION: &str = "3.8.0";

/// Install cargo-deb if it is missing (part of `cargo xtask setup`).
pub fn setup() -> anyhow::Result<()> {
    let have = Command::new(cargo_bin().join("cargo-deb"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if have.contains(CARGO_DEB_VERSION) {
        say(&format!("cargo-deb {CARGO_DEB_VERSION}: present"));
        return Ok(());
    }
    say(&format!(
        "cargo-deb {CARGO_DEB_VERSION}: installing (1-2 minutes)"
    ));
    run(Command::new("cargo").args([
        "install",
        "cargo-deb",
        "--version",
        CARGO_DEB_VERSION,
        "--locked",
    ]))
}

/// What the binary generates into target/package for the package: the
/// manual page (gzipped) and the completions.
fn generate(bin: &Path, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let gen = |args: &[&str]| -> anyhow::Result<Vec<u8>> {
        let o = Command::new(bin).args(args).output()?;
        ensure!(
            o.status.success(),
            "edgeplane {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
        Ok(o.stdout)
    };
    std::fs::write(out.join("edgeplane.1"), gen(&["man"])?)?;
    // -n: no name or time in the header, so the same page gives the same
    // bytes.
    run(Command::new("gzip")
        .args(["-9nf"])
        .arg(out.join("edgeplane.1")))?;
    std::fs::write(out.join("edgeplane.bash"), gen(&["completions", "bash"])?)?;
    std::fs::write(out.join("_edgeplane"), gen(&["completions", "zsh"])?)?;
    std::fs::write(out.join("edgeplane.fish"), gen(&["completions", "fish"])?)?;
    Ok(())
}

/// Build the package; its path.
pub fn package() -> anyhow::Result<PathBuf> {
    setup()?;
    say("building the release binary for the package");
    run(cargo().args(["build", "--release", "--bin", "edgeplane"]))?;
    let out = root().join("target/package");
    generate(&root().join("target/release/edgeplane"), &out)?;
    let o = cargo()
        .args(["deb", "-p", "edgeplane", "--no-build", "--output"])
        .arg(&out)
        .output()
        .context("cargo deb")?;
    ensure!(
        o.status.success(),
        "cargo deb: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let deb = PathBuf::from(
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or_default(),
    );
    ensure!(
        deb.extension().is_some_and(|e| e == "deb") && deb.exists(),
        "cargo deb said {deb:?}"
    );
    say(&format!("package: {}", deb.display()));
    Ok(deb)
}

/// The files the package must install.
const MUST_HAVE: &[&str] = &[
    "./usr/bin/edgeplane",
    "./lib/systemd/system/edgeplane.service",
    "./usr/share/man/man1/edgeplane.1.gz",
    "./usr/share/bash-completion/completions/edgeplane",
    "./usr/share/zsh/vendor-completions/_edgeplane",
    "./usr/share/fish/vendor_completions.d/edgeplane.fish",
    "./usr/share/doc/edgeplane/README.md",
    "./usr/share/doc/edgeplane/operations.md",
    "./usr/share/doc/edgeplane/examples/lb.toml",
    "./usr/share/doc/edgeplane/examples/gateway.toml",
    "./usr/share/doc/edgeplane/examples/router.toml",
    "./usr/share/doc/edgeplane/examples/sip.toml",
    "./usr/share/doc/edgeplane/examples/migration.toml",
];

fn stdout(cmd: &mut Command) -> anyhow::Result<String> {
    let o = cmd.output().with_context(|| format!("{cmd:?}"))?;
    ensure!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Check the package at `deb` as installed into a scratch root.
pub fn check(deb: &Path) -> anyhow::Result<()> {
    let info = stdout(Command::new("dpkg-deb").arg("--info").arg(deb))?;
    for field in [
        "Package: edgeplane",
        "Depends:",
        "adduser",
        "Section: net",
        " postinst",
    ] {
        ensure!(
            info.contains(field),
            "the package's control has no {field:?}:\n{info}"
        );
    }
    let list = stdout(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    let files: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    let missing: Vec<&&str> = MUST_HAVE.iter().filter(|f| !files.contains(f)).collect();
    ensure!(
        missing.is_empty(),
        "the package lacks {missing:?}; it has:\n{list}"
    );
    let dir = std::env::temp_dir().join(format!("edgeplane-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let r = check_installed(deb, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let checked = r?;
    say(&format!(
        "package checked: {} files, the unit verifies, `edgeplane check` passes on {checked} installed examples",
        files.len()
    ));
    Ok(())
}

/// Unpack into `dir` and check what is there; how many examples passed.
fn check_installed(deb: &Path, dir: &Path) -> anyhow::Result<usize> {
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))?;
    let bin = dir.join("usr/bin/edgeplane");
    let version = stdout(Command::new(&bin).arg("--version"))?;
    ensure!(version.starts_with("edgeplane "), "{version}");
    // The manual page is roff with its name, and completions name the
    // subcommands.
    let man = stdout(
        Command::new("gzip")
            .arg("-dc")
            .arg(dir.join("usr/share/man/man1/edgeplane.1.gz")),
    )?;
    ensure!(
        man.contains(".TH edgeplane 1") && man.contains("check"),
        "not edgeplane's manual page"
    );
    let bash =
        std::fs::read_to_string(dir.join("usr/share/bash-completion/completions/edgeplane"))?;
    ensure!(
        bash.contains("_edgeplane()") && bash.contains("status"),
        "not edgeplane's bash completion"
    );
    // The unit, with the installed binary where it names /usr/bin.
    let unit = std::fs::read_to_string(dir.join("lib/systemd/system/edgeplane.service"))?;
    for key in [
        "User=edgeplane",
        "AmbientCapabilities=CAP_BPF",
        "Type=notify",
    ] {
        ensure!(unit.contains(key), "the unit has no {key}");
    }
    let local = dir.join("edgeplane.service");
    std::fs::write(
        &local,
        unit.replace("/usr/bin/edgeplane", &bin.display().to_string()),
    )?;
    let v = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&local)
        .output()?;
    let err = String::from_utf8_lossy(&v.stderr);
    ensure!(
        v.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
    let examples = dir.join("usr/share/doc/edgeplane/examples");
    let mut n = 0;
    for e in std::fs::read_dir(&examples)? {
        let p = e?.path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let o = Command::new(&bin).arg("check").arg(&p).output()?;
        if !o.status.success() {
            bail!(
                "edgeplane check {}: {}",
                p.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        n += 1;
    }
    ensure!(n >= 5, "only {n} examples installed");
    Ok(n)
}
