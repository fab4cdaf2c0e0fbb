//! `edgeplane lb ...`: the lb role's commands and how they print.

use control::{
    api::{DigestView, FlowSpec, GatewayView, LookupKey, LookupView, Request},
    field::MacAddr,
    lb::config::Backend,
};

use crate::cli::{print_json, Call};

#[derive(clap::Subcommand)]
pub enum LbCmd {
    /// Gateways of an lb instance.
    Gateways {
        #[command(subcommand)]
        cmd: GwCmd,
    },
    /// Maglev table digest of every lb instance (equal digests = equal tables).
    Digest {
        #[arg(long)]
        json: bool,
    },
    /// Which gateway a session reaches, by running the attached program.
    Lookup {
        #[arg(long, conflicts_with = "flow", required_unless_present = "flow")]
        teid: Option<u32>,
        /// SRC:PORT-DST:PORT/PROTO (IPv6: [ADDR]:PORT)
        #[arg(long)]
        flow: Option<FlowSpec>,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum GwCmd {
    List {
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: std::net::IpAddr,
        #[arg(long)]
        mac: MacAddr,
        /// Egress interface (default: the ingress interface, XDP_TX).
        #[arg(long)]
        via: Option<String>,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Top 8 bits of the TEIDs the gateway allocates (0-255).
        #[arg(long)]
        teid_prefix: Option<u32>,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Out of the Maglev table (new sessions go elsewhere), its GTP-U
    /// sessions still reach it by TEID prefix; removed after the timeout.
    Drain {
        name: String,
        /// Seconds until it leaves the fast path (default: the lb's
        /// drain_timeout, 300).
        #[arg(long)]
        timeout: Option<u64>,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Back in the table with its weight.
    Undrain {
        name: String,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: LbCmd, call: &Call) -> anyhow::Result<()> {
    match cmd {
        LbCmd::Gateways { cmd } => {
            let (v, json) = match cmd {
                GwCmd::List { interface, json } => (call(Request::LbGateways { interface })?, json),
                GwCmd::Add {
                    name,
                    address,
                    mac,
                    via,
                    weight,
                    teid_prefix,
                    interface,
                    json,
                } => {
                    let gateway = Backend {
                        name,
                        address,
                        mac,
                        via,
                        weight,
                        teid_prefix,
                    };
                    if let Err((field, reason)) = gateway.validate() {
                        anyhow::bail!("--{field}: {reason}");
                    }
                    (call(Request::LbGatewayAdd { interface, gateway })?, json)
                }
                GwCmd::Remove {
                    name,
                    interface,
                    json,
                } => (call(Request::LbGatewayRemove { interface, name })?, json),
                GwCmd::Drain {
                    name,
                    timeout,
                    interface,
                    json,
                } => (
                    call(Request::LbGatewayDrain {
                        interface,
                        name,
                        timeout,
                    })?,
                    json,
                ),
                GwCmd::Undrain {
                    name,
                    interface,
                    json,
                } => (call(Request::LbGatewayUndrain { interface, name })?, json),
            };
            if json {
                print_json(&v);
            } else if v.is_array() {
                let rows: Vec<GatewayView> = serde_json::from_value(v)?;
                println!(
                    "{:<16} {:<15} {:<17} {:<12} {:>6} {:>7} {:>7} {:>6}  STATE",
                    "NAME", "ADDRESS", "MAC", "VIA", "WEIGHT", "SLOTS", "SHARE%", "PREFIX"
                );
                for g in rows {
                    let prefix = g
                        .teid_prefix
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into());
                    let state = g
                        .draining
                        .map(|s| format!("draining ({s} s left)"))
                        .unwrap_or_else(|| "active".into());
                    println!(
                        "{:<16} {:<15} {:<17} {:<12} {:>6} {:>7} {:>7.2} {:>6}  {state}",
                        g.name, g.address, g.mac, g.via, g.weight, g.slots, g.share, prefix
                    );
                }
            } else {
                let d: DigestView = serde_json::from_value(v)?;
                println!(
                    "ok; table on {} is now {} (generation {})",
                    d.interface, d.digest, d.generation
                );
            }
            Ok(())
        }
        LbCmd::Digest { json } => {
            let v = call(Request::LbDigest)?;
            if json {
                print_json(&v);
            } else {
                let rows: Vec<DigestView> = serde_json::from_value(v)?;
                for d in rows {
                    println!(
                        "{} {} (M={} seed={} key={} gateways={} generation={})",
                        d.interface,
                        d.digest,
                        d.table_size,
                        d.seed,
                        d.key,
                        d.gateways,
                        d.generation
                    );
                }
            }
            Ok(())
        }
        LbCmd::Lookup {
            teid,
            flow,
            interface,
            json,
        } => {
            let key = match (teid, flow) {
                (Some(t), _) => LookupKey::Teid(t),
                (None, Some(f)) => LookupKey::Flow(f),
                (None, None) => anyhow::bail!("give --teid N or --flow SRC:PORT-DST:PORT/PROTO"),
            };
            let v = call(Request::LbLookup { interface, key })?;
            if json {
                print_json(&v);
            } else {
                let l: LookupView = serde_json::from_value(v)?;
                match l.gateway {
                    Some(g) => println!(
                        "{g} (verdict {}, dst mac {}, via {})",
                        l.verdict, l.dst_mac, l.interface
                    ),
                    None => println!("not forwarded (verdict {})", l.verdict),
                }
            }
            Ok(())
        }
    }
}
