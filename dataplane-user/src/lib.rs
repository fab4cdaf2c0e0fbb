//! Userspace side of the XDP programs: loading, attaching, pinning, typed
//! map wrappers and BPF_PROG_TEST_RUN.

mod batch;
pub mod egress;
pub mod gateway;
pub mod lb;
pub mod migration;
pub mod pins;
mod ring;
pub mod router;
pub mod sip_monitor;
pub mod testrun;
pub mod xsk;

pub use aya::programs::XdpMode;
pub use pins::{entry_stats, Dataplane, LoadOptions};

/// The compiled XDP object (every program and map), built by `build.rs`.
pub static OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dataplane"));

/// XDP verdicts as the kernel returns them, and their names (one list,
/// in dataplane-common, shared with the stats' verdict prefix).
pub mod verdict {
    pub use dataplane_common::verdict::{name, ABORTED, DROP, PASS, REDIRECT, TX};
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bpffs is not mounted at {0} (mount it with `mount -t bpf bpf /sys/fs/bpf`, or run `cargo xtask setup`)")]
    NoBpffs(std::path::PathBuf),
    #[error("pinned map {path} does not match this build's layout: {what}; stop the daemon and rerun with --replace-pins to discard the old state (forwarding on the interface stops until the new program attaches)")]
    LayoutMismatch {
        path: std::path::PathBuf,
        what: String,
    },
    #[error("interface {0} does not exist")]
    NoInterface(String),
    #[error("interface {iface}: {source}; if another XDP program is attached, detach it first (`ip link set dev {iface} xdp off`)")]
    Attach {
        iface: String,
        source: aya::programs::ProgramError,
    },
    // `error`, not `source`: the message carries it, so a chain
    // printed with {:#} would say it twice.
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("program {0}: {1}{cause}", cause = cause(.1))]
    Program(String, aya::programs::ProgramError),
    #[error("map {0}: {1}{cause}", cause = cause(.1))]
    Map(&'static str, aya::maps::MapError),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |error| Error::Io { context, error }
}

/// Index of an interface in the caller's network namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| Error::NoInterface(name.into()))?;
    // SAFETY: valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(Error::NoInterface(name.into()));
    }
    Ok(idx)
}

/// MAC address of an interface in the caller's network namespace. Asked
/// of the kernel (SIOCGIFHWADDR), not sysfs: after `setns` /sys still shows
/// the namespace it was mounted in.
pub fn mac_of(name: &str) -> Result<[u8; 6]> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(Error::NoInterface(name.into()));
    }
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq with a
    // NUL-terminated name that fits.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io_err("socket")(std::io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
            *d = *s as libc::c_char;
        }
        let rc = libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req);
        libc::close(fd);
        if rc != 0 {
            return Err(Error::NoInterface(name.into()));
        }
        let sa = req.ifr_ifru.ifru_hwaddr.sa_data;
        Ok([
            sa[0] as u8,
            sa[1] as u8,
            sa[2] as u8,
            sa[3] as u8,
            sa[4] as u8,
            sa[5] as u8,
        ])
    }
}

pub fn format_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// ": " and the error beneath `e` (aya's syscall errors keep the errno
/// there), or nothing.
fn cause(e: &dyn std::error::Error) -> String {
    e.source().map(|s| format!(": {s}")).unwrap_or_default()
}
