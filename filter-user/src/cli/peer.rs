//! `sigwall peer add|remove|set`: change a peer live.

use std::process::ExitCode;

use sigwall::{control::Command, policy::edit::PeerChange};

use super::{
    Target,
    control::{call, done, report_change},
};

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

pub fn peer(a: PeerArgs) -> anyhow::Result<ExitCode> {
    let (target, cmd) = match a.op {
        PeerOp::Add(f) => (f.target.clone(), Command::PeerAdd(f.change())),
        PeerOp::Set(f) => (f.target.clone(), Command::PeerSet(f.change())),
        PeerOp::Remove { name, target } => (target, Command::PeerRemove { name }),
    };
    done(call(&target, cmd), report_change)
}
