//! TC egress companions of XDP role programs. XDP sees only what a host
//! receives; a role that must also see what the host sends (the
//! sip-monitor on the SIP server itself) has a classifier on the clsact
//! egress hook beside its XDP stage, sharing its maps. The link is a TCX
//! link pinned at `<dir>/egress_link` and, like the XDP link, replaced in
//! place by the next daemon, so a restart neither stops the copy nor
//! attaches it twice.

use std::{fs, path::Path};

use aya::{
    programs::{
        links::{FdLink, PinnedLink},
        tc::{self, TcAttachOptions},
        LinkOrder, SchedClassifier, TcAttachType,
    },
    Ebpf,
};
use tracing::{info, warn};

use crate::{io_err, Error, Result};

/// The pin of an interface's egress link, beside its XDP `link`.
pub(crate) const LINK_PIN: &str = "egress_link";

/// The egress classifier that goes with an XDP role program, if any.
pub(crate) fn companion(program: &str) -> Option<&'static str> {
    match program {
        "sip_monitor" => Some("sip_monitor_egress"),
        _ => None,
    }
}

pub(crate) fn classifier_mut<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> Result<&'a mut SchedClassifier> {
    ebpf.program_mut(name)
        .ok_or_else(|| Error::Other(format!("program {name} missing from object")))?
        .try_into()
        .map_err(|e| Error::Program(name.into(), e))
}

/// Attach the loaded classifier `name` to `interface`'s egress, taking
/// over the link pinned at `link_path` when there is one.
pub(crate) fn attach(
    ebpf: &mut Ebpf,
    name: &str,
    interface: &str,
    link_path: &Path,
) -> Result<FdLink> {
    let prog = classifier_mut(ebpf, name)?;
    if link_path.exists() {
        match PinnedLink::from_pin(link_path) {
            Ok(pinned) => {
                let fd: FdLink = pinned.into();
                match tc::SchedClassifierLink::try_from(fd) {
                    Ok(link) => match prog.attach_to_link(link) {
                        Ok(id) => {
                            let link = prog
                                .take_link(id)
                                .map_err(|e| Error::Program(name.into(), e))?;
                            info!(
                                interface,
                                "replaced the program behind the pinned egress link"
                            );
                            return FdLink::try_from(link)
                                .map_err(|e| Error::Other(format!("egress link: {e}")));
                        }
                        Err(e) => {
                            warn!(interface, error = %e, "pinned egress link unusable; attaching anew")
                        }
                    },
                    Err(e) => {
                        warn!(interface, error = %e, "pinned egress link is not a TC link; attaching anew")
                    }
                }
            }
            Err(e) => warn!(interface, error = %e, "pinned egress link unreadable; attaching anew"),
        }
        fs::remove_file(link_path).map_err(io_err(format!("removing {}", link_path.display())))?;
    }
    let id = prog
        .attach_with_options(
            interface,
            TcAttachType::Egress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .map_err(|source| Error::Other(format!(
            "interface {interface}: attaching the TC egress program {name}: {source} (TCX needs Linux 6.6 or later)"
        )))?;
    let link = prog
        .take_link(id)
        .map_err(|e| Error::Program(name.into(), e))?;
    let fd = FdLink::try_from(link)
        .map_err(|e| Error::Other(format!("egress link is not a bpf_link: {e}")))?;
    let pinned = fd
        .pin(link_path)
        .map_err(|e| Error::Other(format!("pinning {}: {e}", link_path.display())))?;
    info!(interface, program = name, "tc egress program attached");
    Ok(pinned.into())
}

/// The names of the programs on `interface`'s TCX egress hook (in the
/// caller's namespace), first to last: what `status` and the tests read
/// to see one classifier per interface, however many daemons came before.
pub fn attached(interface: &str) -> Result<Vec<String>> {
    let (_, progs) = SchedClassifier::query_tcx(interface, TcAttachType::Egress)
        .map_err(|e| Error::Program(format!("tcx query on {interface}"), e))?;
    Ok(progs
        .iter()
        .map(|p| p.name_as_str().unwrap_or("?").to_string())
        .collect())
}
