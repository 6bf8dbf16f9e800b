//! Attaching to an interface, pinning, adopting what an earlier controller pinned, and
//! detaching.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, MapData, xdp::DevMapHash},
    programs::{
        Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use filter_common::{InpathCfg, MAP_LAYOUT_VERSION, Meta, maps};

use super::{AttachMode, Attached, BPFFS, Filter, Forward, map_mut, sys};
use crate::{errors::OperatorError, policy::Policy};

/// An interface name as the kernel accepts one (`dev_valid_name`): 1 to 15 bytes, not `.` or
/// `..`, no `/`, `:` or whitespace. Every `--iface` goes through this before it names a pin
/// directory or a socket path: `../tc/globals` must never reach another tool's pins.
pub fn iface_name(s: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("{s:?} is not an interface name: {why}"));
    if s.is_empty() || s.len() > 15 {
        return bad("1 to 15 bytes");
    }
    if s == "." || s == ".." {
        return bad("not . or ..");
    }
    if s.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace()) {
        return bad("no '/', ':', NUL or whitespace");
    }
    Ok(s.to_string())
}

/// `/sys/fs/bpf/sigwall/<iface>`
pub fn pin_dir(iface: &str) -> PathBuf {
    Path::new(BPFFS).join("sigwall").join(iface)
}

fn link_pin(iface: &str) -> PathBuf {
    pin_dir(iface).join("link")
}

/// In-path mode: the core side's link, pinned beside the interconnect side's.
fn fwd_link_pin(iface: &str) -> PathBuf {
    pin_dir(iface).join("link-fwd")
}

/// The ifindex of an interface in this network namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

impl Filter {
    /// Set in-path mode's ports: `core` is B's ifindex (A <-> B forwarding), or `None` for host
    /// mode. Enabling writes the ports before the switch, disabling the switch first, so the
    /// program never forwards to a port that is not there.
    pub fn set_inpath(&mut self, iface_ifindex: u32, core: Option<u32>) -> Result<(), OperatorError> {
        let cfg = match core {
            Some(b) => InpathCfg { enabled: 1, iface_ifindex, core_ifindex: b, budget: self.inpath()?.budget },
            None => InpathCfg::default(),
        };
        if core.is_none() {
            let mut a: Array<&mut MapData, InpathCfg> = Array::try_from(map_mut(&mut self.ebpf, maps::INPATH_CFG)?)?;
            a.set(0, cfg, 0)?;
        }
        let mut fwd: DevMapHash<&mut MapData> = DevMapHash::try_from(map_mut(&mut self.ebpf, maps::INPATH_FWD)?)?;
        // The wanted pairs are written first (an update replaces an entry atomically), and only
        // other keys are removed after: an adopting daemon with the same ports never leaves a
        // moment in which a forwarded frame finds no port (counted no_port, lost).
        let wanted: Vec<(u32, u32)> = match core {
            Some(b) => vec![(iface_ifindex, b), (b, iface_ifindex)],
            None => Vec::new(),
        };
        for &(from, to) in &wanted {
            fwd.insert(from, to, None, 0).map_err(|e| OperatorError::Attach {
                iface: format!("ifindex {from}"),
                detail: format!("writing the in-path port map (devmap hash, kernel 5.4): {e}"),
            })?;
        }
        let stale: Vec<u32> =
            fwd.keys().filter_map(Result::ok).filter(|k| !wanted.iter().any(|(from, _)| from == k)).collect();
        for k in stale {
            fwd.remove(k)?;
        }
        if core.is_some() {
            let mut a: Array<&mut MapData, InpathCfg> = Array::try_from(map_mut(&mut self.ebpf, maps::INPATH_CFG)?)?;
            a.set(0, cfg, 0)?;
        }
        Ok(())
    }

    /// In-path mode: each peer's budget of frames in flight to the daemon per queue (0: none).
    pub fn set_inpath_budget(&mut self, budget: u32) -> Result<(), OperatorError> {
        let mut a: Array<&mut MapData, InpathCfg> = Array::try_from(map_mut(&mut self.ebpf, maps::INPATH_CFG)?)?;
        let mut c = a.get(&0, 0)?;
        c.budget = budget;
        a.set(0, c, 0)?;
        Ok(())
    }

    /// The in-path ports as pinned (all zero in host mode).
    pub fn inpath(&self) -> Result<InpathCfg, OperatorError> {
        let a: Array<&MapData, InpathCfg> = Array::try_from(super::map(&self.ebpf, maps::INPATH_CFG)?)?;
        Ok(a.get(&0, 0)?)
    }

    /// Attach the program to in-path mode's core side and pin that link as `link-fwd`.
    fn attach_forward(&mut self, iface: &str, core: &str, mode: AttachMode) -> Result<Forward, OperatorError> {
        let ifindex = ifindex(core).ok_or_else(|| OperatorError::NoInterface(core.to_string()))?;
        let (_, link) = self.attach_new(core, mode)?;
        let link = link.pin(fwd_link_pin(iface)).map_err(|e| {
            pins_error(&fwd_link_pin(iface), "pinning the XDP link of --forward-to", std::io::Error::other(e))
        })?;
        Ok(Forward { iface: core.to_string(), ifindex, link })
    }
}

impl Filter {
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
        let link = FdLink::try_from(link)
            .map_err(|e| OperatorError::NoXdpLink { iface: iface.to_string(), detail: e.to_string() })?;
        Ok((used, link))
    }
}

/// Whether a running daemon holds `iface`'s pin directory (its lifetime flock, see
/// `daemon::lock_interface`). Probed with a non-blocking lock taken and released at once.
pub fn daemon_running(iface: &str) -> bool {
    use std::os::fd::AsRawFd as _;
    let Ok(f) = std::fs::File::open(pin_dir(iface)) else { return false };
    // SAFETY: flock on a descriptor we own; closing it releases a lock we got.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

/// Whether an earlier controller left a pinned, attached filter on `iface`.
pub fn pins_present(iface: &str) -> bool {
    link_pin(iface).exists()
}

/// Load, pin, apply `c`, and attach to `iface`. Nothing is left behind on failure.
pub fn attach_fresh(
    iface: &str,
    forward_to: Option<&str>,
    mode: AttachMode,
    log_level: u8,
    policy: &Policy,
    sha256: [u8; 32],
) -> Result<Attached, OperatorError> {
    let dir = pin_dir(iface);
    std::fs::create_dir_all(&dir).map_err(|e| pins_error(&dir, "creating the pin directory", e))?;
    let result = (|| {
        let mut filter = Filter::load_with(log_level, Some(&dir), forward_to.is_some())?;
        let c = filter.compile(policy)?;
        filter.apply(&c, sha256)?;
        if let Some(core) = forward_to {
            let a = ifindex(iface).ok_or_else(|| OperatorError::NoInterface(iface.to_string()))?;
            let b = ifindex(core).ok_or_else(|| OperatorError::NoInterface(core.to_string()))?;
            filter.set_inpath(a, Some(b))?;
        }
        let (used, link) = filter.attach_new(iface, mode)?;
        filter.set_meta(|m| {
            m.layout_version = MAP_LAYOUT_VERSION;
            m.attach_mode = used.pinned() as u8;
        })?;
        let link = link
            .pin(link_pin(iface))
            .map_err(|e| pins_error(&link_pin(iface), "pinning the XDP link", std::io::Error::other(e)))?;
        // The core side in the mode the interconnect side got (`auto` resolved there).
        let forward = match forward_to {
            Some(core) => Some(filter.attach_forward(iface, core, used)?),
            None => None,
        };
        Ok(Attached { filter, link, iface: iface.to_string(), mode: used, adopted: false, forward })
    })();
    if result.is_err() {
        let _ = clear_pins(iface);
    }
    result
}

/// Take over the filter an earlier controller pinned on `iface`: reuse its maps (counters,
/// generation and rate state continue) and replace its program with this binary's through the
/// pinned link, atomically. There is no moment without a program on the interface.
///
/// In-path mode: the core side's pinned link (`link-fwd`) gets the new program too. Started
/// with another `--forward-to` (or none), the old core side is detached and the new one
/// attached; the interconnect side never loses its filter meanwhile.
pub fn adopt(iface: &str, forward_to: Option<&str>, log_level: u8) -> Result<Attached, OperatorError> {
    let dir = pin_dir(iface);
    let meta_pin = dir.join(maps::META);
    let old = MapData::from_pin(&meta_pin).map_err(|e| OperatorError::Adopt {
        iface: iface.to_string(),
        step: "reading the pinned META map (not a sigwall pin set this version understands?)",
        detail: e.to_string(),
    })?;
    let meta: Meta = {
        let m = aya::maps::Map::from_map_data(old)?;
        let a: Array<MapData, Meta> = Array::try_from(m)?;
        a.get(&0, 0)?
    };
    if meta.layout_version != MAP_LAYOUT_VERSION {
        return Err(OperatorError::LayoutMismatch {
            iface: iface.to_string(),
            pinned: meta.layout_version,
            ours: MAP_LAYOUT_VERSION,
        });
    }
    let mut filter = Filter::load_with(log_level, Some(&dir), forward_to.is_some())?;
    let pinned =
        PinnedLink::from_pin(link_pin(iface)).map_err(|e| adopt_error(iface, "opening the pinned XDP link", e))?;
    let fd_link: FdLink = pinned.into();
    let xdp_link =
        XdpLink::try_from(fd_link).map_err(|e| adopt_error(iface, "reading the pinned link as an XDP link", e))?;
    let prog = filter.program()?;
    let id = prog
        .attach_to_link(xdp_link)
        .map_err(|e| adopt_error(iface, "replacing the program behind the pinned link", e))?;
    let link = prog.take_link(id).map_err(|e| adopt_error(iface, "taking the XDP link", e))?;
    let link = FdLink::try_from(link).map_err(|e| adopt_error(iface, "taking the XDP link", e))?;
    // Re-pin: the old pin is the same link, but the PinnedLink we hold must own a pin path.
    let _ = std::fs::remove_file(link_pin(iface));
    let link = link.pin(link_pin(iface)).map_err(|e| adopt_error(iface, "re-pinning the XDP link", e))?;
    let mode = match meta.attach_mode() {
        Some(filter_common::AttachMode::Skb) => AttachMode::Skb,
        Some(filter_common::AttachMode::Native) | None => AttachMode::Native,
    };
    let forward = adopt_forward(&mut filter, iface, forward_to, mode)?;
    Ok(Attached { filter, link, iface: iface.to_string(), mode, adopted: true, forward })
}

/// The core side on adoption: keep (new program behind the pinned link), move, or remove it.
fn adopt_forward(
    filter: &mut Filter,
    iface: &str,
    forward_to: Option<&str>,
    mode: AttachMode,
) -> Result<Option<Forward>, OperatorError> {
    let a = ifindex(iface).ok_or_else(|| OperatorError::NoInterface(iface.to_string()))?;
    let wanted = match forward_to {
        Some(core) => Some((core, ifindex(core).ok_or_else(|| OperatorError::NoInterface(core.to_string()))?)),
        None => None,
    };
    let pinned = filter.inpath()?;
    let pin = fwd_link_pin(iface);
    let same = wanted.is_some_and(|(_, b)| pinned.enabled != 0 && pinned.core_ifindex == b && pin.exists());
    if same && let Some((core, b)) = wanted {
        let old = PinnedLink::from_pin(&pin).map_err(|e| adopt_error(iface, "opening the pinned XDP link-fwd", e))?;
        let xdp_link = XdpLink::try_from(FdLink::from(old))
            .map_err(|e| adopt_error(iface, "reading link-fwd as an XDP link", e))?;
        let prog = filter.program()?;
        let id = prog
            .attach_to_link(xdp_link)
            .map_err(|e| adopt_error(iface, "replacing the program behind link-fwd", e))?;
        let link = prog.take_link(id).map_err(|e| adopt_error(iface, "taking the XDP link-fwd", e))?;
        let link = FdLink::try_from(link).map_err(|e| adopt_error(iface, "taking the XDP link-fwd", e))?;
        let _ = std::fs::remove_file(&pin);
        let link = link.pin(&pin).map_err(|e| adopt_error(iface, "re-pinning link-fwd", e))?;
        filter.set_inpath(a, Some(b))?;
        return Ok(Some(Forward { iface: core.to_string(), ifindex: b, link }));
    }
    // Another core side, or none: stop forwarding to the old one first, then detach it.
    filter.set_inpath(a, None)?;
    detach_pin(iface, &pin)?;
    match wanted {
        Some((core, b)) => {
            filter.set_inpath(a, Some(b))?;
            Ok(Some(filter.attach_forward(iface, core, mode)?))
        }
        None => Ok(None),
    }
}

/// Detach the link pinned at `path` (if any) and remove the pin.
fn detach_pin(iface: &str, path: &Path) -> Result<bool, OperatorError> {
    if !path.exists() {
        return Ok(false);
    }
    let fd = sys::bpf_obj_get(path).map_err(|e| pins_error(path, "opening the pinned XDP link", e))?;
    sys::link_detach(&fd).map_err(|e| OperatorError::Detach { iface: iface.to_string(), source: e })?;
    std::fs::remove_file(path).map_err(|e| pins_error(path, "removing the pin", e))?;
    Ok(true)
}

/// Detach whatever sigwall program is pinned on `iface`, even if a controller still holds the
/// link open (BPF_LINK_DETACH, kernel 5.9), then remove the pins.
pub fn force_detach(iface: &str) -> Result<bool, OperatorError> {
    // In-path mode's core side first: the interconnect side keeps filtering until the last.
    detach_pin(iface, &fwd_link_pin(iface))?;
    let detached = detach_pin(iface, &link_pin(iface))?;
    remove_pins(iface).map_err(|e| pins_error(&pin_dir(iface), "removing the pins", e))?;
    Ok(detached)
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

fn pins_error(path: &Path, action: &'static str, source: std::io::Error) -> OperatorError {
    OperatorError::Pins { path: path.display().to_string(), action, source }
}

fn adopt_error(iface: &str, step: &'static str, e: impl fmt::Display) -> OperatorError {
    OperatorError::Adopt { iface: iface.to_string(), step, detail: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::iface_name;

    #[test]
    fn interface_names_are_kernel_names() {
        for ok in ["eth0", "swe2ff00", "enp1s0f1.100", "a", "fifteen-bytes-x", "veth-ipx@"] {
            assert_eq!(iface_name(ok).as_deref(), Ok(ok));
        }
        for bad in ["", ".", "..", "../tc/globals", "a/b", "eth0:1", "a b", "a\tb", "a\0b", "sixteen-bytes-xx"] {
            assert!(iface_name(bad).unwrap_err().contains("is not an interface name"), "{bad:?}");
        }
    }
}
