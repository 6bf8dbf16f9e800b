//! `sigwall run`: attach (or adopt), then serve the control socket, reload on SIGHUP or on file
//! change, log stats, and on exit detach or stay attached (fail-static).
//!
//! One owner per job: the policy state ([`state::State`]) behind the control socket's lock,
//! deep inspection on its own task ([`inspection`]), and the metrics endpoint reading pins and
//! published facts ([`crate::metrics`]).

pub mod inspection;
pub mod state;

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use filter_common::{Mode, Reason, maps};
use serde_json::json;
use tokio::{
    net::UnixListener,
    sync::{Mutex, Notify, mpsc},
};

use crate::{
    control::{self, server::Caller},
    errors::OperatorError,
    inspect::io::{BlockWriter, EventLog, PcapWriter},
    loader::{self, AttachMode, Attached},
    policy::{self, Limits, Policy, edit, hex},
    stats,
};
use state::State;

/// What happens to the filter when the daemon exits on SIGINT/SIGTERM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnExit {
    /// Detach the program and remove the pins.
    Detach,
    /// Leave the program attached and pinned, enforcing the last policy (fail-static); the
    /// next `sigwall run` adopts it without a gap, `sigwall detach` removes it.
    Keep,
}

pub struct Config {
    pub iface: String,
    /// In-path mode: the core side. Frames the first pass passes on `iface` leave by this
    /// interface and its frames leave by `iface` (a bump in the wire); `None`: host mode.
    pub forward_to: Option<String>,
    /// Tap mode: `iface` is a mirror port; everything runs in monitor mode
    /// ([`Policy::observe_only`]).
    pub tap: bool,
    /// In path: the time slice each AF_XDP worker asks the scheduler for, in microseconds
    /// (`inpath::sched`); 0 leaves the kernel's default.
    pub worker_slice_us: u64,
    /// In path: run the workers SCHED_FIFO at this priority (`None`: fair tasks).
    pub worker_priority: Option<u8>,
    /// In path: how long a worker spins for frames before it sleeps in poll(2) (µs, 0: never).
    pub worker_busy_poll_us: u64,
    pub policy_path: PathBuf,
    pub xdp_mode: AttachMode,
    pub mode: Option<Mode>,
    pub bpf_log_level: u8,
    pub stats_interval: u64,
    pub socket: PathBuf,
    pub audit_log: Option<PathBuf>,
    pub persist: bool,
    pub watch_policy: bool,
    pub on_exit: OnExit,
    /// A group whose members may use the control socket (mode 0660); else root only (0600).
    pub control_gid: Option<u32>,
    pub limits: Limits,
    /// Deep-inspection events as JSON lines ("-" for stdout); None keeps them in memory only.
    pub events: Option<PathBuf>,
    /// Write flagged packets to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Where the control socket goes by default (the per-interface lock is the pin directory).
    pub run_dir: PathBuf,
    /// Serve Prometheus metrics here.
    pub metrics: Option<std::net::SocketAddr>,
    /// Subscriber state backend (in-process or Redis) and the in-process snapshot file.
    pub state: crate::subscriber::Backend,
    pub state_snapshot: Option<PathBuf>,
}

/// Readiness line on stdout, for scripts and tests.
pub const READY: &str = "sigwall: filtering on";

pub fn run(cfg: Config) -> anyhow::Result<()> {
    // Everything that can be checked before touching the kernel is checked first: a bad policy
    // or interface name attaches nothing and changes nothing, and is reported as such even to a
    // user without the capabilities (who then learns of both problems in turn, policy first).
    let (text, pol) = read_policy(&cfg)?;
    check_interface(&cfg.iface)?;
    if let Some(b) = &cfg.forward_to {
        check_forward_to(&cfg.iface, b)?;
    }
    check_capabilities()?;
    // One daemon per interface, whatever socket paths they were given: an exclusive lock that
    // the kernel releases when the holder dies, even by kill -9.
    let _lock = lock_interface(&cfg.iface)?;

    let sha = policy::applied_sha256(&text, cfg.tap);
    let mut attached = attach_or_adopt(&cfg, &pol, sha)?;
    let _logger = if cfg.bpf_log_level > 0 {
        Some(aya_log::EbpfLogger::init(&mut attached.filter.ebpf).context("starting the eBPF logger")?)
    } else {
        None
    };

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let sinks = match open_sinks(&rt, &cfg, &mut attached, &pol) {
        Ok(x) => x,
        Err(e) => {
            // Leave the interface as we found it: a fresh attach is undone, an adopted filter
            // keeps running as before.
            if !attached.adopted {
                drop(attached);
                let _ = loader::force_detach(&cfg.iface);
            }
            return Err(e);
        }
    };
    let (mode, adopted) = (attached.mode, attached.adopted);
    let view = inspection::PolicyView::new(&pol, &attached.filter);
    // The pinned per-peer counters, for the overload reports; without them (no pins) the
    // counters still count and `sigwall stats` shows them, but no event is raised.
    let peer_stats = loader::pins::open(&cfg.iface, filter_common::maps::PEER_STATS)
        .ok()
        .and_then(|m| aya::maps::PerCpuArray::try_from(m).ok());
    if peer_stats.is_none() {
        log::warn!(
            "the pinned PEER_STATS map cannot be opened: overload of inspection is counted but not reported as events"
        );
    }
    let mut inspection = {
        let _rt = rt.enter();
        inspection::start(sinks.ring, sinks.blocks, view, sinks.events, sinks.pcap, sinks.subscribers, peer_stats)
    };
    if let Some(fwd) = &attached.forward {
        // In path: the AF_XDP workers, last, so that every slot of INPATH_XSKS is filled by a
        // worker that is ready; until then XDP applies each peer's on_overload.
        let ports = crate::inpath::Ports {
            iface: cfg.iface.clone(),
            ifindex: loader::ifindex(&cfg.iface).ok_or_else(|| OperatorError::NoInterface(cfg.iface.clone()))?,
            core: fwd.iface.clone(),
            core_ifindex: fwd.ifindex,
            worker_slice_us: cfg.worker_slice_us,
            worker_priority: cfg.worker_priority,
            worker_busy_poll_us: cfg.worker_busy_poll_us,
        };
        let xsks = attached.filter.ebpf.take_map(maps::INPATH_XSKS).context("the object has no INPATH_XSKS map")?;
        let mut xsks = aya::maps::XskMap::try_from(xsks).context("INPATH_XSKS is not an XSKMAP")?;
        attached.filter.set_inpath_budget(crate::inpath::budget(&pol))?;
        let n = match inspection.start_inpath(&ports, &mut xsks, &pol, &attached.filter) {
            Ok(n) => n,
            Err(e) => {
                // As for the sinks: a fresh attach is undone, an adopted filter keeps running.
                drop(inspection);
                if !attached.adopted {
                    drop(attached);
                    let _ = loader::force_detach(&cfg.iface);
                }
                return Err(e);
            }
        };
        log::info!(
            "in path: {n} AF_XDP worker(s) judge inspected peers' signaling from {} before it leaves by {}",
            cfg.iface,
            fwd.iface
        );
    }
    let counters = inspection.counters_reader();
    let mut state =
        State::new(attached, cfg.policy_path.clone(), text, pol, cfg.persist, cfg.limits, sinks.audit, inspection);
    state.tap = cfg.tap;
    log::info!(
        "{} {} in {mode} mode, policy {} (sha256 {}), generation {}, control socket {}",
        if adopted { "adopted" } else { "attached to" },
        cfg.iface,
        cfg.policy_path.display(),
        &hex(&sha)[..16],
        state.generation(),
        cfg.socket.display()
    );
    match &cfg.forward_to {
        Some(b) => println!("{READY} {} ({mode} mode, in path to {b})", cfg.iface),
        None if cfg.tap => println!("{READY} {} (monitor mode, tap)", cfg.iface),
        None => println!("{READY} {} ({mode} mode)", cfg.iface),
    }

    if let Some(l) = sinks.metrics {
        log::info!("metrics on http://{}/metrics", l.local_addr().map(|a| a.to_string()).unwrap_or_default());
        let sources = crate::metrics::Sources::new(cfg.iface.clone(), mode, state.facts.clone(), counters);
        rt.spawn(crate::metrics::serve(l, sources));
    }
    let state = Arc::new(Mutex::new(state));
    let result = rt.block_on(serve(&cfg, sinks.listener, state.clone()));
    let detach = rt.block_on(async { state.lock().await.detach_requested }) || cfg.on_exit == OnExit::Detach;
    let _ = std::fs::remove_file(&cfg.socket);
    rt.shutdown_timeout(Duration::from_secs(1));
    finish(&cfg.iface, detach)?;
    // Closing our link and map descriptors last: with the pins gone (detach) nothing is left;
    // with the pins kept the program stays attached.
    drop(state);
    result
}

/// The policy file, with `--mode` applied, parsed and validated whole.
fn read_policy(cfg: &Config) -> anyhow::Result<(String, Policy)> {
    let mut text = std::fs::read_to_string(&cfg.policy_path)
        .with_context(|| format!("{}: cannot read policy file", cfg.policy_path.display()))?;
    let name = cfg.policy_path.display().to_string();
    if let Some(m) = cfg.mode {
        let mut doc = edit::parse_doc(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        edit::set_mode(&mut doc, m.name())?;
        text = doc.to_string();
    }
    let mut pol = policy::parse(&name, &text, &cfg.limits).map_err(|e| OperatorError::PolicyRejected(e.to_string()))?;
    if cfg.tap {
        pol.observe_only();
    }
    Ok((text, pol))
}

/// The interface exists and bpffs is mounted.
fn check_interface(iface: &str) -> anyhow::Result<()> {
    let c = std::ffi::CString::new(iface).context("interface name contains NUL")?;
    // SAFETY: valid C string.
    if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
        return Err(OperatorError::NoInterface(iface.to_string()).into());
    }
    if !loader::bpffs_mounted() {
        return Err(OperatorError::NoBpffs.into());
    }
    Ok(())
}

/// In-path mode's core side: another interface than `iface`, present here, and not the
/// interconnect side of another sigwall.
fn check_forward_to(iface: &str, core: &str) -> anyhow::Result<()> {
    let err = |why: &str| OperatorError::ForwardTo { forward_to: core.to_string(), why: why.to_string() };
    if core == iface {
        return Err(err("the same interface as --iface").into());
    }
    let (Some(a), Some(b)) = (loader::ifindex(iface), loader::ifindex(core)) else {
        return Err(OperatorError::NoInterface(core.to_string()).into());
    };
    if a == b {
        return Err(err("the same interface as --iface").into());
    }
    if loader::pins_present(core) {
        return Err(err("a sigwall filter is pinned on it (sigwall detach --iface it first)").into());
    }
    Ok(())
}

/// Adopt the filter an earlier controller pinned (applying the policy if it differs), or
/// attach a fresh one.
fn attach_or_adopt(cfg: &Config, pol: &Policy, sha: [u8; 32]) -> anyhow::Result<Attached> {
    if loader::pins_present(&cfg.iface) {
        let mut a = loader::adopt(&cfg.iface, cfg.forward_to.as_deref(), cfg.bpf_log_level)?;
        let generation = a.filter.generation()?;
        if a.filter.meta()?.policy_sha256 == sha {
            log::info!("adopted the filter pinned on {} at generation {generation}; policy unchanged", cfg.iface);
        } else {
            let c = a.filter.compile(pol)?;
            a.filter.apply(&c, sha)?;
            log::info!(
                "adopted the filter pinned on {} at generation {generation}; policy file differs, applied as generation {}",
                cfg.iface,
                c.global.generation
            );
        }
        Ok(a)
    } else {
        // A pin directory without a link is debris of an interrupted start: its maps are not
        // attached to anything, so start clean. Debris that cannot be removed would be reused
        // by the fresh load (maps are pinned by name): refuse instead.
        loader::clear_pins(&cfg.iface).with_context(|| {
            format!(
                "removing leftover pins in {} (no pinned link: debris of an interrupted start)",
                loader::pin_dir(&cfg.iface).display()
            )
        })?;
        Ok(loader::attach_fresh(&cfg.iface, cfg.forward_to.as_deref(), cfg.xdp_mode, cfg.bpf_log_level, pol, sha)?)
    }
}

/// Everything the daemon opens besides the filter: sockets, logs, the ring buffer.
struct Sinks {
    listener: UnixListener,
    audit: Option<std::fs::File>,
    events: EventLog,
    pcap: Option<PcapWriter>,
    ring: Ring,
    blocks: BlockWriter,
    metrics: Option<tokio::net::TcpListener>,
    subscribers: std::sync::Arc<std::sync::Mutex<crate::subscriber::Subscribers>>,
}

fn open_sinks(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    attached: &mut Attached,
    pol: &Policy,
) -> anyhow::Result<Sinks> {
    let _rt = rt.enter();
    let listener = bind_socket(&cfg.socket, cfg.control_gid)?;
    let audit = open_audit(cfg.audit_log.as_deref())?;
    let events =
        EventLog::open(cfg.events.as_deref()).with_context(|| format!("opening the event log {:?}", cfg.events))?;
    let pcap = match &cfg.pcap {
        Some(p) => Some(PcapWriter::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => None,
    };
    crate::inspect::io::set_enabled(&mut attached.filter, pol.inspect.enabled)?;
    let blocks = BlockWriter::new(&attached.filter)?;
    let ring = attached.filter.ebpf.take_map(maps::INSPECT_RING).context("the object has no INSPECT_RING map")?;
    let ring = aya::maps::RingBuf::try_from(ring).context("INSPECT_RING is not a ring buffer")?;
    // SAFETY: the ring buffer owns its descriptor, which stays open and unchanged for as
    // long as the AsyncFd holds the RingBuf.
    let ring = unsafe { tokio::io::unix::AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("watching the inspection ring buffer: {e}"))?;
    let metrics = match cfg.metrics {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .and_then(|l| {
                    l.set_nonblocking(true)?;
                    tokio::net::TcpListener::from_std(l)
                })
                .with_context(|| format!("binding the metrics endpoint {addr}"))?,
        ),
        None => None,
    };
    // A snapshot that cannot be read is an operator error, named, before anything runs: a
    // silently empty state would pass what it should judge.
    let subscribers =
        crate::subscriber::Subscribers::open(&cfg.state, cfg.state_snapshot.clone(), pol.inspect.subscriber.capacity)
            .map_err(|e| anyhow::anyhow!("subscriber state: {e}"))?;
    log::info!(
        "subscriber state: {} ({} subscribers from the snapshot{})",
        subscribers.backend_name(),
        subscribers.stats().store.subscribers,
        cfg.state_snapshot.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default()
    );
    let subscribers = std::sync::Arc::new(std::sync::Mutex::new(subscribers));
    Ok(Sinks { listener, audit, events, pcap, ring, blocks, metrics, subscribers })
}

fn finish(iface: &str, detach: bool) -> anyhow::Result<()> {
    if detach {
        loader::force_detach(iface).context("detaching")?;
        log::info!("detached from {iface}");
    } else {
        log::info!(
            "exiting; the filter stays attached to {iface} with the last policy (fail-static); `sigwall detach --iface {iface}` removes it"
        );
    }
    Ok(())
}

/// Capabilities `sigwall run` needs, by number (linux/capability.h).
const NEEDED_CAPS: [(u32, &str); 3] = [(39, "CAP_BPF"), (12, "CAP_NET_ADMIN"), (38, "CAP_PERFMON")];

/// Name the missing capabilities before anything fails obscurely. Root passes (all caps).
fn check_capabilities() -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(eff) =
        status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        return Ok(());
    };
    let missing: Vec<&str> = NEEDED_CAPS.iter().filter(|(bit, _)| eff & (1u64 << bit) == 0).map(|(_, n)| *n).collect();
    if !missing.is_empty() {
        bail!(
            "missing capabilities {}: run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (e.g. AmbientCapabilities= in the systemd unit, or setcap cap_bpf,cap_net_admin,cap_perfmon+ep on the binary)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Lock the interface's pin directory (flock, exclusive, non-blocking) for the daemon's lifetime.
fn lock_interface(iface: &str) -> anyhow::Result<InterfaceLock> {
    use std::os::fd::AsRawFd as _;
    // The lock is the interface's pin directory itself: every sigwall for this interface uses
    // it, whatever run directory or socket it was given.
    let dir = loader::pin_dir(iface);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let f = std::fs::File::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!(
            "another sigwall is running on {iface} (it holds {}): stop it first, or talk to it with `sigwall status --iface {iface}`",
            dir.display()
        );
    }
    Ok(InterfaceLock { _dir: f })
}

/// Held for the daemon's lifetime; the kernel releases it when the daemon exits, even by kill -9.
struct InterfaceLock {
    _dir: std::fs::File,
}

fn open_audit(path: Option<&Path>) -> anyhow::Result<Option<std::fs::File>> {
    let Some(p) = path else { return Ok(None) };
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .with_context(|| format!("opening the audit log {}", p.display()))?;
    Ok(Some(f))
}

fn bind_socket(path: &Path, gid: Option<u32>) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A leftover of a daemon killed without cleaning up (this interface's lock is ours). Nobody
    // checks who listens: a socket path shared with another interface's daemon is taken over.
    let _ = std::fs::remove_file(path);
    let std_listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(g) = gid {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).context("socket path")?;
        // SAFETY: chown on a path we just created; -1 keeps the owner.
        if unsafe { libc::chown(c.as_ptr(), u32::MAX, g) } != 0 {
            bail!("giving group {g} the control socket: {}", std::io::Error::last_os_error());
        }
    }
    std_listener.set_nonblocking(true)?;
    Ok(UnixListener::from_std(std_listener)?)
}

type Ring = tokio::io::unix::AsyncFd<aya::maps::RingBuf<aya::maps::MapData>>;

/// Why the serving loop woke up.
enum Wake {
    Exit,
    Reload(&'static str),
    FileChanged,
    StatsLine,
}

/// Serve until a signal or a `detach` request: the control socket and deep inspection run on
/// their own tasks; this loop handles signals, policy-file changes and the periodic stats line.
async fn serve(cfg: &Config, listener: UnixListener, state: Arc<Mutex<State>>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let exit = Arc::new(Notify::new());
    let (file_tx, mut file_rx) = mpsc::unbounded_channel::<()>();
    let _watcher = if cfg.watch_policy { Some(watch(&cfg.policy_path, file_tx)?) } else { None };
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.stats_interval.max(1)));
    tick.tick().await;
    let control = tokio::spawn(control::server::serve(listener, state.clone(), exit.clone()));
    loop {
        let wake = tokio::select! {
            _ = term.recv() => Wake::Exit,
            _ = int.recv() => Wake::Exit,
            _ = exit.notified() => Wake::Exit,
            _ = hup.recv() => Wake::Reload("SIGHUP"),
            Some(()) = file_rx.recv() => Wake::FileChanged,
            _ = tick.tick(), if cfg.stats_interval > 0 => Wake::StatsLine,
        };
        match wake {
            Wake::Exit => break,
            Wake::Reload(why) => reload(&state, why).await,
            Wake::FileChanged => reload_if_changed(&state, &mut file_rx).await,
            Wake::StatsLine => log_stats(&cfg.iface),
        }
    }
    control.abort();
    Ok(())
}

/// Editors write in several steps; let them finish, then take one reload if the text changed.
async fn reload_if_changed(state: &Arc<Mutex<State>>, file_rx: &mut mpsc::UnboundedReceiver<()>) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    while file_rx.try_recv().is_ok() {}
    let unchanged = {
        let st = state.lock().await;
        std::fs::read_to_string(&st.policy_path).map(|t| t == st.text).unwrap_or(false)
    };
    if !unchanged {
        reload(state, "file change").await;
    }
}

/// The periodic stats line, from the pins (no lock): every reason, and signaling dropped.
fn log_stats(iface: &str) {
    let Ok(s) = stats::of_pins(iface) else { return };
    let dropped: u64 = s.peers.iter().map(|p| p.dropped).sum();
    let reasons: Vec<String> = Reason::ALL.iter().map(|r| format!("{} {}", r.name(), s.reason(*r))).collect();
    log::info!("gen {}: {} signaling dropped {dropped}", s.generation, reasons.join(" "));
}

async fn reload(state: &Arc<Mutex<State>>, why: &str) {
    let mut st = state.lock().await;
    // SAFETY: getuid has no preconditions.
    let caller = Caller { uid: unsafe { libc::getuid() }, pid: std::process::id() as i32 };
    let raw = json!({"v": control::PROTOCOL_VERSION, "cmd": "policy_reload", "source": why});
    match tokio::task::block_in_place(|| st.handle(control::Command::PolicyReload { file: None }, caller, &raw)) {
        Ok(r) => log::info!("reload ({why}): {r}"),
        Err(e) => log::error!("reload ({why}) rejected, running policy unchanged: {e}"),
    }
}

fn watch(path: &Path, tx: tokio::sync::mpsc::UnboundedSender<()>) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher as _};
    let file = path.file_name().map(|n| n.to_os_string());
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            // Kubernetes ConfigMap volumes swap a `..data` symlink rather than the file itself.
            let hit = ev.paths.iter().any(|p| {
                let n = p.file_name().map(|n| n.to_os_string());
                n == file || n.as_deref() == Some(std::ffi::OsStr::new("..data"))
            });
            if hit {
                let _ = tx.send(());
            }
        }
    })?;
    // The directory, not the file: editors and our own atomic writes replace the file by rename.
    w.watch(&dir, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", dir.display()))?;
    Ok(w)
}
