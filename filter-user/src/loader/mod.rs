//! Loading the XDP program and owning its maps. The jobs live in submodules: writing policy
//! generations (`generation`), attaching, adopting and detaching (`attach`), reading a
//! running filter's pins ([`pins`]) and the raw `bpf(2)` calls aya does not offer (`sys`).

mod attach;
mod generation;
pub mod pins;
mod sys;

use std::{
    fmt,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
    programs::{Xdp, links::PinnedLink},
};
use filter_common::{Meta, maps};

pub use attach::{
    adopt, attach_fresh, clear_pins, daemon_running, force_detach, iface_name, ifindex, pin_dir, pins_present,
    remove_pins,
};
pub use sys::bpffs_mounted;

use crate::{errors::OperatorError, policy::compile::PeerIds};

/// The compiled XDP object, built by build.rs from filter-ebpf.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sigwall"));

pub const PROGRAM: &str = "sigwall";
pub const BPFFS: &str = "/sys/fs/bpf";
/// The program's load-time switch for in-path mode (a `.rodata` global, see `load_with`).
const INPATH_LOADED: &str = "INPATH_LOADED";
/// The program's switch for its source cache (`SOURCE_CACHE_ON` in filter-ebpf), 1 unless a
/// benchmark measures the trie path.
const SOURCE_CACHE_ON: &str = "SOURCE_CACHE_ON";
/// The program load's random epoch, part of every source-cache slot's tag (`SOURCE_CACHE_EPOCH`).
const SOURCE_CACHE_EPOCH: &str = "SOURCE_CACHE_EPOCH";

/// The maps pinned for an interface, by name: every map of the program (see
/// [`filter_common::maps::ALL`]).
pub const PINNED_MAPS: [&str; maps::ALL.len()] = maps::ALL;

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

impl AttachMode {
    /// The mode recorded in the pinned `META` map: what the kernel attached with (`Auto` has
    /// been resolved to native or skb by then, and counts as native if it was not).
    fn pinned(self) -> filter_common::AttachMode {
        match self {
            AttachMode::Skb => filter_common::AttachMode::Skb,
            AttachMode::Native | AttachMode::Auto => filter_common::AttachMode::Native,
        }
    }
}

/// A loaded sigwall program and its maps, pinned or not.
pub struct Filter {
    pub ebpf: Ebpf,
    ids: PeerIds,
    /// What this process last wrote into each generation slot's tries (`None`: unknown, read
    /// it back from the kernel). Spares reading 1,000,000 prefixes back on every live change.
    written: [Option<generation::SlotPrefixes>; 2],
    /// The epoch this load drew for its source cache (written only into this build's object; an
    /// older object loaded by `load_object` has no cache and ignores it).
    source_cache_epoch: u32,
}

/// A filter attached to an interface, its link pinned.
pub struct Attached {
    pub filter: Filter,
    pub link: PinnedLink,
    pub iface: String,
    pub mode: AttachMode,
    /// True when an earlier controller's pins were adopted (no gap in filtering).
    pub adopted: bool,
    /// In-path mode: the core side, attached with the same program, its link pinned as
    /// `link-fwd` in `iface`'s pin directory.
    pub forward: Option<Forward>,
}

/// The core side of in-path mode (`--forward-to`).
pub struct Forward {
    pub iface: String,
    pub ifindex: u32,
    pub link: PinnedLink,
}

impl Filter {
    /// Load the embedded object with private (unpinned) maps: for tests and benchmarks.
    /// `log_level` 0 keeps aya-log silent in the program (a disabled record costs one byte
    /// compare); 1..=5 is error..trace.
    pub fn load(log_level: u8) -> Result<Self, OperatorError> {
        Self::load_with(log_level, None, false)
    }

    /// `load`, with the program's source cache turned off: every source walks the trie. For
    /// benchmarks that measure the trie path beside the cached one (`xdp_cost`); never used by
    /// the product.
    pub fn load_without_source_cache() -> Result<Self, OperatorError> {
        Self::load_from(OBJECT, 0, None, false, false)
    }

    /// Load the embedded object as in-path mode loads it (`sigwall run --forward-to`), with
    /// private maps and no ports: for tests of what the load-time switch decides.
    pub fn load_for_inpath(log_level: u8) -> Result<Self, OperatorError> {
        Self::load_with(log_level, None, true)
    }

    /// Load another build of the program (an object file's bytes, with the same maps) with
    /// private maps: for benchmarks that measure an earlier version next to this one in the
    /// same run (`xdp_cost --compare-object`). Never used by the product.
    pub fn load_object(object: &[u8]) -> Result<Self, OperatorError> {
        Self::load_from(object, 0, None, false, true)
    }

    /// `inpath`: load the program for in-path mode (`--forward-to`). A program loaded without it
    /// never forwards between ports or hands frames to the daemon, whatever `INPATH_CFG` says:
    /// the verifier removed that code (`INPATH_LOADED` in filter-ebpf).
    fn load_with(log_level: u8, pins: Option<&Path>, inpath: bool) -> Result<Self, OperatorError> {
        Self::load_from(OBJECT, log_level, pins, inpath, true)
    }

    fn load_from(
        object: &[u8],
        log_level: u8,
        pins: Option<&Path>,
        inpath: bool,
        source_cache: bool,
    ) -> Result<Self, OperatorError> {
        let mut loader = EbpfLoader::new();
        loader.override_global(aya_log::LEVEL, &log_level, false);
        // Required only for in-path mode: an object without the symbol (an older build, measured
        // by `xdp_cost --compare-object`) reads `INPATH_CFG` on every packet instead.
        let inpath_loaded = inpath as u32;
        loader.override_global(INPATH_LOADED, &inpath_loaded, inpath);
        // Off on a PREEMPT_RT kernel (see `SOURCE_CACHE_ON` in filter-ebpf). Required only to
        // turn the cache off: an older object without the symbol has no cache.
        let source_cache = source_cache && !preempt_rt();
        let source_cache_on = source_cache as u32;
        // Required of this build's object; an older one (`xdp_cost --compare-object`) lacks them.
        let ours = std::ptr::eq(object.as_ptr(), OBJECT.as_ptr());
        loader.override_global(SOURCE_CACHE_ON, &source_cache_on, ours && !source_cache);
        let source_cache_epoch = random_epoch();
        loader.override_global(SOURCE_CACHE_EPOCH, &source_cache_epoch, ours);
        let paths: Vec<(&str, PathBuf)> = match pins {
            Some(dir) => PINNED_MAPS.iter().map(|n| (*n, dir.join(n))).collect(),
            None => Vec::new(),
        };
        for (name, path) in &paths {
            // Opens the pinned map if it exists (adoption), else creates and pins it.
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(object).map_err(OperatorError::from_load)?;
        let prog: &mut Xdp = program(&mut ebpf)?;
        prog.load().map_err(OperatorError::from_program_load)?;
        let mut f = Filter { ebpf, ids: PeerIds::default(), written: [None, None], source_cache_epoch };
        f.ids = PeerIds::from_pairs(f.active_peer_names()?);
        Ok(f)
    }

    /// The epoch this load drew for its source cache's tags (`filter_common::source_cache_tag`).
    pub fn source_cache_epoch(&self) -> u32 {
        self.source_cache_epoch
    }

    /// A descriptor of its own on one of the filter's maps, for a user that runs apart from
    /// the owner of this `Filter` (deep inspection's block writer).
    pub fn map_handle(&self, name: &str) -> Result<aya::maps::Map, OperatorError> {
        use std::os::fd::AsFd as _;
        let fd = match map(&self.ebpf, name)? {
            aya::maps::Map::Array(m) | aya::maps::Map::HashMap(m) | aya::maps::Map::LruHashMap(m) => {
                m.fd().as_fd().try_clone_to_owned()
            }
            _ => return Err(OperatorError::BrokenObject { what: format!("array or hash map {name}") }),
        }
        .map_err(|e| OperatorError::Pins {
            path: name.to_string(),
            action: "duplicating a map descriptor",
            source: e,
        })?;
        Ok(aya::maps::Map::from_map_data(MapData::from_fd(fd)?)?)
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

    pub fn meta(&self) -> Result<Meta, OperatorError> {
        let meta: Array<&MapData, Meta> = Array::try_from(map(&self.ebpf, maps::META)?)?;
        Ok(meta.get(&0, 0)?)
    }

    fn set_meta(&mut self, f: impl FnOnce(&mut Meta)) -> Result<(), OperatorError> {
        let mut meta: Array<&mut MapData, Meta> = Array::try_from(map_mut(&mut self.ebpf, maps::META)?)?;
        let mut m = meta.get(&0, 0)?;
        f(&mut m);
        meta.set(0, m, 0)?;
        Ok(())
    }
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, OperatorError> {
    ebpf.program_mut(PROGRAM)
        .ok_or_else(|| OperatorError::BrokenObject { what: format!("program {PROGRAM}") })?
        .try_into()
        .map_err(|e| OperatorError::BrokenObject { what: format!("XDP program {PROGRAM} ({e})") })
}

pub(crate) fn map<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a aya::maps::Map, OperatorError> {
    ebpf.map(name).ok_or_else(|| OperatorError::BrokenObject { what: format!("map {name}") })
}

pub(crate) fn map_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::maps::Map, OperatorError> {
    ebpf.map_mut(name).ok_or_else(|| OperatorError::BrokenObject { what: format!("map {name}") })
}

/// A nonzero random number from the kernel (`getrandom(2)`), or, should that fail, one from the
/// clock and the process id: the epoch need only differ from the previous load's.
fn random_epoch() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom(2) writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let v = if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        (t as u32) ^ std::process::id().rotate_left(16)
    };
    v.max(1)
}

/// Whether the running kernel is PREEMPT_RT (`/sys/kernel/realtime` is 1, or the version string
/// says so). The version comes from uname(2), which cannot fail, rather than from /proc, which a
/// sandbox may hide: an RT kernel must not be taken for another because a file was unreadable.
fn preempt_rt() -> bool {
    let realtime = std::fs::read_to_string("/sys/kernel/realtime").unwrap_or_default();
    // SAFETY: utsname is plain data; uname(2) fills it with NUL-terminated strings.
    let version = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        std::ffi::CStr::from_ptr(u.version.as_ptr()).to_string_lossy().into_owned()
    };
    is_preempt_rt(&realtime, &version)
}

fn is_preempt_rt(realtime: &str, version: &str) -> bool {
    realtime.trim() == "1" || version.split_whitespace().any(|w| w == "PREEMPT_RT")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The kernel side names its maps by literals (`#[map]` statics); the controller by
    /// `filter_common::maps`. Both lists must be the same, or pinning and lookups break.
    #[test]
    fn the_object_has_exactly_the_maps_named_in_common() {
        let obj = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
        // aya-log's own maps and the data sections (.rodata, .bss) are not ours.
        let in_object: BTreeSet<&str> =
            obj.maps.keys().map(String::as_str).filter(|n| !n.starts_with('.') && !n.starts_with("AYA_LOG")).collect();
        let named: BTreeSet<&str> = maps::ALL.into_iter().collect();
        assert_eq!(in_object, named);
        assert_eq!(named.len(), maps::ALL.len(), "no name listed twice");
    }

    #[test]
    fn preempt_rt_is_read_from_sysfs_or_the_version_string() {
        assert!(is_preempt_rt("1\n", ""));
        assert!(is_preempt_rt("", "#1 SMP PREEMPT_RT Thu Dec  3 12:00:00 UTC 2026\n"));
        assert!(!is_preempt_rt("0\n", "#1 SMP PREEMPT_DYNAMIC Thu Dec  3 12:00:00 UTC 2026\n"));
        assert!(!is_preempt_rt("", "#1 SMP PREEMPT Thu Dec  3 12:00:00 UTC 2026\n"));
    }
}
