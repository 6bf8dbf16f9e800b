//! `cargo xtask lint`: the gates every change passes before the tests run (and the first step of
//! `cargo xtask test`, so CI's `.ci/run` runs them through the README's test command).
//!
//! Each gate is one command, named when it fails:
//! - `cargo fmt --check` over the workspace (rustfmt.toml at the root);
//! - clippy with `-D warnings` on every host target, and on the eBPF crates for
//!   `bpfel-unknown-none` (nightly, `-Z build-std=core`), as aya's own xtask does;
//! - rustdoc without warnings on the libraries;
//! - `cargo machete`: no declared dependency left unused;
//! - `cargo deny check` for licences, bans (duplicate versions are reported, not fatal: the aya
//!   and ratatui trees pull a few), sources, and advisories when an advisory database is
//!   reachable (see [`deny`]);
//! - the MSRV: the workspace checks with the toolchain named by `rust-version`.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::workspace_root;

/// eBPF crates: not workspace default members, built for bpfel-unknown-none with nightly.
const EBPF_CRATES: [&str; 2] = ["filter-ebpf", "bench/ebpf"];
/// The same crates as packages, left out of the host-side cargo runs.
const EXCLUDE_EBPF: &[&str] = &["--exclude", "filter-ebpf", "--exclude", "filter-bench-ebpf"];

pub fn run() -> anyhow::Result<()> {
    gate("rustfmt", &mut cargo(&["fmt", "--all", "--check"]))?;
    gate(
        "clippy (host)",
        &mut cargo(&[&["clippy", "--workspace", "--all-targets"], EXCLUDE_EBPF, &["--", "-D", "warnings"]].concat()),
    )?;
    for krate in EBPF_CRATES {
        let dir = workspace_root().join(krate);
        if !dir.exists() {
            continue;
        }
        let mut c = Command::new("cargo");
        c.args([
            "+nightly",
            "clippy",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(dir);
        gate(&format!("clippy ({krate}, bpfel-unknown-none)"), &mut c)?;
    }
    let mut doc = cargo(&[&["doc", "--no-deps", "--workspace", "--lib"], EXCLUDE_EBPF].concat());
    doc.env("RUSTDOCFLAGS", "-D warnings");
    gate("rustdoc", &mut doc)?;
    // Called directly: run as `cargo machete` from inside another cargo process, it takes the
    // subcommand's name for the path to scan.
    let mut machete = Command::new("cargo-machete");
    machete.current_dir(workspace_root());
    gate("unused dependencies (cargo machete)", &mut machete)?;
    deny()?;
    msrv()
}

fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args).current_dir(workspace_root());
    c
}

fn gate(name: &str, cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("--- lint: {name}");
    let status = cmd.status().with_context(|| format!("running {cmd:?} (cargo xtask setup installs the tools)"))?;
    if !status.success() {
        bail!("lint gate '{name}' failed ({status}): {cmd:?}");
    }
    Ok(())
}

/// cargo-deny with `deny.toml`. Licences, bans and sources need only the crates already fetched.
/// The advisory check needs the RustSec database, a git repository this network may not reach:
/// it runs, without fetching, when cargo-deny's cache (`$CARGO_HOME/advisory-dbs`) holds a copy,
/// and otherwise says plainly that it was skipped.
fn deny() -> anyhow::Result<()> {
    gate("cargo deny (licenses, bans, sources)", &mut cargo(&["deny", "check", "licenses", "bans", "sources"]))?;
    let cache = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
        .map(|h| h.join("advisory-dbs"));
    match cache {
        Some(cache) if cache.is_dir() => gate(
            "cargo deny (advisories, cached database)",
            &mut cargo(&["deny", "check", "--disable-fetch", "advisories"]),
        ),
        _ => {
            eprintln!(
                "--- lint: cargo deny (advisories) SKIPPED: no RustSec advisory database in $CARGO_HOME/advisory-dbs \
                 and none reachable from here; `cargo deny fetch` where it is reachable enables this gate"
            );
            Ok(())
        }
    }
}

/// Check the workspace with the oldest toolchain it claims to support (`rust-version`). When the
/// default toolchain is that version, the clippy gate above already compiled every target with
/// it; otherwise the MSRV toolchain must be installed (`rustup toolchain install <version>`).
fn msrv() -> anyhow::Result<()> {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).context("reading Cargo.toml")?;
    let Some(version) = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = ").map(|v| v.trim_matches('"').to_string()))
    else {
        bail!("Cargo.toml has no workspace rust-version");
    };
    let rustc =
        Command::new("rustc").arg("--version").current_dir(workspace_root()).output().context("rustc --version")?;
    let default = String::from_utf8_lossy(&rustc.stdout).split_whitespace().nth(1).unwrap_or_default().to_string();
    if default == version || default.strip_suffix(".0") == Some(&version) || default.starts_with(&format!("{version}."))
    {
        eprintln!("--- lint: MSRV {version}: the default toolchain is rustc {default}, which the clippy gate used");
        return Ok(());
    }
    let installed = Command::new("rustup").args(["toolchain", "list"]).output().context("rustup toolchain list")?;
    if !String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.starts_with(&version)) {
        bail!(
            "the default toolchain is rustc {default} and the MSRV toolchain {version} is not installed: rustup toolchain install {version}"
        );
    }
    // The rustup proxy, not $CARGO: only the proxy understands `+toolchain`.
    let mut c = Command::new("cargo");
    let toolchain = format!("+{version}");
    c.args([&[toolchain.as_str(), "check", "--workspace", "--all-targets"], EXCLUDE_EBPF].concat())
        .current_dir(workspace_root());
    gate(&format!("MSRV {version}"), &mut c)
}
