//! One file per subcommand; each is a thin front-end over the library.

mod check;
mod run;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// sigwall: an XDP signaling firewall for the interconnect edge (SIGTRAN, Diameter, GTP).
#[derive(Parser, Debug)]
#[command(name = "sigwall", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a policy file and print a summary; changes nothing.
    Check(check::Args),
    /// Load the policy, attach to an interface and filter until SIGINT/SIGTERM.
    Run(run::Args),
    /// Per-peer and per-reason counters of the filter attached to an interface.
    Stats(stats::Args),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(a) => check::main(a),
        Command::Run(a) => run::main(a),
        Command::Stats(a) => stats::main(a),
    }
}
