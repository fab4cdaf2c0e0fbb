//! `cargo xtask package`: the Debian package (cargo-deb, from
//! `[package.metadata.deb]` in the root Cargo.toml), and the check
//! `cargo xtask test` runs on it: the files it must install are in it,
//! the unit verifies, the manual page and completions are what the binary
//! generates, the installed binary passes `edgeplane check` on every
//! installed example config, and the postinst makes the service's user
//! (run against a copy of /etc, never the host's).

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
    let r = check_installed(deb, &dir).and_then(|n| Ok((n, check_postinst(deb, &dir)?)));
    let _ = std::fs::remove_dir_all(&dir);
    let (checked, user) = r?;
    say(&format!(
        "package checked: {} files, the unit verifies, `edgeplane check` passes on {checked} installed examples, the postinst makes the service's user ({user})",
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

/// The system user and group the package's postinst must make.
const SERVICE_USER: &str = "edgeplane";

/// Run the package's postinst (`configure`, twice) in a private mount
/// namespace whose /etc is a copy of the host's, and check the user it
/// made there: a system uid, its own group, no login, the home the unit
/// names. The host's /etc is compared before and after. The entry, as
/// passwd has it.
fn check_postinst(deb: &Path, dir: &Path) -> anyhow::Result<String> {
    ensure!(
        super::is_root(),
        "checking the postinst needs root (a mount namespace)"
    );
    let ctl = dir.join("DEBIAN");
    run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&ctl))?;
    let etc = dir.join("etc-copy");
    run(Command::new("cp").arg("-a").arg("/etc").arg(&etc))?;
    // A host that has the user already (the package installed) must not
    // make the check pass without the postinst doing anything.
    for db in ["passwd", "group", "shadow", "gshadow"] {
        let f = etc.join(db);
        if let Ok(text) = std::fs::read_to_string(&f) {
            let kept: String = text
                .lines()
                .filter(|l| !l.starts_with(&format!("{SERVICE_USER}:")))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&f, kept)?;
        }
    }
    let host_before = std::fs::read("/etc/passwd")?;
    let script = r#"set -e
mount --bind "$1" /etc
sh "$2" configure
sh "$2" configure
getent passwd "$3"
getent group "$3"
"#;
    let out = stdout(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(&etc)
            .arg(ctl.join("postinst"))
            .arg(SERVICE_USER),
    )?;
    ensure!(
        std::fs::read("/etc/passwd")? == host_before,
        "the postinst check changed the host's /etc/passwd"
    );
    let mut lines = out.lines();
    let passwd = lines.next().unwrap_or_default().to_string();
    let group = lines.next().unwrap_or_default();
    let f: Vec<&str> = passwd.split(':').collect();
    ensure!(
        f.len() == 7,
        "the postinst made no user {SERVICE_USER}: {out:?}"
    );
    let uid: u32 = f[2].parse().context("uid")?;
    ensure!(
        (100..1000).contains(&uid),
        "{SERVICE_USER} is not a system user: {passwd}"
    );
    ensure!(
        f[5] == "/var/lib/edgeplane" && f[6].ends_with("nologin"),
        "{SERVICE_USER} has the wrong home or shell: {passwd}"
    );
    let g: Vec<&str> = group.split(':').collect();
    ensure!(
        g.len() == 4 && g[0] == SERVICE_USER && g[2] == f[3],
        "{SERVICE_USER}'s own group is not its primary group: {passwd} / {group}"
    );
    let made = std::fs::read_to_string(etc.join("passwd"))?
        .lines()
        .filter(|l| l.starts_with(&format!("{SERVICE_USER}:")))
        .count();
    ensure!(made == 1, "two runs of the postinst made {made} entries");
    Ok(passwd)
}
