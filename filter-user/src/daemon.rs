//! `sigwall run`: attach (or adopt), then serve the control socket, reload on SIGHUP or on file
//! change, log stats, and on exit detach or stay attached (fail-static).

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use filter_common::{Mode, Reason, maps};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::Mutex,
};

use crate::{
    control::{
        self, MAX_REQUEST_BYTES, REQUEST_TIMEOUT, Reply,
        server::{Caller, State},
    },
    errors::OperatorError,
    loader::{self, AttachMode},
    policy::{self, Limits, edit, hex, sha256},
    stats,
};

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
}

/// Readiness line on stdout, for scripts and tests.
pub const READY: &str = "sigwall: filtering on";

pub fn run(cfg: Config) -> anyhow::Result<()> {
    let limits = cfg.limits;
    check_capabilities()?;
    // Everything that can be checked before touching the kernel is checked first: a bad policy
    // or interface name attaches nothing and changes nothing.
    let mut text = std::fs::read_to_string(&cfg.policy_path)
        .with_context(|| format!("{}: cannot read policy file", cfg.policy_path.display()))?;
    let name = cfg.policy_path.display().to_string();
    if let Some(m) = cfg.mode {
        let mut doc = edit::parse_doc(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        edit::set_mode(&mut doc, m.name()).map_err(anyhow::Error::msg)?;
        text = doc.to_string();
    }
    let pol = policy::parse(&name, &text, &limits).map_err(|e| OperatorError::PolicyRejected(e.to_string()))?;
    let c = std::ffi::CString::new(cfg.iface.clone()).context("interface name contains NUL")?;
    // SAFETY: valid C string.
    if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
        return Err(OperatorError::NoInterface(cfg.iface.clone()).into());
    }
    if !loader::bpffs_mounted() {
        return Err(OperatorError::NoBpffs.into());
    }
    // One daemon per interface, whatever socket paths they were given: an exclusive lock that
    // the kernel releases when the holder dies, even by kill -9.
    let _lock = lock_interface(&cfg.iface)?;

    let sha = sha256(&text);
    let mut attached = if loader::pins_present(&cfg.iface) {
        let mut a = loader::adopt(&cfg.iface, cfg.bpf_log_level)?;
        let generation = a.filter.generation()?;
        if a.filter.meta()?.policy_sha256 == sha {
            log::info!("adopted the filter pinned on {} at generation {generation}; policy unchanged", cfg.iface);
        } else {
            let c = a.filter.compile(&pol)?;
            a.filter.apply(&c, sha)?;
            log::info!(
                "adopted the filter pinned on {} at generation {generation}; policy file differs, applied as generation {}",
                cfg.iface,
                c.global.generation
            );
        }
        a
    } else {
        // A pin directory without a link is debris of an interrupted start: its maps are not
        // attached to anything, so start clean.
        let _ = loader::clear_pins(&cfg.iface);
        loader::attach_fresh(&cfg.iface, cfg.xdp_mode, cfg.bpf_log_level, &pol, sha)?
    };
    let _logger = if cfg.bpf_log_level > 0 {
        Some(aya_log::EbpfLogger::init(&mut attached.filter.ebpf).context("starting the eBPF logger")?)
    } else {
        None
    };

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let setup = (|| -> anyhow::Result<_> {
        let _rt = rt.enter();
        let listener = bind_socket(&cfg.socket, cfg.control_gid)?;
        let audit = open_audit(cfg.audit_log.as_deref())?;
        let events = crate::inspect::io::EventLog::open(cfg.events.as_deref())
            .with_context(|| format!("opening the event log {:?}", cfg.events))?;
        let pcap = match &cfg.pcap {
            Some(p) => {
                Some(crate::inspect::io::PcapWriter::create(p).with_context(|| format!("creating {}", p.display()))?)
            }
            None => None,
        };
        crate::inspect::io::set_enabled(&mut attached.filter, pol.inspect.enabled)?;
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
        Ok((listener, audit, events, pcap, ring, metrics))
    })();
    let (listener, audit, events, pcap, ring, metrics) = match setup {
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
    let mode = attached.mode;
    let adopted = attached.adopted;
    let inspection = crate::control::server::Inspection::new(&pol, &attached.filter, events, pcap);
    let state = State {
        attached,
        policy_path: cfg.policy_path.clone(),
        text,
        policy: pol,
        persist: cfg.persist,
        limits,
        started: Instant::now(),
        audit,
        detach_requested: false,
        inspection,
        last_change: (
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs(),
            true,
        ),
    };
    log::info!(
        "{} {} in {mode} mode, policy {} (sha256 {}), generation {}, control socket {}",
        if adopted { "adopted" } else { "attached to" },
        cfg.iface,
        cfg.policy_path.display(),
        hex(&sha)[..16].to_string(),
        state.generation(),
        cfg.socket.display()
    );
    println!("{READY} {} ({mode} mode)", cfg.iface);

    let state = Arc::new(Mutex::new(state));
    if let Some(l) = metrics {
        log::info!("metrics on http://{}/metrics", l.local_addr().map(|a| a.to_string()).unwrap_or_default());
        rt.spawn(crate::metrics::serve(l, state.clone()));
    }
    let result = rt.block_on(serve(&cfg, listener, ring, state.clone()));
    let detach = rt.block_on(async { state.lock().await.detach_requested }) || cfg.on_exit == OnExit::Detach;
    let _ = std::fs::remove_file(&cfg.socket);
    rt.shutdown_timeout(Duration::from_secs(1));
    finish(&cfg.iface, detach)?;
    // Closing our link and map descriptors last: with the pins gone (detach) nothing is left;
    // with the pins kept the program stays attached.
    drop(state);
    result
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

/// Take `/run/sigwall/<iface>.lock` (flock, exclusive, non-blocking) for the daemon's lifetime.
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
    // Nobody answered on it (checked above): a leftover of a killed daemon.
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

async fn serve(cfg: &Config, listener: UnixListener, mut ring: Ring, state: Arc<Mutex<State>>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let exit = Arc::new(tokio::sync::Notify::new());
    let (file_tx, mut file_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let _watcher = if cfg.watch_policy { Some(watch(&cfg.policy_path, file_tx)?) } else { None };
    let mut janitor = tokio::time::interval(Duration::from_secs(1));
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.stats_interval.max(1)));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = exit.notified() => break,
            _ = hup.recv() => reload(&state, "SIGHUP").await,
            Some(()) = file_rx.recv() => {
                // Editors write in several steps; let them finish, then take one reload.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while file_rx.try_recv().is_ok() {}
                let unchanged = {
                    let st = state.lock().await;
                    std::fs::read_to_string(&st.policy_path).map(|t| t == st.text).unwrap_or(false)
                };
                if !unchanged {
                    reload(&state, "file change").await;
                }
            }
            _ = tick.tick(), if cfg.stats_interval > 0 => {
                let st = state.lock().await;
                if let Ok(s) = stats::of_filter(&st.attached.filter) {
                    let dropped: u64 = s.peers.iter().map(|p| p.dropped).sum();
                    log::info!(
                        "gen {}: allowed {} not_allowlisted {} class_not_allowed {} rate_limited {} malformed {} fragment {} monitored {} signaling dropped {}",
                        s.generation, s.reason(Reason::Allowed), s.reason(Reason::NotAllowlisted), s.reason(Reason::ClassNotAllowed),
                        s.reason(Reason::RateLimited), s.reason(Reason::Malformed), s.reason(Reason::Fragment), s.reason(Reason::Monitored), dropped
                    );
                }
            }
            guard = ring.readable_mut() => {
                let Ok(mut guard) = guard else { continue };
                // Copy the records out first: the ring must not wait on the state lock.
                let mut batch = Vec::new();
                while let Some(item) = guard.get_inner_mut().next() {
                    batch.push(item.to_vec());
                    if batch.len() >= 4096 {
                        break;
                    }
                }
                if batch.len() < 4096 {
                    guard.clear_ready();
                }
                let mut st = state.lock().await;
                tokio::task::block_in_place(|| inspect_batch(&mut st, &batch));
            }
            _ = janitor.tick() => {
                let mut st = state.lock().await;
                if let Err(e) = crate::inspect::io::expire(&mut st.attached.filter) {
                    log::error!("expiring blocks: {e}");
                }
            }
            conn = listener.accept() => {
                if let Ok((stream, _)) = conn {
                    let (state, exit) = (state.clone(), exit.clone());
                    tokio::spawn(async move { connection(stream, state, exit).await });
                }
            }
        }
    }
    Ok(())
}

/// Decode and judge a batch of flagged packets, carry out the actions, log the events.
fn inspect_batch(st: &mut State, batch: &[Vec<u8>]) {
    use crate::inspect::{Flagged, io};
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    for rec in batch {
        let Some((h, data)) = io::split_record(rec) else { continue };
        let Some((name, peer, monitor)) = st.inspection.peers.get(&h.peer_id).cloned() else { continue };
        if let Some(p) = st.inspection.pcap.as_mut() {
            if let Err(e) = p.write(wall, h.len, data) {
                log::error!("writing the pcap of flagged packets: {e}");
            }
        }
        let f = Flagged {
            ts_ns: h.ts_ns,
            peer: name,
            peer_id: h.peer_id,
            class: io::class_of(h.class),
            reason: io::reason_name(h.reason),
            dropped: h.action != 0,
            data,
        };
        for ev in st.inspection.engine.inspect(&f, &peer, monitor) {
            if let Err(e) = io::apply(&mut st.attached.filter, &ev.action) {
                log::error!("pushing a verdict down to XDP: {e}");
            }
            log::warn!("event: {}", ev.json);
            st.inspection.events.push(ev.json);
        }
    }
}

async fn reload(state: &Arc<Mutex<State>>, why: &str) {
    let mut st = state.lock().await;
    // SAFETY: getuid has no preconditions.
    let caller = Caller { uid: unsafe { libc::getuid() }, pid: std::process::id() as i32 };
    let raw = json!({"v": control::PROTOCOL_VERSION, "cmd": "policy_reload", "source": why});
    match st.handle(control::Command::PolicyReload { file: None }, caller, &raw) {
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

async fn connection(stream: UnixStream, state: Arc<Mutex<State>>, exit: Arc<tokio::sync::Notify>) {
    let caller = stream.peer_cred().map(|c| Caller { uid: c.uid(), pid: c.pid().unwrap_or(0) }).unwrap_or_default();
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r.take(u64::MAX));
    loop {
        let mut line = Vec::new();
        reader.get_mut().set_limit(MAX_REQUEST_BYTES as u64 + 1);
        let read = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
        let reply = match read {
            Err(_) => Some(Reply::err("timed out waiting for a request line")),
            Ok(Err(_)) | Ok(Ok(0)) => None,
            Ok(Ok(_)) if line.len() > MAX_REQUEST_BYTES => {
                Some(Reply::err(format!("request larger than {MAX_REQUEST_BYTES} bytes")))
            }
            Ok(Ok(_)) if !line.ends_with(b"\n") => None, // hung up mid-request
            Ok(Ok(_)) => Some(answer(&line, caller, &state, &exit).await),
        };
        let Some(reply) = reply else { return };
        let close = !reply.ok
            && reply.error.as_deref().is_some_and(|e| e.starts_with("timed out") || e.starts_with("request larger"));
        let mut out = serde_json::to_vec(&reply).unwrap_or_default();
        out.push(b'\n');
        if w.write_all(&out).await.is_err() || close {
            return;
        }
    }
}

async fn answer(line: &[u8], caller: Caller, state: &Arc<Mutex<State>>, exit: &Arc<tokio::sync::Notify>) -> Reply {
    let req = match control::parse_request(line) {
        Ok(r) => r,
        Err(e) => return Reply::err(e),
    };
    let raw: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
    let mut st = state.lock().await;
    // Map and file writes are blocking; keep them off the async workers' critical path.
    let result = tokio::task::block_in_place(|| st.handle(req.cmd, caller, &raw));
    if st.detach_requested {
        exit.notify_one();
    }
    match result {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::err(e),
    }
}
