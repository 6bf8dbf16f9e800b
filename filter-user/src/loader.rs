//! Loading the XDP program, writing policy generations into its maps, attaching, pinning, and
//! adopting what an earlier controller pinned.

use std::{
    fmt,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, LpmTrie, MapData, PerCpuArray, PerCpuValues, lpm_trie::Key},
    programs::{
        Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use filter_common::{
    Active, GlobalPolicy, MAP_LAYOUT_VERSION, MAX_PEERS, Meta, PORT_DIAMETER, PORT_GTPC, PORT_GTPU, PORT_SIGTRAN,
    PORT_SLOTS, PeerCounter, PeerName, PeerPolicy, PortClass,
};

use crate::{
    errors::OperatorError,
    policy::{
        Policy,
        compile::{self, Compiled, PeerIds},
    },
};

/// The compiled XDP object, built by build.rs from filter-ebpf.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sigwall"));

pub const PROGRAM: &str = "sigwall";
pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// The maps pinned for an interface, by name: everything the program reads or counts into, so
/// the pins alone describe the running filter (`sigwall stats` reads them without the daemon)
/// and a restarted controller adopts them.
pub const PINNED_MAPS: [&str; 18] = [
    "META",
    "ACTIVE",
    "GLOBAL",
    "PORT_CLASS",
    "PEERS_V4_0",
    "PEERS_V4_1",
    "PEERS_V6_0",
    "PEERS_V6_1",
    "PEER_POLICY",
    "PEER_INFO",
    "RATE_STATE",
    "STATS",
    "PEER_STATS",
    "FLOW_VERDICTS",
    "PEER_BLOCKS",
    "INSPECT_CFG",
    "INSPECT_RING",
    "INSPECT_STATS",
];

/// `/sys/fs/bpf/sigwall/<iface>`
pub fn pin_dir(iface: &str) -> PathBuf {
    Path::new(BPFFS).join("sigwall").join(iface)
}

fn link_pin(iface: &str) -> PathBuf {
    pin_dir(iface).join("link")
}

/// XDP attach mode as the operator names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Native (driver) mode: the fast path, what production links should use.
    Native,
    /// Generic mode in the kernel stack: works everywhere, slower.
    Skb,
    /// Native if the driver supports it, else generic.
    Auto,
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachMode::Native => "native",
            AttachMode::Skb => "skb",
            AttachMode::Auto => "auto",
        })
    }
}

/// A loaded sigwall program and its maps, pinned or not.
pub struct Filter {
    pub ebpf: Ebpf,
    ids: PeerIds,
}

/// A filter attached to an interface, its link pinned.
pub struct Attached {
    pub filter: Filter,
    pub link: PinnedLink,
    pub iface: String,
    pub mode: AttachMode,
    /// True when an earlier controller's pins were adopted (no gap in filtering).
    pub adopted: bool,
}

impl Filter {
    /// Load the embedded object with private (unpinned) maps: for tests and benchmarks.
    /// `log_level` 0 keeps aya-log silent in the program (a disabled record costs one byte
    /// compare); 1..=5 is error..trace.
    pub fn load(log_level: u8) -> Result<Self, OperatorError> {
        Self::load_with(log_level, None)
    }

    fn load_with(log_level: u8, pins: Option<&Path>) -> Result<Self, OperatorError> {
        let mut loader = EbpfLoader::new();
        loader.override_global(aya_log::LEVEL, &log_level, false);
        let paths: Vec<(&str, PathBuf)> = match pins {
            Some(dir) => PINNED_MAPS.iter().map(|n| (*n, dir.join(n))).collect(),
            None => Vec::new(),
        };
        for (name, path) in &paths {
            // Opens the pinned map if it exists (adoption), else creates and pins it.
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT).map_err(OperatorError::from_load)?;
        let prog: &mut Xdp = program(&mut ebpf)?;
        prog.load().map_err(OperatorError::from_program_load)?;
        let mut f = Filter { ebpf, ids: PeerIds::default() };
        f.ids = PeerIds::from_pairs(f.active_peer_names()?);
        Ok(f)
    }

    pub fn program(&mut self) -> Result<&mut Xdp, OperatorError> {
        program(&mut self.ebpf)
    }

    /// The id of a peer in the active generation.
    pub fn peer_id(&self, name: &str) -> Option<u32> {
        self.ids.get(name)
    }

    pub fn program_id(&mut self) -> Option<u32> {
        self.program().ok()?.info().ok().map(|i| i.id())
    }

    fn active_slot(&self) -> Result<u32, OperatorError> {
        let active: Array<&MapData, Active> = Array::try_from(map(&self.ebpf, "ACTIVE")?)?;
        Ok(active.get(&0, 0)?.index & 1)
    }

    /// Settings of the active generation (generation 0, all zero, before any policy).
    pub fn active_global(&self) -> Result<GlobalPolicy, OperatorError> {
        let slot = self.active_slot()?;
        let global: Array<&MapData, GlobalPolicy> = Array::try_from(map(&self.ebpf, "GLOBAL")?)?;
        Ok(global.get(&slot, 0)?)
    }

    pub fn generation(&self) -> Result<u64, OperatorError> {
        Ok(self.active_global()?.generation)
    }

    /// (id, name) of every peer in the active generation.
    pub fn active_peer_names(&self) -> Result<Vec<(u32, String)>, OperatorError> {
        let slot = self.active_slot()?;
        let slots = self.active_global()?.peer_slots.min(MAX_PEERS);
        let names: Array<&MapData, PeerName> = Array::try_from(map(&self.ebpf, "PEER_INFO")?)?;
        let mut out = Vec::new();
        for id in 1..slots {
            let n = names.get(&(slot * MAX_PEERS + id), 0)?;
            let len = n.bytes.iter().position(|b| *b == 0).unwrap_or(n.bytes.len());
            if len > 0 {
                out.push((id, String::from_utf8_lossy(&n.bytes[..len]).into_owned()));
            }
        }
        Ok(out)
    }

    pub fn meta(&self) -> Result<Meta, OperatorError> {
        let meta: Array<&MapData, Meta> = Array::try_from(map(&self.ebpf, "META")?)?;
        Ok(meta.get(&0, 0)?)
    }

    fn set_meta(&mut self, f: impl FnOnce(&mut Meta)) -> Result<(), OperatorError> {
        let mut meta: Array<&mut MapData, Meta> = Array::try_from(map_mut(&mut self.ebpf, "META")?)?;
        let mut m = meta.get(&0, 0)?;
        f(&mut m);
        meta.set(0, m, 0)?;
        Ok(())
    }

    /// Compile `p` as the next generation, with this filter's stable peer ids.
    pub fn compile(&mut self, p: &Policy) -> Result<Compiled, OperatorError> {
        let next = self.generation()? + 1;
        let mut ids = self.ids.clone();
        Ok(compile::compile(p, next, &mut ids))
    }

    /// Write `c` into the inactive generation's maps, then make it active with one store.
    /// Until that store, every packet is judged by the previous generation, whole. `sha256` is
    /// the hash of the policy text `c` came from, recorded for restarts.
    pub fn apply(&mut self, c: &Compiled, sha256: [u8; 32]) -> Result<(), OperatorError> {
        let next = self.active_slot()? ^ 1;
        self.write_generation(next, c)?;
        let mut active: Array<&mut MapData, Active> = Array::try_from(map_mut(&mut self.ebpf, "ACTIVE")?)?;
        active.set(0, Active { index: next, _pad: 0 }, 0)?;
        self.ids = PeerIds::from_pairs(c.peers.iter().map(|p| (p.id, p.name.clone())));
        self.set_meta(|m| m.policy_sha256 = sha256)?;
        Ok(())
    }

    /// Stop judging by the last applied generation and go back to the one before (whose maps
    /// are intact until the next apply). Used when a change cannot be made durable.
    pub fn revert(&mut self) -> Result<(), OperatorError> {
        let prev = self.active_slot()? ^ 1;
        let mut active: Array<&mut MapData, Active> = Array::try_from(map_mut(&mut self.ebpf, "ACTIVE")?)?;
        active.set(0, Active { index: prev, _pad: 0 }, 0)?;
        self.ids = PeerIds::from_pairs(self.active_peer_names()?);
        Ok(())
    }

    fn write_generation(&mut self, slot: u32, c: &Compiled) -> Result<(), OperatorError> {
        let ebpf = &mut self.ebpf;
        let (v4, v6) = if slot == 0 { ("PEERS_V4_0", "PEERS_V6_0") } else { ("PEERS_V4_1", "PEERS_V6_1") };
        replace_trie(map_mut(ebpf, v4)?, &c.v4)?;
        replace_trie(map_mut(ebpf, v6)?, &c.v6)?;

        let old_slots = {
            let global: Array<&MapData, GlobalPolicy> = Array::try_from(map(ebpf, "GLOBAL")?)?;
            global.get(&slot, 0)?.peer_slots.min(MAX_PEERS)
        };
        let slots = c.global.peer_slots.max(old_slots).min(MAX_PEERS);
        let base = slot * MAX_PEERS;
        let mut policies = vec![PeerPolicy::default(); slots as usize];
        let mut names = vec![PeerName::default(); slots as usize];
        names[0] = name_of("(unknown)");
        for p in &c.peers {
            policies[p.id as usize] = p.policy;
            names[p.id as usize] = name_of(&p.name);
        }
        {
            let mut pol: Array<&mut MapData, PeerPolicy> = Array::try_from(map_mut(ebpf, "PEER_POLICY")?)?;
            for (id, v) in policies.iter().enumerate() {
                pol.set(base + id as u32, *v, 0)?;
            }
        }
        {
            let mut info: Array<&mut MapData, PeerName> = Array::try_from(map_mut(ebpf, "PEER_INFO")?)?;
            for (id, v) in names.iter().enumerate() {
                info.set(base + id as u32, *v, 0)?;
            }
        }
        // A name seen for the first time starts with clean counters and a full bucket, even if
        // its id belonged to a peer removed earlier.
        if !c.fresh_ids.is_empty() {
            let ncpu = aya::util::nr_cpus().map_err(|(_, e)| OperatorError::Other(format!("counting CPUs: {e}")))?;
            let mut stats: PerCpuArray<&mut MapData, PeerCounter> =
                PerCpuArray::try_from(map_mut(ebpf, "PEER_STATS")?)?;
            for id in &c.fresh_ids {
                let zero = PerCpuValues::try_from(vec![PeerCounter::default(); ncpu])
                    .map_err(|e| OperatorError::Other(format!("per-CPU values: {e}")))?;
                stats.set(*id, zero, 0)?;
            }
            let mut rate: Array<&mut MapData, u64> = Array::try_from(map_mut(ebpf, "RATE_STATE")?)?;
            for id in &c.fresh_ids {
                rate.set(*id, 0, 0)?;
            }
        }
        // Ports: clear what the slot's previous settings marked, then mark the new lists.
        let old_global = {
            let global: Array<&MapData, GlobalPolicy> = Array::try_from(map(ebpf, "GLOBAL")?)?;
            global.get(&slot, 0)?
        };
        {
            let mut ports: Array<&mut MapData, u8> = Array::try_from(map_mut(ebpf, "PORT_CLASS")?)?;
            let base = slot * PORT_SLOTS;
            for (port, _) in port_bits(&old_global) {
                ports.set(base + port as u32, 0, 0)?;
            }
            for (port, bits) in port_bits(&c.global) {
                ports.set(base + port as u32, bits, 0)?;
            }
        }
        let mut global: Array<&mut MapData, GlobalPolicy> = Array::try_from(map_mut(ebpf, "GLOBAL")?)?;
        global.set(slot, c.global, 0)?;
        Ok(())
    }

    fn attach_new(&mut self, iface: &str, mode: AttachMode) -> Result<(AttachMode, FdLink), OperatorError> {
        let prog = self.program()?;
        let try_mode = |prog: &mut Xdp, m: XdpMode| prog.attach(iface, m);
        let (used, id) = match mode {
            AttachMode::Native => (AttachMode::Native, try_mode(prog, XdpMode::Driver)),
            AttachMode::Skb => (AttachMode::Skb, try_mode(prog, XdpMode::Skb)),
            AttachMode::Auto => match try_mode(prog, XdpMode::Driver) {
                Ok(id) => (AttachMode::Native, Ok(id)),
                Err(e) if OperatorError::is_mode_unsupported(&e) => {
                    log::warn!("{iface}: native XDP not supported by the driver, using skb (generic) mode");
                    (AttachMode::Skb, try_mode(prog, XdpMode::Skb))
                }
                Err(e) => (AttachMode::Native, Err(e)),
            },
        };
        let id = id.map_err(|e| OperatorError::from_attach(e, iface, used))?;
        let link = prog.take_link(id).map_err(|e| OperatorError::from_attach(e, iface, used))?;
        let link = FdLink::try_from(link).map_err(|e| {
            OperatorError::Other(format!(
                "{iface}: the kernel attached XDP through netlink, not a BPF link ({e}); sigwall needs XDP links (kernel 5.9 or newer)"
            ))
        })?;
        Ok((used, link))
    }
}

/// (port, PORT_* bits) for every configured port of a generation's settings.
fn port_bits(g: &GlobalPolicy) -> Vec<(u16, u8)> {
    let mut out: Vec<(u16, u8)> = Vec::new();
    for (pc, bit) in [
        (PortClass::GtpC, PORT_GTPC),
        (PortClass::GtpU, PORT_GTPU),
        (PortClass::Diameter, PORT_DIAMETER),
        (PortClass::Sigtran, PORT_SIGTRAN),
    ] {
        let n = (g.port_counts[pc as usize] as usize).min(filter_common::MAX_PORTS_PER_CLASS);
        for p in &g.ports[pc as usize][..n] {
            let port = u16::from_be(*p);
            match out.iter_mut().find(|(q, _)| *q == port) {
                Some(e) => e.1 |= bit,
                None => out.push((port, bit)),
            }
        }
    }
    out
}

fn name_of(s: &str) -> PeerName {
    let mut n = PeerName::default();
    let b = s.as_bytes();
    let len = b.len().min(63);
    n.bytes[..len].copy_from_slice(&b[..len]);
    n
}

fn replace_trie<const N: usize>(m: &mut aya::maps::Map, entries: &[(u32, [u8; N], u32)]) -> Result<(), OperatorError>
where
    [u8; N]: aya::Pod,
{
    let mut trie: LpmTrie<&mut MapData, [u8; N], u32> = LpmTrie::try_from(m)?;
    let old: Vec<Key<[u8; N]>> = trie.keys().collect::<Result<_, _>>()?;
    for k in old {
        trie.remove(&k)?;
    }
    for (len, addr, id) in entries {
        trie.insert(&Key::new(*len, *addr), id, 0).map_err(|e| {
            OperatorError::Other(format!("writing a prefix failed ({e}); the policy exceeds the map capacity"))
        })?;
    }
    Ok(())
}

/// Whether an earlier controller left a pinned, attached filter on `iface`.
pub fn pins_present(iface: &str) -> bool {
    link_pin(iface).exists()
}

/// Load, pin, apply `c`, and attach to `iface`. Nothing is left behind on failure.
pub fn attach_fresh(
    iface: &str,
    mode: AttachMode,
    log_level: u8,
    policy: &Policy,
    sha256: [u8; 32],
) -> Result<Attached, OperatorError> {
    let dir = pin_dir(iface);
    std::fs::create_dir_all(&dir).map_err(|e| OperatorError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let result = (|| {
        let mut filter = Filter::load_with(log_level, Some(&dir))?;
        let c = filter.compile(policy)?;
        filter.apply(&c, sha256)?;
        let (used, link) = filter.attach_new(iface, mode)?;
        let mode_byte = if used == AttachMode::Skb { 2 } else { 1 };
        filter.set_meta(|m| {
            m.layout_version = MAP_LAYOUT_VERSION;
            m.attach_mode = mode_byte;
        })?;
        let link = link
            .pin(link_pin(iface))
            .map_err(|e| OperatorError::Other(format!("cannot pin the XDP link in {}: {e}", dir.display())))?;
        Ok(Attached { filter, link, iface: iface.to_string(), mode: used, adopted: false })
    })();
    if result.is_err() {
        let _ = clear_pins(iface);
    }
    result
}

/// Take over the filter an earlier controller pinned on `iface`: reuse its maps (counters,
/// generation and rate state continue) and replace its program with this binary's through the
/// pinned link, atomically. There is no moment without a program on the interface.
pub fn adopt(iface: &str, log_level: u8) -> Result<Attached, OperatorError> {
    let dir = pin_dir(iface);
    let meta_pin = dir.join("META");
    let old = MapData::from_pin(&meta_pin).map_err(|e| {
        OperatorError::Other(format!(
            "{} has a pinned link but no readable META map ({e}): not a sigwall pin set this version understands; run `sigwall detach --iface {iface}` first",
            dir.display()
        ))
    })?;
    let meta: Meta = {
        let m = aya::maps::Map::from_map_data(old)?;
        let a: Array<MapData, Meta> = Array::try_from(m)?;
        a.get(&0, 0)?
    };
    if meta.layout_version != MAP_LAYOUT_VERSION {
        return Err(OperatorError::Other(format!(
            "the filter pinned on {iface} uses map layout {} but this sigwall uses layout {MAP_LAYOUT_VERSION}: it cannot be adopted without a gap; run `sigwall detach --iface {iface}` and start again",
            meta.layout_version
        )));
    }
    let mut filter = Filter::load_with(log_level, Some(&dir))?;
    let pinned = PinnedLink::from_pin(link_pin(iface))
        .map_err(|e| OperatorError::Other(format!("cannot open the pinned XDP link of {iface}: {e}")))?;
    let fd_link: FdLink = pinned.into();
    let xdp_link = XdpLink::try_from(fd_link)
        .map_err(|e| OperatorError::Other(format!("the pinned link of {iface} is not an XDP link: {e}")))?;
    let prog = filter.program()?;
    let id = prog
        .attach_to_link(xdp_link)
        .map_err(|e| OperatorError::Other(format!("replacing the program on {iface}: {e}")))?;
    let link = prog.take_link(id).map_err(|e| OperatorError::Other(format!("taking the XDP link of {iface}: {e}")))?;
    let link = FdLink::try_from(link).map_err(|e| OperatorError::Other(format!("XDP link of {iface}: {e}")))?;
    // Re-pin: the old pin is the same link, but the PinnedLink we hold must own a pin path.
    let _ = std::fs::remove_file(link_pin(iface));
    let link = link
        .pin(link_pin(iface))
        .map_err(|e| OperatorError::Other(format!("cannot re-pin the XDP link of {iface}: {e}")))?;
    let mode = if meta.attach_mode == 2 { AttachMode::Skb } else { AttachMode::Native };
    Ok(Attached { filter, link, iface: iface.to_string(), mode, adopted: true })
}

/// Detach whatever sigwall program is pinned on `iface`, even if a controller still holds the
/// link open (BPF_LINK_DETACH, kernel 5.9), then remove the pins.
pub fn force_detach(iface: &str) -> Result<bool, OperatorError> {
    let path = link_pin(iface);
    let mut detached = false;
    if path.exists() {
        let fd = bpf_obj_get(&path)
            .map_err(|e| OperatorError::Other(format!("cannot open the pinned XDP link {}: {e}", path.display())))?;
        #[repr(C)]
        struct LinkDetachAttr {
            link_fd: u32,
            _pad: [u32; 15],
        }
        let attr = LinkDetachAttr { link_fd: fd.as_raw_fd() as u32, _pad: [0; 15] };
        const BPF_LINK_DETACH: libc::c_long = 34;
        // SAFETY: bpf(BPF_LINK_DETACH) reads `link_fd` from a zero-padded attr of the size given.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_LINK_DETACH,
                &attr as *const LinkDetachAttr,
                std::mem::size_of::<LinkDetachAttr>(),
            )
        };
        if rc != 0 {
            return Err(OperatorError::Other(format!(
                "detaching the XDP link of {iface}: {}",
                std::io::Error::last_os_error()
            )));
        }
        detached = true;
    }
    remove_pins(iface).map_err(|e| OperatorError::Other(format!("removing {}: {e}", pin_dir(iface).display())))?;
    Ok(detached)
}

/// BPF_OBJ_GET: a descriptor for a pinned object (aya keeps its link descriptors private).
fn bpf_obj_get(path: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::{fd::FromRawFd as _, unix::ffi::OsStrExt as _};
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    #[repr(C)]
    struct ObjGetAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        _pad: [u32; 11],
    }
    let attr = ObjGetAttr { pathname: c.as_ptr() as u64, bpf_fd: 0, file_flags: 0, path_fd: 0, _pad: [0; 11] };
    const BPF_OBJ_GET: libc::c_long = 7;
    // SAFETY: bpf(BPF_OBJ_GET) reads a NUL-terminated path through `pathname`, valid for the call.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, &attr as *const ObjGetAttr, std::mem::size_of::<ObjGetAttr>())
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Remove the pins of `iface` (maps and link directory entries; the link itself is detached by
/// whoever drops its last reference).
pub fn remove_pins(iface: &str) -> std::io::Result<()> {
    clear_pins(iface)?;
    // An unprivileged daemon may own its pin directory but not /sys/fs/bpf/sigwall: an empty
    // directory left behind is harmless (the next start reuses it).
    match std::fs::remove_dir(pin_dir(iface)) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound) => Ok(()),
        r => r,
    }
}

/// Remove the pins of `iface` but keep the directory (a starting daemon holds its lock on it).
pub fn clear_pins(iface: &str) -> std::io::Result<()> {
    let dir = pin_dir(iface);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries {
        std::fs::remove_file(e?.path())?;
    }
    Ok(())
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, OperatorError> {
    ebpf.program_mut(PROGRAM)
        .ok_or_else(|| OperatorError::Other(format!("program {PROGRAM} missing from the object")))?
        .try_into()
        .map_err(|e| OperatorError::Other(format!("program {PROGRAM} is not XDP: {e}")))
}

pub(crate) fn map<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a aya::maps::Map, OperatorError> {
    ebpf.map(name).ok_or_else(|| OperatorError::Other(format!("map {name} missing from the object")))
}

pub(crate) fn map_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::maps::Map, OperatorError> {
    ebpf.map_mut(name).ok_or_else(|| OperatorError::Other(format!("map {name} missing from the object")))
}

/// Whether bpffs is mounted at /sys/fs/bpf.
pub fn bpffs_mounted() -> bool {
    let path = std::ffi::CString::new(BPFFS).expect("static path");
    // SAFETY: statfs writes into the zeroed struct we pass; path is a valid C string.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut s) == 0 && s.f_type as i64 == BPF_FS_MAGIC
    }
}
