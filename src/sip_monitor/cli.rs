//! `edgeplane sip parse`: the SIP parser the monitor uses, on files.

use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum SipCmd {
    /// Print each file's message as parsed, or why it is not valid SIP;
    /// exit 1 if any file is not.
    Parse {
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: SipCmd) -> anyhow::Result<()> {
    let SipCmd::Parse { files, json } = cmd;
    anyhow::ensure!(!files.is_empty(), "name at least one file");
    let mut bad = 0;
    let mut out = Vec::new();
    for f in &files {
        let data = std::fs::read(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        match control::sip_monitor::sip::parse(&data) {
            Ok((m, _)) => {
                if json {
                    out.push(serde_json::json!({ "file": f, "valid": true, "message": m }));
                } else {
                    let first = match &m.start {
                        control::sip_monitor::sip::StartLine::Request { method, uri } => {
                            format!("{method} {uri}")
                        }
                        control::sip_monitor::sip::StartLine::Response { status, reason } => {
                            format!("{status} {reason} (to {})", m.cseq_method)
                        }
                    };
                    println!("{}: {first}", f.display());
                    println!(
                        "  call-id {}  cseq {} {}  branch {}",
                        m.call_id,
                        m.cseq,
                        m.cseq_method,
                        m.via_branch.as_deref().unwrap_or("-")
                    );
                    println!(
                        "  from {} tag {}  to {} tag {}",
                        m.from.aor(),
                        m.from.tag.as_deref().unwrap_or("-"),
                        m.to.aor(),
                        m.to.tag.as_deref().unwrap_or("-")
                    );
                    if let Some(c) = &m.contact {
                        println!(
                            "  contact {}{}",
                            c.uri,
                            c.expires
                                .map(|e| format!(" expires {e}"))
                                .unwrap_or_default()
                        );
                    }
                    if let Some(e) = m.expires {
                        println!("  expires {e}");
                    }
                    for md in &m.media {
                        println!(
                            "  media {} port {} {} codecs {}{}",
                            md.kind,
                            md.port,
                            md.proto,
                            md.codecs.join(","),
                            md.bandwidth_kbps
                                .map(|b| format!(" {b} kbit/s"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            Err(e) => {
                bad += 1;
                if json {
                    out.push(
                        serde_json::json!({ "file": f, "valid": false, "reason": e.to_string() }),
                    );
                } else {
                    println!("{}: not valid SIP: {e}", f.display());
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    if bad > 0 {
        std::process::exit(1);
    }
    Ok(())
}
