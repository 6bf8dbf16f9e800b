//! `sigwall generate man|completions <shell>` (hidden): the man page and shell completions of this
//! very command line, for packagers (`cargo xtask dist` calls it on the release binary).

use std::{io::Write as _, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::CommandFactory as _;

/// sigwall runs as a system daemon, so its pages are in section 8 (system administration).
const SECTION: &str = "8";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// The man page (roff) of `sigwall`, on stdout; or, with --dir, `sigwall.8` and one page per
    /// subcommand (`sigwall-run.8`, ...) written to that directory.
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Shell completions for `sigwall`, on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What the root man page says under DESCRIPTION (`--help` keeps its one line).
const DESCRIPTION: &str = "sigwall is an eBPF/XDP signaling firewall for the interconnect edge of mobile networks: it \
classifies SIGTRAN, Diameter and GTP on the edge interface, looks the source up in the policy's peer allowlist, applies \
per-peer rate limits, and passes or drops at line rate, with optional deep inspection in the daemon.

`sigwall run` loads a policy file, attaches to an interface, pins its maps and link under \
/sys/fs/bpf/sigwall/<iface>/ and serves the control socket /run/sigwall/<iface>.sock; the filter keeps enforcing if \
the daemon dies. `sigwall stats` and `sigwall top` read the pinned counters without the daemon; the other \
subcommands talk to it over the socket. Each subcommand has its own page, sigwall-<subcommand>(8).";

fn command() -> clap::Command {
    let mut cmd = super::Cli::command()
        .about("XDP signaling firewall for the interconnect edge (SIGTRAN, Diameter, GTP)")
        .long_about(DESCRIPTION);
    cmd.build();
    cmd
}

/// Write to stdout; a reader that went away (`| head`) is not an error.
fn emit(bytes: &[u8]) -> anyhow::Result<()> {
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

pub fn main(a: Args) -> anyhow::Result<ExitCode> {
    match a.what {
        What::Man { dir: None } => {
            let mut out = Vec::new();
            page(command()).render(&mut out)?;
            emit(&out)?;
        }
        What::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for p in pages(command()) {
                let path = p.generate_to(&dir).with_context(|| format!("writing a page to {}", dir.display()))?;
                println!("{}", path.display());
            }
        }
        What::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command(), "sigwall", &mut out);
            emit(&out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).section(SECTION).source(format!("sigwall {}", env!("CARGO_PKG_VERSION")))
}

/// The root page and one per visible subcommand, recursively (`sigwall-peer-add.8`, ...). A
/// built command gives each subcommand the display name `sigwall-<sub>`, which names the file.
fn pages(cmd: clap::Command) -> Vec<clap_mangen::Man> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        out.extend(pages(sub.clone()));
    }
    out.insert(0, page(cmd));
    out
}
