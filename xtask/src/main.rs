//! Developer tasks: `cargo xtask setup | build | test | demo | bench`.
//!
//! xtask depends on nothing of the project, so `cargo xtask setup` can run on a machine that
//! cannot build the eBPF crate yet; it installs what that needs.

mod setup;

use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "sigwall developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need (idempotent): rust-src for nightly, bpf-linker
    /// 0.10.0, Debian packages; mount bpffs.
    Setup,
    /// Build the XDP object and the `sigwall` binary (release).
    Build,
    /// Set up, then run every test layer: host unit tests, BPF_PROG_TEST_RUN tables, veth
    /// namespaces, capture replay. Needs root.
    Test,
    /// Set up, build, and run the demo on a veth topology it creates and removes. Needs root.
    Demo,
    /// Per-packet cost of the XDP program (BPF_PROG_TEST_RUN) against a trivial XDP_PASS
    /// program measured in the same run. Needs root.
    Bench {
        /// Repetitions per BPF_PROG_TEST_RUN call (at least 1,000,000 for reported figures).
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        /// Runs per case; the median is reported with min and max.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Setup => setup::run(),
        Cmd::Build => {
            setup::run()?;
            build()
        }
        Cmd::Test => {
            setup::run()?;
            need_root("the tests load XDP programs and create network namespaces")?;
            test()
        }
        Cmd::Demo => {
            setup::run()?;
            need_root("the demo creates network namespaces and attaches XDP")?;
            build()?;
            cargo(&[
                "run",
                "--release",
                "-q",
                "-p",
                "filter-user",
                "--example",
                "demo",
                "--",
                "--sigwall",
                &sigwall_bin(),
            ])
        }
        Cmd::Bench { repeat, runs } => {
            setup::run()?;
            need_root("BPF_PROG_TEST_RUN needs CAP_BPF")?;
            cargo(&[
                "run",
                "--release",
                "-q",
                "-p",
                "filter-user",
                "--example",
                "xdp_cost",
                "--",
                "--repeat",
                &repeat.to_string(),
                "--runs",
                &runs.to_string(),
            ])
        }
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn sigwall_bin() -> String {
    workspace_root()
        .join("target/release/sigwall")
        .display()
        .to_string()
}

fn need_root(why: &str) -> anyhow::Result<()> {
    if !is_root() {
        bail!("run as root: {why}");
    }
    Ok(())
}

unsafe extern "C" {
    fn geteuid() -> u32;
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

pub(crate) fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn build() -> anyhow::Result<()> {
    cargo(&[
        "build",
        "--release",
        "-p",
        "filter-user",
        "--bins",
        "--examples",
    ])
}

/// Each layer is a separate cargo invocation so a failure names its layer.
fn test() -> anyhow::Result<()> {
    let layers: [(&str, &[&str]); 5] = [
        (
            "1. host unit tests (decision function, policy, packet builder)",
            &["test", "-p", "filter-common", "-p", "filter-user", "--lib"],
        ),
        (
            "2. BPF_PROG_TEST_RUN on the compiled object",
            &["test", "-p", "filter-user", "--test", "prog_test_run"],
        ),
        (
            "3. veth namespaces, native XDP",
            &[
                "test",
                "-p",
                "filter-user",
                "--test",
                "veth",
                "--",
                "--test-threads=1",
            ],
        ),
        (
            "4. third-party capture replay vs tshark",
            &[
                "test",
                "-p",
                "filter-user",
                "--test",
                "replay",
                "--",
                "--test-threads=1",
            ],
        ),
        ("5. CLI", &["test", "-p", "filter-user", "--test", "cli"]),
    ];
    for (name, args) in layers {
        eprintln!("\n=== {name} ===");
        cargo(args).with_context(|| format!("test layer {name}"))?;
    }
    leftovers()
}

/// Tests must remove what they create: fail if any of our namespaces or pins survived.
fn leftovers() -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("ip netns list")?;
    let left: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("sw") && (n.ends_with("-ipx") || n.ends_with("-edge")))
        .map(str::to_string)
        .collect();
    if !left.is_empty() {
        bail!("tests left network namespaces behind: {}", left.join(" "));
    }
    let pins = std::path::Path::new("/sys/fs/bpf/sigwall");
    if let Ok(rd) = std::fs::read_dir(pins) {
        let names: Vec<String> = rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("swe"))
            .collect();
        if !names.is_empty() {
            bail!(
                "tests left pins behind in {}: {}",
                pins.display(),
                names.join(" ")
            );
        }
    }
    eprintln!("\nall test layers passed; no namespaces or pins left behind");
    Ok(())
}
