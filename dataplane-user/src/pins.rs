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
use dataplane_common::{
    entry, gateway,
    maps::{self, MapDef, MapKind},
    LayoutMeta, LAYOUT_MAGIC, LAYOUT_VERSION,
};
use tracing::{info, warn};

use crate::{egress, io_err, Error, Result, OBJ};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The aya map type of a table entry's kind.
pub(crate) fn map_type(kind: MapKind) -> MapType {
    match kind {
        MapKind::Array => MapType::Array,
        MapKind::PerCpuArray => MapType::PerCpuArray,
        MapKind::Hash => MapType::Hash,
        MapKind::LpmTrie => MapType::LpmTrie,
        MapKind::Queue => MapType::Queue,
        MapKind::DevMapHash => MapType::DevMapHash,
        MapKind::RingBuf => MapType::RingBuf,
        MapKind::XskMap => MapType::XskMap,
        MapKind::ProgArray => MapType::ProgramArray,
    }
}

/// The maps pinned per interface, with the layout this build expects.
fn pinned_maps() -> impl Iterator<Item = &'static MapDef> {
    maps::ALL.iter().filter(|m| m.is_pinned())
}

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// bpffs directory all interfaces pin under.
    pub pin_root: PathBuf,
    pub mode: XdpMode,
    /// Discard pins whose layout does not match instead of refusing.
    pub replace_pins: bool,
    /// The order of the role stages on an interface (the role in each
    /// slot of its entry chain).
    pub stage_order: entry::Order,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            pin_root: PathBuf::from("/sys/fs/bpf/edgeplane"),
            mode: XdpMode::Driver,
            replace_pins: false,
            stage_order: entry::DEFAULT_ORDER,
        }
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
    /// Ring buffers mapped for reading (`ring`), by map name.
    pub(crate) rings: std::collections::HashMap<&'static str, aya::maps::RingBuf<MapData>>,
}

impl Dataplane {
    /// Load every program and fresh, unpinned maps. For test_run only.
    pub fn load_private() -> Result<Self> {
        let mut ebpf = EbpfLoader::new().load(OBJ)?;
        for name in [
            "entry",
            "lb",
            "floor",
            "gateway",
            gateway::PROG_V6_NAME,
            gateway::PROG_V6_GTPU_NAME,
            gateway::PROG_GTPU4_NAME,
            gateway::PROG_ENCAP6_NAME,
            "tx",
            "sink",
            "router",
            "sip_monitor",
            "steer",
        ] {
            program_mut(&mut ebpf, name)?
                .load()
                .map_err(|e| Error::Program(name.into(), e))?;
        }
        for name in ["sip_monitor_egress"] {
            egress::classifier_mut(&mut ebpf, name)?
                .load()
                .map_err(|e| Error::Program(name.into(), e))?;
        }
        let mut dp = Self {
            ebpf,
            pin_dir: None,
            interface: None,
            took_over: false,
            links: Vec::new(),
            rings: Default::default(),
        };
        dp.write_meta()?;
        link_helpers(&mut dp.ebpf, "gateway")?;
        // No stage follows any program run here until `add_stage`.
        let mut next: aya::maps::Array<_, u32> = dp.map_mut(&maps::ENTRY_NEXT)?;
        for (i, v) in entry::chain(&entry::DEFAULT_ORDER, &[false; entry::role::COUNT as usize])
            .iter()
            .chain(&entry::DEFAULT_ORDER)
            .enumerate()
        {
            next.set(i as u32, *v, 0)
                .map_err(map_err(&maps::ENTRY_NEXT))?;
        }
        Ok(dp)
    }

    /// Load `program` for `interface` with its maps pinned, reusing valid
    /// pins, and attach it (or atomically replace the program behind an
    /// existing pinned link, which keeps forwarding uninterrupted). A role
    /// program becomes a stage behind the interface's entry program, so
    /// roles can share an interface (`dataplane_common::entry`).
    pub fn attach(program: &str, interface: &str, opts: &LoadOptions) -> Result<Self> {
        Self::attach_many(program, &[interface], opts)
    }

    /// Attach `program` to several interfaces sharing one map set, pinned
    /// under the first interface; each interface pins its own link.
    pub fn attach_many(program: &str, interfaces: &[&str], opts: &LoadOptions) -> Result<Self> {
        let interface = *interfaces
            .first()
            .ok_or_else(|| Error::Other("no interface given".into()))?;
        for i in interfaces {
            crate::ifindex(i)?;
        }
        ensure_bpffs(&opts.pin_root)?;
        let stage = entry::role::of_program(program);
        if stage.is_some() {
            check_entry_dirs(&opts.pin_root, interfaces)?;
        }
        let dir = opts.pin_root.join(interface);
        make_private_dir(&opts.pin_root)?;
        make_private_dir(&dir)?;
        if opts.replace_pins {
            discard_pins(&dir)?;
        }
        let took_over = check_pins(&dir)?;

        let mut loader = EbpfLoader::new();
        for m in pinned_maps() {
            loader.map_pin_path(m.name, dir.join(m.name));
        }
        let mut ebpf = loader.load(OBJ)?;
        let prog: &mut Xdp = program_mut(&mut ebpf, program)?;
        prog.load().map_err(|e| Error::Program(program.into(), e))?;
        load_helpers(&mut ebpf, program)?;
        link_helpers(&mut ebpf, program)?;
        if let Some(role) = stage {
            // Slot first, then the entry: a packet sees either the old
            // chain or the new one, never a stage without its slot.
            register_stage(&mut ebpf, role, program, took_over, &opts.stage_order)
                .map_err(|e| Error::Other(format!("interface {interface}: {e}")))?;
        }
        // A role stage runs behind the interface's entry program; the
        // floor and the sink (benchmarks, veth peers) attach directly.
        let attached = if stage.is_some() { "entry" } else { program };
        let prog: &mut Xdp = program_mut(&mut ebpf, attached)?;
        if stage.is_some() {
            prog.load()
                .map_err(|e| Error::Program(attached.into(), e))?;
        }

        // The first interface's links pin beside the maps, the others'
        // in their own directories.
        let link_dir = |n: usize, i: &str| {
            if n == 0 {
                dir.clone()
            } else {
                opts.pin_root.join(i)
            }
        };
        let mut links = Vec::new();
        for (n, i) in interfaces.iter().enumerate() {
            let link_dir = link_dir(n, i);
            make_private_dir(&link_dir)?;
            links.push(attach_or_replace(
                prog,
                i,
                opts.mode,
                &link_dir.join("link"),
            )?);
        }
        if let Some(name) = egress::companion(program) {
            egress::classifier_mut(&mut ebpf, name)?
                .load()
                .map_err(|e| Error::Program(name.into(), e))?;
            for (n, i) in interfaces.iter().enumerate() {
                let pin = link_dir(n, i).join(egress::LINK_PIN);
                links.push(egress::attach(&mut ebpf, name, i, &pin)?);
            }
        }
        let mut dp = Self {
            ebpf,
            pin_dir: Some(dir),
            interface: Some(interface.into()),
            took_over,
            links,
            rings: Default::default(),
        };
        if !took_over {
            dp.write_meta()?;
        }
        info!(interface, program, took_over, "xdp program attached");
        Ok(dp)
    }

    /// Attach `program` of this load straight to `interface` (native
    /// XDP), for a test that delivers real frames to it; detached with
    /// this handle. Not for role daemons (`attach` makes a stage).
    pub fn attach_direct(&mut self, program: &str, interface: &str) -> Result<()> {
        let prog: &mut Xdp = program_mut(&mut self.ebpf, program)?;
        let id = prog
            .attach(interface, XdpMode::Driver)
            .map_err(|source| Error::Attach {
                iface: interface.into(),
                source,
            })?;
        let link = prog
            .take_link(id)
            .map_err(|e| Error::Program(program.into(), e))?;
        let fd = FdLink::try_from(link).map_err(|e| Error::Other(format!("link: {e}")))?;
        self.links.push(fd);
        Ok(())
    }

    /// Make `program` (a role program, loaded) a stage of this object's
    /// entry chain in a private load (in the default order): what `attach`
    /// does for an interface, for test_run of the `entry` program
    /// (benchmarks, fixtures).
    pub fn add_stage(&mut self, program: &str) -> Result<()> {
        let role = entry::role::of_program(program)
            .ok_or_else(|| Error::Other(format!("{program} is not a role stage")))?;
        // A private load starts with every role absent (`load_private`),
        // a pinned one with what `attach` linked.
        register_stage(&mut self.ebpf, role, program, true, &entry::DEFAULT_ORDER)
    }

    /// Fresh maps only: what a zeroed map would get wrong (a TEID prefix
    /// owned by gateway 0), then the layout version.
    fn write_meta(&mut self) -> Result<()> {
        {
            let mut owners: aya::maps::Array<_, u32> = self.map_mut(&maps::LB_TEID_OWNERS)?;
            for p in 0..dataplane_common::lb::TEID_OWNERS {
                owners
                    .set(p, dataplane_common::lb::NO_GATEWAY, 0)
                    .map_err(map_err(&maps::LB_TEID_OWNERS))?;
            }
        }
        let mut meta: aya::maps::Array<_, LayoutMeta> = self.map_mut(&maps::META)?;
        meta.set(
            0,
            LayoutMeta {
                magic: LAYOUT_MAGIC,
                version: LAYOUT_VERSION,
            },
            0,
        )
        .map_err(map_err(&maps::META))
    }

    pub(crate) fn map_mut<'a, T>(&'a mut self, def: &'static MapDef) -> Result<T>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map_mut(def.name).ok_or_else(|| missing(def))?;
        T::try_from(map).map_err(map_err(def))
    }

    pub(crate) fn map<'a, T>(&'a self, def: &'static MapDef) -> Result<T>
    where
        T: TryFrom<&'a aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map(def.name).ok_or_else(|| missing(def))?;
        T::try_from(map).map_err(map_err(def))
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

/// Programs a role program tail-calls (loaded and put in their slots
/// with it): (program, prog array, slot).
fn helpers(program: &str) -> &'static [(&'static str, &'static MapDef, u32)] {
    match program {
        "gateway" => &[
            (gateway::PROG_V6_NAME, &maps::GW_PROGS, gateway::PROG_V6),
            (
                gateway::PROG_V6_GTPU_NAME,
                &maps::GW_PROGS,
                gateway::PROG_V6_GTPU,
            ),
            (
                gateway::PROG_GTPU4_NAME,
                &maps::GW_PROGS,
                gateway::PROG_GTPU4,
            ),
            (
                gateway::PROG_ENCAP6_NAME,
                &maps::GW_PROGS,
                gateway::PROG_ENCAP6,
            ),
        ],
        _ => &[],
    }
}

fn load_helpers(ebpf: &mut Ebpf, program: &str) -> Result<()> {
    for (name, _, _) in helpers(program) {
        program_mut(ebpf, name)?
            .load()
            .map_err(|e| Error::Program((*name).into(), e))?;
    }
    Ok(())
}

/// Each helper into its slot (replacing a previous daemon's: the next
/// packet runs the new one).
fn link_helpers(ebpf: &mut Ebpf, program: &str) -> Result<()> {
    use aya::maps::ProgramArray;
    for (name, def, slot) in helpers(program) {
        let fd = program_mut(ebpf, name)?
            .fd()
            .map_err(|e| Error::Program((*name).into(), e))?
            .try_clone()
            .map_err(io_err("dup of a program fd"))?;
        let map = ebpf.map_mut(def.name).ok_or_else(|| missing(def))?;
        let mut slots: ProgramArray<_> = ProgramArray::try_from(map).map_err(map_err(def))?;
        slots.set(*slot, &fd, 0).map_err(map_err(def))?;
    }
    Ok(())
}

/// The error of an operation on `def`'s map.
pub(crate) fn map_err(def: &'static MapDef) -> impl Fn(aya::maps::MapError) -> Error {
    move |e| Error::Map(def.name, e)
}

fn missing(def: &MapDef) -> Error {
    Error::Other(format!("map {} missing from object", def.name))
}

/// The entry program's counters (`entry::stat`) on an interface whose
/// stages are pinned under `pin_root/interface`, read through the pin;
/// `None` when nothing is pinned there.
pub fn entry_stats(
    pin_root: &Path,
    interface: &str,
) -> Result<Option<Vec<dataplane_common::Counter>>> {
    use aya::maps::PerCpuArray;
    let path = pin_root.join(interface).join(maps::ENTRY_STATS.name);
    if !path.exists() {
        return Ok(None);
    }
    let data = MapData::from_pin(&path).map_err(map_err(&maps::ENTRY_STATS))?;
    let map = aya::maps::Map::PerCpuArray(data);
    let arr: PerCpuArray<_, dataplane_common::Counter> =
        PerCpuArray::try_from(&map).map_err(map_err(&maps::ENTRY_STATS))?;
    crate::lb::sum_per_cpu(&arr, &maps::ENTRY_STATS).map(Some)
}

/// Put `program` into the interface's `ENTRY_STAGES` in the slot of its
/// role in `order` and relink `ENTRY_NEXT` so the stages before it hand
/// packets to it. The stage is in its slot before anything links to it, so
/// a packet sees the old chain or the new one. Fresh pins start with every
/// role absent. Pins whose other stages were linked in another order are
/// refused: those stages sit in the old order's slots.
fn register_stage(
    ebpf: &mut Ebpf,
    role: u32,
    program: &str,
    took_over: bool,
    order: &entry::Order,
) -> Result<()> {
    use aya::maps::{Array, ProgramArray};
    let n = entry::role::COUNT as usize;
    let (mut present, mut linked) = ([false; entry::role::COUNT as usize], *order);
    {
        let map = ebpf
            .map(maps::ENTRY_NEXT.name)
            .ok_or_else(|| missing(&maps::ENTRY_NEXT))?;
        let next: Array<_, u32> = Array::try_from(map).map_err(map_err(&maps::ENTRY_NEXT))?;
        if took_over {
            for r in 0..n {
                present[r] = next
                    .get(&(r as u32), 0)
                    .map_err(map_err(&maps::ENTRY_NEXT))?
                    != entry::ABSENT;
                linked[r] = next
                    .get(&(entry::ORDER_AT + r as u32), 0)
                    .map_err(map_err(&maps::ENTRY_NEXT))?;
            }
        }
    }
    let others = (0..n).any(|r| present[r] && r as u32 != role);
    if entry::is_order(&linked) && linked != *order && others {
        let names = |o: &entry::Order| {
            o.iter()
                .map(|r| entry::role::PROGRAMS[*r as usize])
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::Other(format!(
            "its stages were linked in the order {} and node.stage_order now says {}; stop the daemon and start it with --replace-pins to relink them (forwarding stops until it does)",
            names(&linked),
            names(order)
        )));
    }
    let fd = program_mut(ebpf, program)?
        .fd()
        .map_err(|e| Error::Program(program.into(), e))?
        .try_clone()
        .map_err(io_err("dup of a program fd"))?;
    {
        let map = ebpf
            .map_mut(maps::ENTRY_STAGES.name)
            .ok_or_else(|| missing(&maps::ENTRY_STAGES))?;
        let mut stages: ProgramArray<_> =
            ProgramArray::try_from(map).map_err(map_err(&maps::ENTRY_STAGES))?;
        stages
            .set(entry::slot_of(order, role), &fd, 0)
            .map_err(map_err(&maps::ENTRY_STAGES))?;
        // Alone on the interface under an older order: its old slot goes.
        if entry::is_order(&linked) && entry::slot_of(&linked, role) != entry::slot_of(order, role)
        {
            let _ = stages.clear_index(&entry::slot_of(&linked, role));
        }
    }
    let map = ebpf
        .map_mut(maps::ENTRY_NEXT.name)
        .ok_or_else(|| missing(&maps::ENTRY_NEXT))?;
    let mut next: Array<_, u32> = Array::try_from(map).map_err(map_err(&maps::ENTRY_NEXT))?;
    present[role as usize] = true;
    let chain = entry::chain(order, &present);
    for (slot, r) in order.iter().enumerate() {
        next.set(entry::ORDER_AT + slot as u32, *r, 0)
            .map_err(map_err(&maps::ENTRY_NEXT))?;
    }
    // Its own hand-off first, then those leading to it, the entry's last.
    let writes = std::iter::once(role)
        .chain((0..entry::role::COUNT).filter(|r| *r != role))
        .chain([entry::FIRST]);
    for r in writes {
        next.set(r, chain[r as usize], 0)
            .map_err(map_err(&maps::ENTRY_NEXT))?;
    }
    Ok(())
}

/// Roles share an interface by sharing its pins: the stages of an
/// interface live under the directory of the first interface of the
/// roles on it. Refuse a layout where one interface would get two
/// entries (a multi-interface role's second interface that another
/// role pins under, or the reverse).
fn check_entry_dirs(root: &Path, interfaces: &[&str]) -> Result<()> {
    for (n, i) in interfaces.iter().enumerate() {
        let dir = root.join(i);
        let has_maps = dir.join(maps::META.name).exists();
        let has_link = dir.join("link").exists();
        if n == 0 && has_link && !has_maps {
            return Err(Error::Other(format!(
                "interface {i} runs the stages of a role whose first interface is another one (its link is pinned in {} without maps); give the roles that share {i} the same first interface",
                dir.display()
            )));
        }
        if n > 0 && has_maps {
            return Err(Error::Other(format!(
                "interface {i} has stages of its own pinned in {}; a role that also serves it must list it first",
                dir.display()
            )));
        }
    }
    Ok(())
}

fn program_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .ok_or_else(|| Error::Other(format!("program {name} missing from object")))?
        .try_into()
        .map_err(|e| Error::Program(name.into(), e))
}

fn attach_or_replace(
    prog: &mut Xdp,
    interface: &str,
    mode: XdpMode,
    link_path: &Path,
) -> Result<FdLink> {
    if link_path.exists() {
        match PinnedLink::from_pin(link_path) {
            Ok(pinned) => {
                let fd: FdLink = pinned.into();
                let xdp_link = aya::programs::xdp::XdpLink::try_from(fd).map_err(|e| {
                    Error::Other(format!("{}: not an XDP link: {e}", link_path.display()))
                })?;
                match prog.attach_to_link(xdp_link) {
                    Ok(id) => {
                        let link = prog
                            .take_link(id)
                            .map_err(|e| Error::Program("attach".into(), e))?;
                        info!(interface, "replaced the program behind the pinned link");
                        return FdLink::try_from(link)
                            .map_err(|e| Error::Other(format!("link: {e}")));
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
        .map_err(|source| Error::Attach {
            iface: interface.into(),
            source,
        })?;
    let link = prog
        .take_link(id)
        .map_err(|e| Error::Program("attach".into(), e))?;
    let fd = FdLink::try_from(link).map_err(|e| {
        Error::Other(format!(
            "link is not a bpf_link (kernel without XDP links?): {e}"
        ))
    })?;
    let pinned = fd
        .pin(link_path)
        .map_err(|e| Error::Other(format!("pinning {}: {e}", link_path.display())))?;
    Ok(pinned.into())
}

fn ensure_bpffs(root: &Path) -> Result<()> {
    let mut probe = root.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            return Err(Error::NoBpffs(root.into()));
        }
    }
    let c = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::NoBpffs(root.into()))?;
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
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod {}", dir.display())))
}

fn discard_pins(dir: &Path) -> Result<()> {
    for name in pinned_maps()
        .map(|m| m.name)
        .chain(["link", egress::LINK_PIN])
    {
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
    for spec in pinned_maps() {
        let path = dir.join(spec.name);
        if !path.exists() {
            continue;
        }
        found += 1;
        let info = MapInfo::from_pin(&path).map_err(|e| Error::LayoutMismatch {
            path: path.clone(),
            what: e.to_string(),
        })?;
        let kind = info.map_type().ok();
        let ok = kind == Some(map_type(spec.kind))
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
    let meta_path = dir.join(maps::META.name);
    let data = MapData::from_pin(&meta_path).map_err(|e| Error::LayoutMismatch {
        path: meta_path.clone(),
        what: e.to_string(),
    })?;
    let map = aya::maps::Map::Array(data);
    let arr: aya::maps::Array<_, LayoutMeta> =
        aya::maps::Array::try_from(&map).map_err(map_err(&maps::META))?;
    let meta = arr.get(&0, 0).map_err(map_err(&maps::META))?;
    if meta.magic != LAYOUT_MAGIC || meta.version != LAYOUT_VERSION {
        return Err(Error::LayoutMismatch {
            path: meta_path,
            what: format!(
                "layout version {} (magic {:#x}), this build uses {}",
                meta.version, meta.magic, LAYOUT_VERSION
            ),
        });
    }
    let expected = pinned_maps().count();
    if found != expected {
        return Err(Error::LayoutMismatch {
            path: dir.into(),
            what: format!("only {found} of {expected} maps are pinned"),
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use aya::maps::Map;

    use super::*;

    /// The kernel's view of a map of one of the kinds the table knows.
    fn info(map: &Map) -> Option<MapInfo> {
        match map {
            Map::Array(d)
            | Map::PerCpuArray(d)
            | Map::HashMap(d)
            | Map::LpmTrie(d)
            | Map::Queue(d)
            | Map::DevMapHash(d)
            | Map::RingBuf(d)
            | Map::XskMap(d)
            | Map::ProgramArray(d) => d.info().ok(),
            _ => None,
        }
    }

    /// The compiled object and `dataplane_common::maps` describe the same
    /// maps: every map the kernel created for the object is in the table
    /// with the same kind, key, value and size, and every table entry is in
    /// the object.
    #[test]
    fn object_maps_match_the_table() {
        let ebpf = EbpfLoader::new()
            .load(OBJ)
            .expect("loading the object creates its maps: needs root");
        let mut in_object = Vec::new();
        for (name, map) in ebpf.maps() {
            let def = maps::ALL
                .iter()
                .find(|d| d.name == name)
                .unwrap_or_else(|| {
                    panic!("map {name} is in the object but not in dataplane_common::maps::ALL")
                });
            let info = info(map).unwrap_or_else(|| {
                panic!("map {name}: a kind dataplane_common::maps::MapKind lacks")
            });
            let got = (
                info.map_type().ok(),
                info.key_size(),
                info.value_size(),
                info.max_entries(),
            );
            let want = (Some(map_type(def.kind)), def.key, def.value, def.max);
            assert_eq!(
                got, want,
                "map {name}: (kind, key, value, max) in the object vs the table"
            );
            in_object.push(name.to_owned());
        }
        for def in maps::ALL {
            assert!(
                in_object.iter().any(|n| n == def.name),
                "map {} is in the table but not in the object",
                def.name
            );
        }
    }
}
