//! A private PostgreSQL server for tests (Debian's postgresql-15): its own
//! data directory and Unix socket, no TCP, stopped and removed on drop.

use std::{path::PathBuf, process::Command};

use anyhow::{bail, Context as _};

pub struct PgLab {
    dir: PathBuf,
    pub port: u16,
}

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .context("runuser")?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl PgLab {
    pub fn start(tag: &str) -> anyhow::Result<Self> {
        if !std::path::Path::new(BIN).join("initdb").exists() {
            bail!("PostgreSQL 15 is not installed (cargo xtask setup installs postgresql-15)");
        }
        let dir = std::env::temp_dir().join(format!("edgeplane-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()?;
        let port = 55_000 + (std::process::id() % 1000) as u16;
        let lab = Self { dir, port };
        let data = lab.dir.join("data");
        as_postgres(&[
            &format!("{BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])?;
        let opts = format!(
            "-k {} -p {port} -c listen_addresses='' -c fsync=off",
            lab.dir.display()
        );
        as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "-l",
            lab.dir.join("log").to_str().unwrap(),
            "start",
        ])?;
        Ok(lab)
    }

    /// A `postgresql://` URL reaching the server over its Unix socket.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    fn url_of(&self, db: &str) -> String {
        let host = self.dir.to_string_lossy().replace('/', "%2F");
        format!("postgresql://postgres@{host}:{}/{db}", self.port)
    }

    /// A new, empty database `name` on this server; its URL.
    pub fn database(&self, name: &str) -> anyhow::Result<String> {
        as_postgres(&[
            &format!("{BIN}/createdb"),
            "-h",
            self.dir.to_str().context("a UTF-8 directory")?,
            "-p",
            &self.port.to_string(),
            name,
        ])?;
        Ok(self.url_of(name))
    }
}

impl Drop for PgLab {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap_or(""),
            "-m",
            "immediate",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
