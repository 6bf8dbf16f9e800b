//! Loading the XDP program, writing policy generations into its maps, attaching and pinning.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, LpmTrie, MapData, lpm_trie::Key},
    programs::{
        Xdp, XdpMode,
        links::{FdLink, PinnedLink},
    },
};
use filter_common::{Active, GlobalPolicy, MAX_PEERS, PeerName, PeerPolicy};

use crate::{errors::OperatorError, policy::compile::Compiled};

/// The compiled XDP object, built by build.rs from filter-ebpf.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sigwall"));

/// Reference programs for benchmarks (`trivial_pass`, `floor`); never attached by the product.
pub static BASELINES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baselines"));

pub const PROGRAM: &str = "sigwall";
pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// The maps pinned for an interface, by name: everything the program reads or counts into, so
/// the pins alone describe the running filter (`sigwall stats` reads them without the daemon).
pub const PINNED_MAPS: [&str; 11] = [
    "ACTIVE",
    "GLOBAL",
    "PEERS_V4_0",
    "PEERS_V4_1",
    "PEERS_V6_0",
    "PEERS_V6_1",
    "PEER_POLICY",
    "PEER_INFO",
    "RATE_STATE",
    "STATS",
    "PEER_STATS",
];

/// `/sys/fs/bpf/sigwall/<iface>`
pub fn pin_dir(iface: &str) -> PathBuf {
    Path::new(BPFFS).join("sigwall").join(iface)
}

/// XDP attach mode as the operator names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

/// A loaded (not necessarily attached) sigwall program and its maps.
pub struct Filter {
    pub ebpf: Ebpf,
    generation: Option<u64>,
}

impl Filter {
    /// Load the embedded object into the kernel. `log_level` 0 keeps aya-log silent in the
    /// program (its records then cost one byte compare each); 1..=5 is error..trace.
    pub fn load(log_level: u8) -> Result<Self, OperatorError> {
        let mut ebpf = EbpfLoader::new()
            .override_global(aya_log::LEVEL, &log_level, false)
            .load(OBJECT)
            .map_err(OperatorError::from_load)?;
        let prog: &mut Xdp = program(&mut ebpf)?;
        prog.load().map_err(OperatorError::from_program_load)?;
        Ok(Filter {
            ebpf,
            generation: None,
        })
    }

    pub fn program(&mut self) -> Result<&mut Xdp, OperatorError> {
        program(&mut self.ebpf)
    }

    /// The generation currently active, if a policy has been applied.
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// Write `c` into the inactive generation's maps, then make it active with one store.
    /// Until that store, every packet is judged by the previous generation, whole.
    pub fn apply(&mut self, c: &Compiled) -> Result<(), OperatorError> {
        let active: Array<&MapData, Active> = Array::try_from(map(&self.ebpf, "ACTIVE")?)?;
        let current = active.get(&0, 0)?.index & 1;
        let next = current ^ 1;
        drop(active);
        write_generation(&mut self.ebpf, next, c)?;
        let mut active: Array<&mut MapData, Active> =
            Array::try_from(map_mut(&mut self.ebpf, "ACTIVE")?)?;
        active.set(
            0,
            Active {
                index: next,
                _pad: 0,
            },
            0,
        )?;
        self.generation = Some(c.global.generation);
        Ok(())
    }

    /// Attach to `iface`. `Auto` tries native first.
    pub fn attach(
        &mut self,
        iface: &str,
        mode: AttachMode,
    ) -> Result<(AttachMode, FdLink), OperatorError> {
        let prog = self.program()?;
        let try_mode = |prog: &mut Xdp, m: XdpMode| prog.attach(iface, m);
        let (used, id) = match mode {
            AttachMode::Native => (AttachMode::Native, try_mode(prog, XdpMode::Driver)),
            AttachMode::Skb => (AttachMode::Skb, try_mode(prog, XdpMode::Skb)),
            AttachMode::Auto => match try_mode(prog, XdpMode::Driver) {
                Ok(id) => (AttachMode::Native, Ok(id)),
                Err(e) if OperatorError::is_mode_unsupported(&e) => {
                    log::warn!(
                        "{iface}: native XDP not supported by the driver, using skb (generic) mode"
                    );
                    (AttachMode::Skb, try_mode(prog, XdpMode::Skb))
                }
                Err(e) => (AttachMode::Native, Err(e)),
            },
        };
        let id = id.map_err(|e| OperatorError::from_attach(e, iface, used))?;
        let link = prog
            .take_link(id)
            .map_err(|e| OperatorError::from_attach(e, iface, used))?;
        let link = FdLink::try_from(link).map_err(|e| OperatorError::Other(format!(
            "{iface}: the kernel attached XDP through netlink, not a BPF link ({e}); sigwall needs a kernel with XDP links (5.9 or newer)"
        )))?;
        Ok((used, link))
    }

    /// Pin every map and the link under [`pin_dir`].
    pub fn pin(&mut self, iface: &str, link: FdLink) -> Result<PinnedLink, OperatorError> {
        let dir = pin_dir(iface);
        std::fs::create_dir_all(&dir)
            .map_err(|e| OperatorError::Other(format!("cannot create {}: {e}", dir.display())))?;
        for name in PINNED_MAPS {
            let m = map(&self.ebpf, name)?;
            m.pin(dir.join(name)).map_err(|e| {
                OperatorError::Other(format!("cannot pin map {name} in {}: {e}", dir.display()))
            })?;
        }
        link.pin(dir.join("link")).map_err(|e| {
            OperatorError::Other(format!("cannot pin the XDP link in {}: {e}", dir.display()))
        })
    }
}

/// Remove the pins of `iface` (maps and link directory entries; the link itself is detached by
/// whoever drops its last reference).
pub fn remove_pins(iface: &str) -> std::io::Result<()> {
    let dir = pin_dir(iface);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
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
    ebpf.map(name)
        .ok_or_else(|| OperatorError::Other(format!("map {name} missing from the object")))
}

pub(crate) fn map_mut<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> Result<&'a mut aya::maps::Map, OperatorError> {
    ebpf.map_mut(name)
        .ok_or_else(|| OperatorError::Other(format!("map {name} missing from the object")))
}

fn write_generation(ebpf: &mut Ebpf, slot: u32, c: &Compiled) -> Result<(), OperatorError> {
    let (v4, v6) = if slot == 0 {
        ("PEERS_V4_0", "PEERS_V6_0")
    } else {
        ("PEERS_V4_1", "PEERS_V6_1")
    };
    {
        let mut trie: LpmTrie<&mut MapData, [u8; 4], u32> = LpmTrie::try_from(map_mut(ebpf, v4)?)?;
        let old: Vec<Key<[u8; 4]>> = trie.keys().collect::<Result<_, _>>()?;
        for k in old {
            trie.remove(&k)?;
        }
        for (len, addr, id) in &c.v4 {
            trie.insert(&Key::new(*len, *addr), id, 0)
                .map_err(capacity)?;
        }
    }
    {
        let mut trie: LpmTrie<&mut MapData, [u8; 16], u32> = LpmTrie::try_from(map_mut(ebpf, v6)?)?;
        let old: Vec<Key<[u8; 16]>> = trie.keys().collect::<Result<_, _>>()?;
        for k in old {
            trie.remove(&k)?;
        }
        for (len, addr, id) in &c.v6 {
            trie.insert(&Key::new(*len, *addr), id, 0)
                .map_err(capacity)?;
        }
    }
    let base = slot * MAX_PEERS;
    {
        let mut pol: Array<&mut MapData, PeerPolicy> =
            Array::try_from(map_mut(ebpf, "PEER_POLICY")?)?;
        for id in 0..MAX_PEERS {
            let v = if id == 0 {
                PeerPolicy::default()
            } else {
                c.peers
                    .get(id as usize - 1)
                    .map(|p| p.policy)
                    .unwrap_or_default()
            };
            pol.set(base + id, v, 0)?;
        }
    }
    {
        let mut names: Array<&mut MapData, PeerName> =
            Array::try_from(map_mut(ebpf, "PEER_INFO")?)?;
        for id in 0..MAX_PEERS {
            let mut n = PeerName::default();
            let name = if id == 0 {
                "(unknown)"
            } else {
                c.peers
                    .get(id as usize - 1)
                    .map(|p| p.name.as_str())
                    .unwrap_or("")
            };
            let b = name.as_bytes();
            n.bytes[..b.len().min(63)].copy_from_slice(&b[..b.len().min(63)]);
            names.set(base + id, n, 0)?;
        }
    }
    let mut global: Array<&mut MapData, GlobalPolicy> = Array::try_from(map_mut(ebpf, "GLOBAL")?)?;
    global.set(slot, c.global, 0)?;
    Ok(())
}

fn capacity(e: aya::maps::MapError) -> OperatorError {
    OperatorError::Other(format!(
        "writing a prefix failed ({e}); the policy exceeds the prefix capacity"
    ))
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
