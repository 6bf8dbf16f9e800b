//! One file per subcommand; each is a thin front-end over the library. `control.rs` holds what
//! the subcommands talking to a running daemon share.

mod blocks;
mod check;
mod control;
mod detach;
mod events;
mod generate;
mod mode;
mod peer;
mod peers;
mod policy;
mod run;
mod stats;
mod status;
mod subscriber;
mod top;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use filter_common::Mode;

/// sigwall: an XDP signaling firewall for the interconnect edge (SIGTRAN, Diameter, GTP).
#[derive(Parser, Debug)]
#[command(name = "sigwall", version = VERSION.as_str(), about = "sigwall: an XDP signaling firewall for the interconnect edge (SIGTRAN, Diameter, GTP)", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `sigwall --version`: the crate version, the commit (from build.rs) and the map layout.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (commit {}, map layout {})",
        env!("CARGO_PKG_VERSION"),
        option_env!("SIGWALL_GIT_COMMIT").unwrap_or("unknown"),
        filter_common::MAP_LAYOUT_VERSION
    )
});

/// `enforce` or `monitor` (the names of [`Mode`]), checked by clap and listed in the help,
/// the man page and the completions.
fn mode_parser() -> impl clap::builder::TypedValueParser<Value = Mode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Mode::ALL.map(Mode::name))
        .try_map(|s: String| Mode::from_name(&s).ok_or("expected enforce or monitor"))
}

/// Which running sigwall to talk to.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Interface sigwall runs on (its socket is /run/sigwall/<iface>.sock).
    #[arg(long, value_parser = sigwall::loader::iface_name, required_unless_present = "socket")]
    iface: Option<String>,
    /// Control socket path, if not the default for the interface.
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl Target {
    fn socket(&self) -> PathBuf {
        match (&self.socket, &self.iface) {
            (Some(s), _) => s.clone(),
            (None, Some(i)) => sigwall::control::socket_path(i),
            (None, None) => unreachable!("clap requires one"),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a policy file and print a summary; changes nothing.
    Check(check::Args),
    /// Load the policy, attach to an interface (or adopt a pinned filter) and serve the control
    /// socket until SIGINT/SIGTERM.
    Run(run::Args),
    /// Per-peer and per-reason counters (read from the pinned maps; works without the daemon).
    Stats(stats::Args),
    /// Interface, XDP mode, program, policy file and hash, generation, uptime, mode.
    Status(control::TargetOnly),
    /// Peers with prefixes, classes, rate limits and live counters.
    Peers(control::Json),
    /// Add, remove or change a peer live (validated, persisted to the policy file, audited).
    Peer(peer::PeerArgs),
    /// Reload the policy, or show what a file would change.
    Policy(policy::PolicyArgs),
    /// Switch the global mode live.
    Mode(mode::ModeArgs),
    /// Deep-inspection events (JSON lines), optionally following new ones.
    Events(events::EventsArgs),
    /// Stop sigwall on an interface: detach the program, remove pins and socket.
    Detach(detach::Args),
    /// What the subscriber state knows about one IMSI (serving networks, times).
    Subscriber(subscriber::SubscriberArgs),
    /// In path: identity blocks in force (calling GT, Origin-Host/Realm, GTP-C node, IMSI), and
    /// lifting one.
    Blocks(blocks::BlocksArgs),
    /// Live view: per-peer packets/s and bytes/s, packets by reason, generation (q quits).
    Top(top::Args),
    /// Man pages and shell completions of this command (for packagers).
    #[command(hide = true)]
    Generate(generate::Args),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(a) => check::main(a),
        Command::Run(a) => run::main(a),
        Command::Stats(a) => stats::main(a),
        Command::Status(a) => status::status(a),
        Command::Peers(a) => peers::peers(a),
        Command::Peer(a) => peer::peer(a),
        Command::Policy(a) => policy::policy(a),
        Command::Mode(a) => mode::mode(a),
        Command::Events(a) => events::events(a),
        Command::Detach(a) => detach::main(a),
        Command::Subscriber(a) => subscriber::subscriber(a),
        Command::Blocks(a) => blocks::blocks(a),
        Command::Top(a) => top::main(a),
        Command::Generate(a) => generate::main(a),
    }
}
