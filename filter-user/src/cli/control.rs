//! Subcommands that talk to a running daemon over its control socket.

use std::{process::ExitCode, time::Duration};

use serde_json::Value;
use sigwall::{
    control::{self, Command},
    policy::edit::PeerChange,
};

use super::Target;

/// A 100,000-prefix reload can take a while; status is quick.
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(clap::Args, Debug)]
pub struct TargetOnly {
    #[command(flatten)]
    target: Target,
    /// Print the reply as JSON.
    #[arg(long)]
    json: bool,
}

pub type Json = TargetOnly;

#[derive(clap::Args, Debug)]
pub struct PeerArgs {
    #[command(subcommand)]
    op: PeerOp,
}

#[derive(clap::Subcommand, Debug)]
enum PeerOp {
    /// Add a peer.
    Add(PeerFields),
    /// Remove a peer.
    Remove {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Change a peer: given fields replace the old ones.
    Set(PeerFields),
}

#[derive(clap::Args, Debug)]
struct PeerFields {
    name: String,
    #[command(flatten)]
    target: Target,
    /// Source prefix (repeatable).
    #[arg(long = "prefix")]
    prefixes: Vec<String>,
    /// Class the peer may send: sigtran, diameter, gtp-c, gtp-u, sctp (repeatable).
    #[arg(long = "allow")]
    allow: Vec<String>,
    /// Packets per second; 0 removes the limit.
    #[arg(long)]
    rate_limit_pps: Option<u64>,
    /// Bucket depth in packets.
    #[arg(long)]
    rate_burst: Option<u64>,
    /// enforce, monitor, or inherit (use the global mode).
    #[arg(long, value_parser = ["enforce", "monitor", "inherit"])]
    mode: Option<String>,
}

impl PeerFields {
    fn change(&self) -> PeerChange {
        PeerChange {
            name: self.name.clone(),
            prefixes: (!self.prefixes.is_empty()).then(|| self.prefixes.clone()),
            allow: (!self.allow.is_empty()).then(|| self.allow.clone()),
            rate_limit_pps: self.rate_limit_pps,
            rate_burst: self.rate_burst,
            mode: self.mode.clone(),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    op: PolicyOp,
}

#[derive(clap::Subcommand, Debug)]
enum PolicyOp {
    /// Reload the policy file (or load FILE, which becomes the policy file).
    Reload {
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// What loading FILE would change, without applying it.
    Diff {
        file: std::path::PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(clap::Args, Debug)]
pub struct ModeArgs {
    #[arg(value_parser = super::mode_parser())]
    mode: filter_common::Mode,
    #[command(flatten)]
    target: Target,
}

fn call(target: &Target, cmd: Command) -> Result<Value, ExitCode> {
    control::call(&target.socket(), cmd, TIMEOUT).map_err(|e| {
        eprintln!("sigwall: {e}");
        ExitCode::from(1)
    })
}

fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

/// Print the outcome of a change: its generation and each change line.
fn report_change(v: &Value) {
    if v["changed"] == Value::Bool(false) {
        println!("no change (generation {})", v["generation"]);
        return;
    }
    println!("applied as generation {}", v["generation"]);
    for c in v["changes"].as_array().into_iter().flatten() {
        println!("  {}", c.as_str().unwrap_or_default());
    }
}

fn done(r: Result<Value, ExitCode>, print: impl FnOnce(&Value)) -> anyhow::Result<ExitCode> {
    Ok(match r {
        Ok(v) => {
            print(&v);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    })
}

pub fn status(a: TargetOnly) -> anyhow::Result<ExitCode> {
    done(call(&a.target, Command::Status), |v| {
        if a.json {
            println!("{v}");
            return;
        }
        for k in [
            "iface",
            "xdp_mode",
            "program_id",
            "adopted",
            "policy_file",
            "policy_sha256",
            "generation",
            "uptime_s",
            "mode",
            "persist",
        ] {
            println!("{k:<14} {}", v[k]);
        }
    })
}

pub fn peers(a: TargetOnly) -> anyhow::Result<ExitCode> {
    done(call(&a.target, Command::Peers), |v| {
        if a.json {
            println!("{v}");
            return;
        }
        println!("generation {}", v["generation"]);
        println!(
            "{:<20} {:<40} {:<32} {:>10} {:>12} {:>12}",
            "peer", "prefixes", "allow", "rate pps", "passed", "dropped"
        );
        for p in v["peers"].as_array().into_iter().flatten() {
            let list = |k: &str| {
                p[k].as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            };
            println!(
                "{:<20} {:<40} {:<32} {:>10} {:>12} {:>12}",
                p["name"].as_str().unwrap_or_default(),
                list("prefixes"),
                list("allow"),
                p["rate_limit_pps"].as_u64().map(|r| r.to_string()).unwrap_or("-".into()),
                p["passed"],
                p["dropped"]
            );
        }
    })
}

pub fn peer(a: PeerArgs) -> anyhow::Result<ExitCode> {
    let (target, cmd) = match a.op {
        PeerOp::Add(f) => (f.target.clone(), Command::PeerAdd(f.change())),
        PeerOp::Set(f) => (f.target.clone(), Command::PeerSet(f.change())),
        PeerOp::Remove { name, target } => (target, Command::PeerRemove { name }),
    };
    done(call(&target, cmd), report_change)
}

pub fn policy(a: PolicyArgs) -> anyhow::Result<ExitCode> {
    match a.op {
        PolicyOp::Reload { file, target } => {
            done(call(&target, Command::PolicyReload { file: file.as_deref().map(absolute) }), report_change)
        }
        PolicyOp::Diff { file, target } => done(call(&target, Command::PolicyDiff { file: absolute(&file) }), |v| {
            let changes = v["changes"].as_array().cloned().unwrap_or_default();
            if changes.is_empty() {
                println!("no changes");
            }
            for c in changes {
                println!("{}", c.as_str().unwrap_or_default());
            }
        }),
    }
}

pub fn mode(a: ModeArgs) -> anyhow::Result<ExitCode> {
    done(call(&a.target, Command::Mode { mode: a.mode }), report_change)
}

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    target: Target,
    /// Keep waiting for new events (until interrupted or --for expires).
    #[arg(long)]
    follow: bool,
    /// With --follow: stop after this many seconds.
    #[arg(long = "for")]
    for_s: Option<u64>,
    /// Start from this sequence number (events are numbered from 1).
    #[arg(long, default_value_t = 1)]
    since: u64,
}

pub fn events(a: EventsArgs) -> anyhow::Result<ExitCode> {
    let deadline = a.for_s.map(|s| std::time::Instant::now() + Duration::from_secs(s));
    let mut since = a.since;
    loop {
        let v = match call(&a.target, Command::Events { since, limit: 1000 }) {
            Ok(v) => v,
            Err(code) => return Ok(code),
        };
        for e in v["events"].as_array().into_iter().flatten() {
            println!("{e}");
        }
        since = v["next"].as_u64().unwrap_or(since);
        if !a.follow || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(ExitCode::SUCCESS);
        }
        if v["events"].as_array().is_none_or(|e| e.is_empty()) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
