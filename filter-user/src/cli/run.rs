use std::{path::PathBuf, process::ExitCode};

use filter_common::Mode;
use sigwall::{
    daemon::{self, Config, OnExit},
    errors::OperatorError,
    loader::AttachMode,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interface to attach to (the edge link; in in-path mode the interconnect side).
    #[arg(long, value_parser = sigwall::loader::iface_name)]
    iface: String,
    /// In-path mode (bump in the wire): forward between --iface and this interface (the core
    /// side, towards the STP/DEA/PGW). What the first pass passes on --iface leaves here; what
    /// arrives here leaves by --iface. Both carry no addresses; see docs/operations.md.
    #[arg(long, value_parser = sigwall::loader::iface_name, value_name = "IFACE", conflicts_with = "tap")]
    forward_to: Option<String>,
    /// Tap mode: --iface is a mirror (SPAN) port. Nothing is forwarded or blocked: the global
    /// mode and every peer's are monitor whatever the policy says; the first pass counts what
    /// it would drop and deep inspection reports what it would block.
    #[arg(long)]
    tap: bool,
    /// In path: the CPU time slice each AF_XDP worker asks for, in microseconds (100-100000;
    /// 0: the kernel's default). A short slice lets a worker woken by a frame preempt other work
    /// on a shared core at once (Linux 6.12 or later), without a bigger share of the CPU.
    #[arg(long, default_value_t = 100, value_name = "US",
          value_parser = parse_slice_us)]
    worker_slice_us: u64,
    /// In path: run the AF_XDP workers real-time (SCHED_FIFO) at this priority (1-99), for cores
    /// given to sigwall: a woken worker then runs at once whatever else the core runs, and a
    /// flood of inspected traffic can keep its core (up to the kernel's real-time throttle).
    /// Needs CAP_SYS_NICE; refused at start if the kernel says no.
    #[arg(long, value_name = "PRIORITY", requires = "forward_to",
          value_parser = clap::value_parser!(u8).range(1..=99))]
    worker_priority: Option<u8>,
    /// In path: after each batch, a worker keeps looking for frames for this long (microseconds,
    /// 0-10000; 0: off) before it sleeps in poll(2). Where a sleeping core wakes slowly (a VM's
    /// idle vCPU halts, and its wake-up can take the host a scheduler tick: milliseconds), this
    /// keeps the worker awake through traffic whose frames come closer together than the spin,
    /// at the cost of that core's time: it is busy whenever such traffic flows.
    #[arg(long, value_name = "US", default_value_t = 0, requires = "forward_to",
          value_parser = clap::value_parser!(u64).range(0..=sigwall::inpath::MAX_BUSY_POLL_US))]
    worker_busy_poll_us: u64,
    /// Policy file (TOML); see the README for its format.
    #[arg(long)]
    policy: PathBuf,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = AttachMode::Native)]
    xdp_mode: AttachMode,
    /// Override the policy's global mode.
    #[arg(long, value_parser = super::mode_parser())]
    mode: Option<Mode>,
    /// Log eBPF events (drops are logged at debug) at this level and above.
    #[arg(long, value_enum, default_value_t = LogLevel::Off)]
    log_level: LogLevel,
    /// Log lines as human text, or one JSON object per line for collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds between stats lines on stderr (0: none).
    #[arg(long, default_value_t = 10)]
    stats_interval: u64,
    /// Serve Prometheus metrics on this address (127.0.0.1:9469 if given without a value).
    #[arg(long, num_args = 0..=1, default_missing_value = sigwall::metrics::DEFAULT_ADDR)]
    metrics: Option<std::net::SocketAddr>,
    /// Directory for the default control socket (the per-interface lock is the filter's pin
    /// directory, /sys/fs/bpf/sigwall/<iface>).
    #[arg(long, default_value = "/run/sigwall")]
    run_dir: PathBuf,
    /// Control socket path [default: <run-dir>/<iface>.sock].
    #[arg(long)]
    control_socket: Option<PathBuf>,
    /// Audit log of every applied or rejected change (JSON lines)
    /// [default: /var/log/sigwall/<iface>.audit.jsonl].
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Do not write live changes back to the policy file.
    #[arg(long)]
    no_persist: bool,
    /// Reload when the policy file changes (inotify).
    #[arg(long)]
    watch_policy: bool,
    /// Refuse policies with more prefixes than this per address family (at most the map
    /// capacity, 1048576).
    #[arg(long, default_value_t = filter_common::DEFAULT_PREFIX_CAPACITY,
          value_parser = clap::value_parser!(u32).range(1..=filter_common::DEFAULT_PREFIX_CAPACITY as i64))]
    max_prefixes: u32,
    /// Let members of this group use the control socket (mode 0660); default root only (0600).
    #[arg(long)]
    control_group: Option<String>,
    /// Deep-inspection events as JSON lines, to this file or "-" for stdout
    /// [default: /var/log/sigwall/<iface>.events.jsonl].
    #[arg(long)]
    events: Option<PathBuf>,
    /// Also write every flagged packet to this pcap file.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// On SIGINT/SIGTERM: detach, or keep the filter attached with the last policy.
    #[arg(long, value_enum, default_value_t = OnExit::Detach)]
    on_exit: OnExit,
    /// Subscriber state for the stateful rules: "memory" (in-process), a Redis URL
    /// (redis://host:6379/0) or a Redis Cluster (redis+cluster://host:port,host:port) shared by
    /// every edge of the fleet; on Redis failure the daemon
    /// carries on with its local copy, counts it and raises an event.
    #[arg(long, default_value = "memory", value_parser = sigwall::subscriber::Backend::parse)]
    state: sigwall::subscriber::Backend,
    /// Snapshot of the in-process subscriber state, read at start and written every 30 s and at
    /// exit [default: <run-dir>/<iface>.subscribers.jsonl]; "none" keeps no snapshot.
    #[arg(long)]
    state_snapshot: Option<PathBuf>,
}

fn parse_slice_us(s: &str) -> Result<u64, String> {
    let n: u64 = s.parse().map_err(|_| format!("{s:?} is not a number of microseconds"))?;
    let (lo, hi) = (sigwall::inpath::sched::MIN_SLICE_US, sigwall::inpath::sched::MAX_SLICE_US);
    if n == 0 || (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is outside {lo}-{hi} (what the kernel accepts for a fair task), or 0 for its default"))
    }
}

/// A group's id by name (or a numeric id).
fn gid_of(group: &str) -> anyhow::Result<u32> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    let c = std::ffi::CString::new(group)?;
    // SAFETY: getgrnam returns a pointer to static storage or null; read once, immediately.
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    if g.is_null() {
        anyhow::bail!("group {group:?} does not exist (create it with groupadd, or pass a numeric gid)");
    }
    // SAFETY: non-null pointer from getgrnam.
    Ok(unsafe { (*g).gr_gid })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogLevel {
    /// The eBPF program logs nothing; the daemon logs at info.
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// (aya-log level for the eBPF program, 0 off and 1..=5 error..trace; the daemon's level).
    fn levels(self) -> (u8, log::LevelFilter) {
        match self {
            LogLevel::Off => (0, log::LevelFilter::Info),
            LogLevel::Error => (1, log::LevelFilter::Error),
            LogLevel::Warn => (2, log::LevelFilter::Warn),
            LogLevel::Info => (3, log::LevelFilter::Info),
            LogLevel::Debug => (4, log::LevelFilter::Debug),
            LogLevel::Trace => (5, log::LevelFilter::Trace),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

pub fn main(a: Args) -> anyhow::Result<ExitCode> {
    let (bpf_level, host_level) = a.log_level.levels();
    // aya warns when the kernel refuses the object's BTF (aya-log's level global has a BTF type
    // name the kernel rejects); the program loads without it, so that is noise to an operator.
    let mut logger = env_logger::Builder::new();
    logger.filter_level(host_level).filter_module("aya::bpf", log::LevelFilter::Error).format_timestamp_millis();
    if a.log_format == LogFormat::Json {
        // One JSON object per line for log collectors.
        logger.format(|buf, r| {
            use std::io::Write as _;
            let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            writeln!(
                buf,
                "{}",
                serde_json::json!({
                    "ts": format!("{}.{:03}", ts.as_secs(), ts.subsec_millis()),
                    "level": r.level().as_str(),
                    "target": r.target(),
                    "msg": r.args().to_string(),
                })
            )
        });
    }
    logger.init();
    if a.tap && a.mode == Some(Mode::Enforce) {
        eprintln!(
            "sigwall run: --tap with --mode enforce: a mirror port can stop nothing; tap mode runs in monitor mode"
        );
        return Ok(ExitCode::from(2));
    }
    let state_snapshot = match a.state_snapshot {
        Some(p) if p.as_os_str() == "none" => None,
        Some(p) => Some(p),
        None => Some(a.run_dir.join(format!("{}.subscribers.jsonl", a.iface))),
    };
    let cfg = Config {
        socket: a.control_socket.unwrap_or_else(|| a.run_dir.join(format!("{}.sock", a.iface))),
        run_dir: a.run_dir.clone(),
        events: Some(a.events.unwrap_or_else(|| PathBuf::from(format!("/var/log/sigwall/{}.events.jsonl", a.iface)))),
        audit_log: Some(
            a.audit_log.unwrap_or_else(|| PathBuf::from(format!("/var/log/sigwall/{}.audit.jsonl", a.iface))),
        ),
        iface: a.iface,
        forward_to: a.forward_to,
        tap: a.tap,
        worker_slice_us: a.worker_slice_us,
        worker_priority: a.worker_priority,
        worker_busy_poll_us: a.worker_busy_poll_us,
        policy_path: a.policy,
        xdp_mode: a.xdp_mode,
        mode: a.mode,
        bpf_log_level: bpf_level,
        stats_interval: a.stats_interval,
        persist: !a.no_persist,
        watch_policy: a.watch_policy,
        on_exit: a.on_exit,
        control_gid: match &a.control_group {
            None => None,
            Some(g) => Some(gid_of(g)?),
        },
        pcap: a.pcap,
        metrics: a.metrics,
        state: a.state,
        state_snapshot,
        limits: sigwall::policy::Limits { prefixes_v4: a.max_prefixes as usize, prefixes_v6: a.max_prefixes as usize },
    };
    match daemon::run(cfg) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A rejected policy already names file and line: print it as is.
        Err(e) if matches!(e.downcast_ref(), Some(OperatorError::PolicyRejected(_))) => {
            eprintln!("{e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e),
    }
}
