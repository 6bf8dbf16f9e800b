use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use filter_common::{Mode, Reason};
use sigwall::{
    errors::OperatorError,
    loader::{self, AttachMode, Filter},
    policy::{self, compile},
    stats,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interface to attach to (the edge link).
    #[arg(long)]
    iface: String,
    /// Policy file (TOML); see the README for its format.
    #[arg(long)]
    policy: PathBuf,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = AttachMode::Native)]
    xdp_mode: AttachMode,
    /// Override the policy's global mode.
    #[arg(long, value_parser = ["enforce", "monitor"])]
    mode: Option<String>,
    /// Log eBPF events (drops are logged at debug) at this level and above.
    #[arg(long, value_parser = ["off", "error", "warn", "info", "debug", "trace"], default_value = "off")]
    log_level: String,
    /// Seconds between stats lines on stderr (0: none).
    #[arg(long, default_value_t = 10)]
    stats_interval: u64,
}

fn level(s: &str) -> (u8, log::LevelFilter) {
    match s {
        "error" => (1, log::LevelFilter::Error),
        "warn" => (2, log::LevelFilter::Warn),
        "info" => (3, log::LevelFilter::Info),
        "debug" => (4, log::LevelFilter::Debug),
        "trace" => (5, log::LevelFilter::Trace),
        _ => (0, log::LevelFilter::Info),
    }
}

pub fn main(a: Args) -> anyhow::Result<ExitCode> {
    let (bpf_level, host_level) = level(&a.log_level);
    // aya warns when the kernel refuses the object's BTF (aya-log's level global has a BTF type
    // name the kernel rejects); the program loads without it, so that is noise to an operator.
    env_logger::Builder::new()
        .filter_level(host_level)
        .filter_module("aya::bpf", log::LevelFilter::Error)
        .format_timestamp_millis()
        .init();

    // Everything that can be checked before touching the kernel is checked first: a bad policy
    // or interface name attaches nothing.
    let mut pol = match policy::load(&a.policy, &policy::Limits::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(m) = &a.mode {
        pol.mode = if m == "monitor" {
            Mode::Monitor
        } else {
            Mode::Enforce
        };
    }
    let c = std::ffi::CString::new(a.iface.clone()).context("interface name contains NUL")?;
    // SAFETY: valid C string.
    if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
        return Err(OperatorError::NoInterface(a.iface.clone()).into());
    }
    if !loader::bpffs_mounted() {
        return Err(OperatorError::NoBpffs.into());
    }
    let pins = loader::pin_dir(&a.iface);
    if pins.exists() {
        anyhow::bail!(
            "{} exists: another sigwall is attached to {} (stop it), or one died and left its pins (remove the directory after checking `bpftool net show dev {}`)",
            pins.display(),
            a.iface,
            a.iface
        );
    }

    let mut filter = Filter::load(bpf_level)?;
    let _logger = if bpf_level > 0 {
        Some(aya_log::EbpfLogger::init(&mut filter.ebpf).context("starting the eBPF logger")?)
    } else {
        None
    };
    filter.apply(&compile::compile(&pol, 1))?;
    let (used, link) = filter.attach(&a.iface, a.xdp_mode)?;
    let pinned = match filter.pin(&a.iface, link) {
        Ok(p) => p,
        Err(e) => {
            let _ = loader::remove_pins(&a.iface);
            return Err(e.into());
        }
    };
    log::info!(
        "attached to {} in {} mode, policy {} (generation 1): {}",
        a.iface,
        used,
        a.policy.display(),
        pol.summary().lines().next().unwrap_or_default()
    );
    // Readiness marker for scripts and tests: printed once the program filters.
    println!("sigwall: filtering on {} ({} mode)", a.iface, used);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let res: anyhow::Result<()> = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let period = Duration::from_secs(a.stats_interval.max(1));
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = tick.tick(), if a.stats_interval > 0 => {
                    if let Ok(s) = stats::of_filter(&filter) {
                        let dropped: u64 = s.peers.iter().map(|p| p.dropped).sum();
                        log::info!(
                            "gen {}: allowed {} not_allowlisted {} class_not_allowed {} rate_limited {} malformed {} monitored {} signaling dropped {}",
                            s.generation,
                            s.reason(Reason::Allowed),
                            s.reason(Reason::NotAllowlisted),
                            s.reason(Reason::ClassNotAllowed),
                            s.reason(Reason::RateLimited),
                            s.reason(Reason::Malformed),
                            s.reason(Reason::Monitored),
                            dropped
                        );
                    }
                }
            }
        }
        Ok(())
    });
    // Detach: remove the pins, then drop the last reference to the link.
    let link = pinned.unpin().context("unpinning the XDP link")?;
    loader::remove_pins(&a.iface).context("removing pins")?;
    drop(link);
    log::info!("detached from {}", a.iface);
    res?;
    Ok(ExitCode::SUCCESS)
}
