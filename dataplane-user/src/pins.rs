//! Loading the object with its maps pinned under
//! `<root>/<interface>/<MAP>` and the XDP link at `<root>/<interface>/link`,
//! so that a daemon that dies leaves forwarding running and the next one
//! takes the state over (ARCHITECTURE.md §5).

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use aya::{
    maps::{MapData, MapInfo, MapType},
    programs::{links::FdLink, links::PinnedLink, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use dataplane_common::{gw, lb, router, sip, steer, Counter, LayoutMeta, LAYOUT_MAGIC, LAYOUT_VERSION};
use tracing::{info, warn};

use crate::{io_err, Error, Result, OBJ};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Every map of the object, with the layout this build expects of it.
struct MapSpec {
    name: &'static str,
    kind: MapType,
    key: u32,
    value: u32,
    max: u32,
}

const fn size<T>() -> u32 {
    core::mem::size_of::<T>() as u32
}

const MAPS: &[MapSpec] = &[
    MapSpec { name: "META", kind: MapType::Array, key: 4, value: size::<LayoutMeta>(), max: 1 },
    MapSpec { name: "LB_ACTIVE", kind: MapType::Array, key: 4, value: 4, max: 1 },
    MapSpec { name: "LB_TABLE_META", kind: MapType::Array, key: 4, value: size::<lb::TableMeta>(), max: 2 },
    MapSpec { name: "LB_MAGLEV", kind: MapType::Array, key: 4, value: 4, max: 2 * lb::MAGLEV_MAX },
    MapSpec { name: "LB_GATEWAYS", kind: MapType::Array, key: 4, value: size::<lb::GatewayEntry>(), max: lb::GATEWAYS_MAX },
    MapSpec { name: "LB_TX_PORTS", kind: MapType::DevMapHash, key: 4, value: 8, max: 64 },
    MapSpec { name: "LB_STATS", kind: MapType::PerCpuArray, key: 4, value: size::<Counter>(), max: lb::stat::COUNT },
    MapSpec { name: "FLOOR_STATS", kind: MapType::PerCpuArray, key: 4, value: size::<Counter>(), max: lb::FLOOR_STATS_LEN },
    MapSpec { name: "GW_CONFIG", kind: MapType::Array, key: 4, value: size::<gw::GwConfig>(), max: 1 },
    MapSpec { name: "GW_SERVICES", kind: MapType::Hash, key: size::<gw::ServiceKey>(), value: size::<gw::ServiceVal>(), max: gw::GROUPS_MAX * 4 },
    MapSpec { name: "GW_SERVERS", kind: MapType::Array, key: 4, value: size::<gw::Server>(), max: gw::SERVERS_MAX },
    MapSpec { name: "GW_SELECT", kind: MapType::Array, key: 4, value: size::<gw::Selection>(), max: gw::GROUPS_MAX * gw::TYPES_MAX },
    MapSpec { name: "GW_TYPES", kind: MapType::Array, key: 4, value: size::<gw::TypeRule>(), max: gw::TYPE_RULES_MAX },
    MapSpec { name: "GW_AUTH", kind: MapType::LpmTrie, key: 4 + size::<gw::AuthKey>(), value: 4, max: 4096 },
    MapSpec { name: "GW_POOL", kind: MapType::Queue, key: 0, value: 2, max: gw::SESSIONS_MAX },
    MapSpec { name: "GW_FLOWS", kind: MapType::Hash, key: size::<gw::FlowKey>(), value: 2, max: gw::FLOWS_MAX },
    MapSpec { name: "GW_SESSIONS", kind: MapType::Array, key: 4, value: size::<gw::Session>(), max: gw::SESSIONS_MAX },
    MapSpec { name: "GW_SESS_STATS", kind: MapType::PerCpuArray, key: 4, value: size::<gw::SessionCounters>(), max: gw::SESSIONS_MAX },
    MapSpec { name: "GW_TX_PORTS", kind: MapType::DevMapHash, key: 4, value: 8, max: 64 },
    MapSpec { name: "RT_CFG", kind: MapType::Array, key: 4, value: size::<router::RouterCfg>(), max: 1 },
    MapSpec { name: "RT_LEASE", kind: MapType::Array, key: 4, value: 8, max: 1 },
    MapSpec { name: "RT_BUCKETS", kind: MapType::Array, key: 4, value: 4, max: router::BUCKETS },
    MapSpec { name: "RT_RATES", kind: MapType::PerCpuArray, key: 4, value: size::<Counter>(), max: router::BUCKETS },
    MapSpec { name: "RT_LAST", kind: MapType::Array, key: 4, value: size::<router::Fingerprint>(), max: router::BUCKETS },
    MapSpec { name: "RT_HELD", kind: MapType::RingBuf, key: 0, value: 0, max: 4 << 20 },
    MapSpec { name: "RT_STATS", kind: MapType::PerCpuArray, key: 4, value: size::<Counter>(), max: router::stat::COUNT },
    MapSpec { name: "SIP_PORTS", kind: MapType::Hash, key: 2, value: 4, max: 16 },
    MapSpec { name: "SIP_RING", kind: MapType::RingBuf, key: 0, value: 0, max: 8 << 20 },
    MapSpec { name: "SIP_STATS", kind: MapType::PerCpuArray, key: 4, value: size::<Counter>(), max: sip::stat::COUNT },
    MapSpec { name: "ST_STEER", kind: MapType::Hash, key: 4, value: size::<steer::Steering>(), max: 4096 },
    MapSpec { name: "ST_NETS", kind: MapType::Array, key: 4, value: size::<steer::NetEgress>(), max: steer::NETWORKS_MAX },
    MapSpec { name: "ST_TX_PORTS", kind: MapType::DevMapHash, key: 4, value: 8, max: 16 },
    MapSpec { name: "ST_XSKS", kind: MapType::XskMap, key: 4, value: 4, max: steer::QUEUES_MAX },
    MapSpec { name: "ST_STATS", kind: MapType::PerCpuArray, key: 4, value: size::<Counter>(), max: steer::stat::COUNT },
    MapSpec { name: "GW_STATS", kind: MapType::PerCpuArray, key: 4, value: size::<Counter>(), max: gw::stat::COUNT },
];

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// bpffs directory all interfaces pin under.
    pub pin_root: PathBuf,
    pub mode: XdpMode,
    /// Discard pins whose layout does not match instead of refusing.
    pub replace_pins: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { pin_root: PathBuf::from("/sys/fs/bpf/edgeplane"), mode: XdpMode::Driver, replace_pins: false }
    }
}

/// The loaded object. Pinned when attached to an interface, private when
/// used only for test_run (fixtures, benchmarks, lookups in tests).
pub struct Dataplane {
    pub(crate) ebpf: Ebpf,
    pub pin_dir: Option<PathBuf>,
    pub interface: Option<String>,
    /// True when this load found pins left by an earlier daemon.
    pub took_over: bool,
    links: Vec<FdLink>,
}

impl Dataplane {
    /// Load every program and fresh, unpinned maps. For test_run only.
    pub fn load_private() -> Result<Self> {
        let mut ebpf = EbpfLoader::new().load(OBJ)?;
        for name in ["lb", "floor", "gateway", "tx", "sink", "router", "sip_monitor", "steer"] {
            program_mut(&mut ebpf, name)?.load().map_err(|e| Error::Program(name.into(), e))?;
        }
        let mut dp = Self { ebpf, pin_dir: None, interface: None, took_over: false, links: Vec::new() };
        dp.write_meta()?;
        Ok(dp)
    }

    /// Load `program` for `interface` with its maps pinned, reusing valid
    /// pins, and attach it (or atomically replace the program behind an
    /// existing pinned link, which keeps forwarding uninterrupted).
    pub fn attach(program: &str, interface: &str, opts: &LoadOptions) -> Result<Self> {
        Self::attach_many(program, &[interface], opts)
    }

    /// Attach `program` to several interfaces sharing one map set, pinned
    /// under the first interface; each interface pins its own link.
    pub fn attach_many(program: &str, interfaces: &[&str], opts: &LoadOptions) -> Result<Self> {
        let interface = *interfaces.first().ok_or_else(|| Error::Other("no interface given".into()))?;
        for i in interfaces {
            crate::ifindex(i)?;
        }
        ensure_bpffs(&opts.pin_root)?;
        let dir = opts.pin_root.join(interface);
        make_private_dir(&opts.pin_root)?;
        make_private_dir(&dir)?;
        if opts.replace_pins {
            discard_pins(&dir)?;
        }
        let took_over = check_pins(&dir)?;

        let mut loader = EbpfLoader::new();
        let paths: Vec<(&'static str, PathBuf)> = MAPS.iter().map(|m| (m.name, dir.join(m.name))).collect();
        for (name, path) in &paths {
            loader.map_pin_path(*name, path.as_path());
        }
        let mut ebpf = loader.load(OBJ)?;
        let prog: &mut Xdp = program_mut(&mut ebpf, program)?;
        prog.load().map_err(|e| Error::Program(program.into(), e))?;

        let mut links = Vec::new();
        for (n, i) in interfaces.iter().enumerate() {
            let link_dir = if n == 0 { dir.clone() } else { opts.pin_root.join(i) };
            make_private_dir(&link_dir)?;
            links.push(attach_or_replace(prog, i, opts.mode, &link_dir.join("link"))?);
        }
        let mut dp = Self {
            ebpf,
            pin_dir: Some(dir),
            interface: Some(interface.into()),
            took_over,
            links,
        };
        if !took_over {
            dp.write_meta()?;
        }
        info!(interface, program, took_over, "xdp program attached");
        Ok(dp)
    }

    fn write_meta(&mut self) -> Result<()> {
        let mut meta: aya::maps::Array<_, LayoutMeta> = self.map_mut("META")?;
        meta.set(0, LayoutMeta { magic: LAYOUT_MAGIC, version: LAYOUT_VERSION }, 0)
            .map_err(|e| Error::Map("META", e))
    }

    pub(crate) fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map_mut(name).ok_or_else(|| Error::Other(format!("map {name} missing from object")))?;
        T::try_from(map).map_err(|e| Error::Map(name, e))
    }

    pub(crate) fn map<'a, T>(&'a self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map(name).ok_or_else(|| Error::Other(format!("map {name} missing from object")))?;
        T::try_from(map).map_err(|e| Error::Map(name, e))
    }

    pub(crate) fn program(&mut self, name: &str) -> Result<&mut Xdp> {
        program_mut(&mut self.ebpf, name)
    }

    /// Detach: remove the link pin (the program stops) and every map pin.
    pub fn detach_and_unpin(mut self) -> Result<()> {
        self.links.clear();
        if let Some(dir) = self.pin_dir.take() {
            discard_pins(&dir)?;
            let _ = fs::remove_dir(&dir);
        }
        Ok(())
    }
}

fn program_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .ok_or_else(|| Error::Other(format!("program {name} missing from object")))?
        .try_into()
        .map_err(|e| Error::Program(name.into(), e))
}

fn attach_or_replace(prog: &mut Xdp, interface: &str, mode: XdpMode, link_path: &Path) -> Result<FdLink> {
    if link_path.exists() {
        match PinnedLink::from_pin(link_path) {
            Ok(pinned) => {
                let fd: FdLink = pinned.into();
                let xdp_link = aya::programs::xdp::XdpLink::try_from(fd)
                    .map_err(|e| Error::Other(format!("{}: not an XDP link: {e}", link_path.display())))?;
                match prog.attach_to_link(xdp_link) {
                    Ok(id) => {
                        let link = prog.take_link(id).map_err(|e| Error::Program("attach".into(), e))?;
                        info!(interface, "replaced the program behind the pinned link");
                        return FdLink::try_from(link).map_err(|e| Error::Other(format!("link: {e}")));
                    }
                    Err(e) => {
                        // ENOLINK: the interface the link was made for is
                        // gone; the pin is stale.
                        warn!(interface, error = %e, "pinned link unusable; attaching anew");
                    }
                }
            }
            Err(e) => warn!(interface, error = %e, "pinned link unreadable; attaching anew"),
        }
        fs::remove_file(link_path).map_err(io_err(format!("removing {}", link_path.display())))?;
    }
    let id = prog
        .attach(interface, mode)
        .map_err(|source| Error::Attach { iface: interface.into(), source })?;
    let link = prog.take_link(id).map_err(|e| Error::Program("attach".into(), e))?;
    let fd = FdLink::try_from(link).map_err(|e| Error::Other(format!("link is not a bpf_link (kernel without XDP links?): {e}")))?;
    let pinned = fd.pin(link_path).map_err(|e| Error::Other(format!("pinning {}: {e}", link_path.display())))?;
    Ok(pinned.into())
}

fn ensure_bpffs(root: &Path) -> Result<()> {
    let mut probe = root.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            return Err(Error::NoBpffs(root.into()));
        }
    }
    let c = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes()).map_err(|_| Error::NoBpffs(root.into()))?;
    // SAFETY: statfs writes into the zeroed struct we pass.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 || st.f_type as i64 != BPF_FS_MAGIC {
        return Err(Error::NoBpffs(root.into()));
    }
    Ok(())
}

fn make_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir)
            .map_err(io_err(format!("creating {}", dir.display())))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(format!("chmod {}", dir.display())))
}

fn discard_pins(dir: &Path) -> Result<()> {
    for name in MAPS.iter().map(|m| m.name).chain(["link"]) {
        let p = dir.join(name);
        if p.exists() {
            fs::remove_file(&p).map_err(io_err(format!("removing {}", p.display())))?;
        }
    }
    Ok(())
}

/// Refuse pins that do not match this build. Returns whether any pins
/// were found (a takeover).
fn check_pins(dir: &Path) -> Result<bool> {
    let mut found = 0;
    for spec in MAPS {
        let path = dir.join(spec.name);
        if !path.exists() {
            continue;
        }
        found += 1;
        let info = MapInfo::from_pin(&path).map_err(|e| Error::LayoutMismatch { path: path.clone(), what: e.to_string() })?;
        let kind = info.map_type().ok();
        let ok = kind == Some(spec.kind)
            && info.key_size() == spec.key
            && info.value_size() == spec.value
            && info.max_entries() == spec.max;
        if !ok {
            return Err(Error::LayoutMismatch {
                path,
                what: format!(
                    "found {:?} key {} value {} entries {}, expected {:?} key {} value {} entries {}",
                    kind, info.key_size(), info.value_size(), info.max_entries(),
                    spec.kind, spec.key, spec.value, spec.max
                ),
            });
        }
    }
    if found == 0 {
        return Ok(false);
    }
    let meta_path = dir.join("META");
    let data = MapData::from_pin(&meta_path).map_err(|e| Error::LayoutMismatch { path: meta_path.clone(), what: e.to_string() })?;
    let map = aya::maps::Map::Array(data);
    let arr: aya::maps::Array<_, LayoutMeta> = aya::maps::Array::try_from(&map).map_err(|e| Error::Map("META", e))?;
    let meta = arr.get(&0, 0).map_err(|e| Error::Map("META", e))?;
    if meta.magic != LAYOUT_MAGIC || meta.version != LAYOUT_VERSION {
        return Err(Error::LayoutMismatch {
            path: meta_path,
            what: format!("layout version {} (magic {:#x}), this build uses {}", meta.version, meta.magic, LAYOUT_VERSION),
        });
    }
    if found != MAPS.len() {
        return Err(Error::LayoutMismatch {
            path: dir.into(),
            what: format!("only {found} of {} maps are pinned", MAPS.len()),
        });
    }
    Ok(true)
}
