//! `edgeplane presence ...`: the presence store's commands.

use control::api::Request;

use crate::cli::{print_json, Call};

#[derive(clap::Subcommand)]
pub enum PresenceCmd {
    /// Stored statuses (of one user, or all).
    Show {
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A user's status changes, published and reconciled.
    History {
        user: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: PresenceCmd, call: &Call) -> anyhow::Result<()> {
    use control::presence::{HistoryRow, Row};
    let line = |user: &str, source: &str, status: &str, when: f64, cause: Option<&str>| {
        println!(
            "{user:<28} {source:<16} {status:<11} {when:.3}{}",
            cause.map(|c| format!("  ({c})")).unwrap_or_default()
        );
    };
    match cmd {
        PresenceCmd::Show { user, json } => {
            let v = call(Request::PresenceShow { user })?;
            if json {
                print_json(&v);
            } else {
                let rows: Vec<Row> = serde_json::from_value(v)?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                rows.iter().for_each(|r| {
                    let left = r
                        .expires
                        .map(|e| format!("expires in {:.0} s", (e - now).max(0.0)));
                    line(&r.user, &r.source, &r.status, r.updated, left.as_deref())
                });
            }
        }
        PresenceCmd::History { user, json } => {
            let v = call(Request::PresenceHistory { user })?;
            if json {
                print_json(&v);
            } else {
                let rows: Vec<HistoryRow> = serde_json::from_value(v)?;
                rows.iter()
                    .for_each(|r| line(&r.user, &r.source, &r.status, r.at, Some(&r.cause)));
            }
        }
    }
    Ok(())
}
