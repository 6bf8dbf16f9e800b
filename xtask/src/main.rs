//! Developer tasks: `cargo xtask setup | build | test | demo | fuzz | bench | dist`.
//!
//! xtask depends on nothing of the project, so `cargo xtask setup` can run on a machine that
//! cannot build the eBPF crate yet; it installs what that needs.

mod bench;
mod dist;
mod lint;
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
    /// Set up, then run every test layer in order: host unit tests; BPF_PROG_TEST_RUN tables;
    /// veth namespaces; capture replay; live control; decoders against tshark; deep inspection
    /// and attacks from scapy and pycrate, in path on live links too; metrics, least privilege and packaging; CLI, man
    /// pages and `sigwall top`; a fuzz smoke run. Fails if a test namespace or pin is left
    /// behind. Needs root.
    Test,
    /// Set up, build, and run the demo on a veth topology it creates and removes. Needs root.
    Demo,
    /// The gates `cargo xtask test` runs first: rustfmt, clippy -D warnings (host and eBPF),
    /// rustdoc, unused dependencies, cargo deny, MSRV.
    Lint,
    /// Run every decoder fuzz target (cargo-fuzz, nightly) for a bounded time, then the
    /// differential fuzzer (sigwall's decoders against pycrate or tshark, per decoder family).
    Fuzz {
        /// Seconds per target (and per differential family).
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// Set up, build, and run every benchmark (XDP cost per packet against a trivial program,
    /// the floor and xdp-filter; allowlist scale; a veth flood against XDP_DROP and nftables;
    /// the control path; deep inspection against tshark; criterion), then write
    /// target/bench/report.md. Needs root.
    Bench {
        /// Reduced run (no 1,000,000-prefix allowlist, short flood windows, no criterion):
        /// under two minutes once built.
        #[arg(long)]
        quick: bool,
        /// Repetitions per BPF_PROG_TEST_RUN call (at least 1,000,000 for reported figures).
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        /// Runs per case (at least 5); the median is reported with min and max.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
    /// Set up, build release, and write target/dist/sigwall-<version>-<arch>-linux.tar.gz: the
    /// binary, man pages, shell completions, systemd unit, example policies, Dockerfile and
    /// Kubernetes manifests, laid out for `tar -xzf ... -C /usr --strip-components=1`.
    Dist,
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
            eprintln!("\n=== 0. gates: fmt, clippy, rustdoc, unused dependencies, cargo deny, MSRV ===");
            lint::run()?;
            test()
        }
        Cmd::Lint => {
            setup::run()?;
            lint::run()
        }
        Cmd::Fuzz { seconds } => {
            setup::run()?;
            fuzz(seconds)
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
        Cmd::Bench { quick, repeat, runs } => bench::run(bench::Options { quick, repeat, runs }),
        Cmd::Dist => dist::run(),
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn sigwall_bin() -> String {
    workspace_root().join("target/release/sigwall").display().to_string()
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
    cargo_with_env(args, &[])
}

/// `cargo` with extra environment variables, e.g. `SIGWALL_BIN` for the integration tests.
pub(crate) fn cargo_with_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(env.iter().copied())
        // Tests that skip when a tool is missing fail instead: setup installed every tool.
        .env("SIGWALL_REQUIRE_TOOLS", "1")
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn build() -> anyhow::Result<()> {
    cargo(&["build", "--release", "-p", "filter-user", "--bins", "--examples"])
}

/// Each layer is a separate cargo invocation so a failure names its layer. The root-only and
/// tool-dependent tests are modules of `filter-integration` (tests/integration, not a default
/// member), selected by module; the few that need neither stay in filter-user/tests.
fn test() -> anyhow::Result<()> {
    // The integration tests run the binary that `cargo test -p filter-user` used to build for
    // them (test profile = dev): build it the same way and name it in $SIGWALL_BIN.
    cargo(&["build", "-p", "filter-user", "--bin", "sigwall"])?;
    let bin = workspace_root().join("target/debug/sigwall").display().to_string();
    let t1: &[&str] = &["--test-threads=1"];
    let layer = |name: &'static str, module: &'static str, serial: bool| -> (&'static str, Vec<String>) {
        let mut a: Vec<String> = ["test", "-p", "filter-integration", "--lib", "--"].map(String::from).to_vec();
        a.push(format!("tests::{module}::"));
        if serial {
            a.extend(t1.iter().map(|s| s.to_string()));
        }
        (name, a)
    };
    let user = |name: &'static str, target: &'static str| -> (&'static str, Vec<String>) {
        (name, ["test", "-p", "filter-user", "--test", target].map(String::from).to_vec())
    };
    let layers: Vec<(&str, Vec<String>)> = vec![
        (
            "1. host unit tests (decision function, policy, edits, control protocol, decoders, rules, packet builder)",
            ["test", "-p", "filter-common", "-p", "filter-user", "-p", "filter-testkit", "-p", "filter-bench", "--lib"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "1. decoder unit tests and fuzz seeds (filter-dpi: no root, nightly or bpf-linker)",
            ["test", "-p", "filter-dpi"].map(String::from).to_vec(),
        ),
        layer("2. BPF_PROG_TEST_RUN on the compiled object", "prog_test_run", false),
        layer("3. veth namespaces, native XDP", "veth", true),
        layer("3. in-path mode: three namespaces, XDP forwarding", "inpath", true),
        layer("4. third-party capture replay vs tshark", "replay", true),
        layer("5. live control: socket, hitless flips, fail-static restarts", "control", true),
        layer("6. decoders vs tshark: SCTP and SIGTRAN", "dpi_sigtran", false),
        layer("6. decoders vs tshark: Diameter", "dpi_diameter", false),
        layer("6. decoders vs tshark: GTP", "dpi_gtp", false),
        layer("7. deep inspection end to end", "inspect", true),
        layer("7. attacks from independent encoders (scapy, pycrate) end to end", "attacks", true),
        layer("7. evasions (scapy, pycrate): first pass and inspection see what the receiver sees", "evasions", true),
        layer(
            "7. in path: the whole corpus on a live SCTP association, Diameter TCP and GTP paths",
            "inpath_corpus",
            true,
        ),
        layer("7. subscriber state: Category 3, SMS firewall, correlation, two edges on Redis", "subscriber", true),
        layer("8. metrics (promtool)", "metrics", true),
        layer("8. least privilege (setpriv)", "privileges", true),
        user("8. packaging (systemd-analyze, manifests)", "packaging"),
        user("9. CLI", "cli"),
        user("9. man pages and completions", "generate"),
        layer("9. sigwall top under tmux", "top", true),
        ("9. sigwall top rendering (TestBackend)", ["test", "-p", "filter-user", "--bins"].map(String::from).to_vec()),
    ];
    for (i, (name, args)) in layers.iter().enumerate() {
        eprintln!("\n=== {name} ===");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cargo_with_env(&args, &[("SIGWALL_BIN", &bin)]).with_context(|| format!("test layer {name}"))?;
        if i == 1 {
            eprintln!("\n=== 1. plain `cargo test` (default members) as an unprivileged user ===");
            unprivileged_default_tests()?;
        }
    }
    eprintln!("\n=== 10. fuzz smoke (every decoder target, bounded) ===");
    fuzz(20)?;
    leftovers()
}

/// Targets in filter-dpi/fuzz, one per decoder family.
const FUZZ_TARGETS: [&str; 6] = ["sctp", "sigtran", "tcap_map", "diameter", "gtp", "sms"];

/// Run every fuzz target for `seconds` (libFuzzer through cargo-fuzz, nightly, ASan). Each run
/// starts from its working corpus (`corpus/<target>`, ignored by git) plus the committed seeds
/// (`seeds/<target>`, real messages from testdata/captures; `filter-dpi/fuzz/seeds.py`).
fn fuzz(seconds: u32) -> anyhow::Result<()> {
    let dir = workspace_root().join("filter-dpi");
    for t in FUZZ_TARGETS {
        let corpus = dir.join("fuzz/corpus").join(t);
        std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", t])
            .arg(&corpus)
            .arg(dir.join("fuzz/seeds").join(t))
            .args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=2048"])
            .current_dir(&dir)
            .status()
            .context("running cargo fuzz (cargo xtask setup installs it)")?;
        if !status.success() {
            bail!("fuzz target {t} failed ({status}): see filter-dpi/fuzz/artifacts/{t}/");
        }
    }
    differential(seconds)
}

/// The differential fuzzer (`filter-dpi/fuzz/differential.py`): per decoder family (TCAP/MAP,
/// SCCP over M3UA, M2PA, M2UA and SUA, Diameter, GTPv2-C, GTPv1-C, SMS TPDUs; every family the
/// script has, by default), generated and mutated messages decoded by sigwall (`dpi-fields`)
/// and by pycrate or tshark, security-relevant fields compared. Prints executions, rate and each class
/// of outcome per family; fails on any disagreement (samples in
/// filter-dpi/fuzz/differential-out/), the stored past ones replayed first
/// (filter-dpi/fuzz/differential-regressions/).
fn differential(seconds: u32) -> anyhow::Result<()> {
    eprintln!("\n=== differential fuzzing (sigwall vs pycrate and tshark), {seconds} s per family ===");
    cargo(&["build", "--release", "-p", "filter-dpi", "--bin", "dpi-fields"])?;
    let script = workspace_root().join("filter-dpi/fuzz/differential.py");
    let status = Command::new("python3")
        .arg(&script)
        .args(["--seconds", &seconds.to_string()])
        .status()
        .context("running filter-dpi/fuzz/differential.py (needs python3, pycrate and tshark)")?;
    if !status.success() {
        bail!("differential fuzzing found disagreements ({status}): see filter-dpi/fuzz/differential-out/");
    }
    Ok(())
}

/// Plain `cargo test` must pass for a developer without root: build the default members' test
/// binaries (as root, into the usual target directory), then run each as uid/gid 65534 with no
/// supplementary groups and no capabilities, from its package directory as cargo would.
fn unprivileged_default_tests() -> anyhow::Result<()> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--no-run", "--message-format=json"])
        .current_dir(workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the default members' tests failed ({})", out.status);
    }
    let mut ran = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(exe), Some(manifest)) = (m["executable"].as_str(), m["manifest_path"].as_str()) else { continue };
        if m["reason"] != "compiler-artifact" || m["profile"]["test"] != true {
            continue;
        }
        let dir = std::path::Path::new(manifest).parent().context("manifest path")?;
        let status = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
            .args(["env", "HOME=/tmp", exe])
            .current_dir(dir)
            .status()
            .context("setpriv (util-linux)")?;
        if !status.success() {
            bail!("{exe} failed as an unprivileged user ({status}): plain `cargo test` must not need root");
        }
        ran += 1;
    }
    if ran == 0 {
        bail!("no test binaries found for the default members");
    }
    eprintln!("{ran} test binaries passed as uid 65534");
    Ok(())
}

/// Tests must remove what they create: fail if any of our namespaces or pins survived. Test
/// namespaces are `swt<tag>-ipx`/`swt<tag>-edge`, and `swt<tag>-ic`/`-sw`/`-core` for in-path
/// mode (testkit/src/netns.rs); the operators' lab of
/// scripts/veth-lab.sh (`sw-lab-*`) does not match.
fn leftovers() -> anyhow::Result<()> {
    let out = Command::new("ip").args(["netns", "list"]).output().context("ip netns list")?;
    let left: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("swt") && ["-ipx", "-edge", "-ic", "-sw", "-core"].iter().any(|s| n.ends_with(s)))
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
            .filter(|n| n.starts_with("swe") || n.starts_with("swa"))
            .collect();
        if !names.is_empty() {
            bail!("tests left pins behind in {}: {}", pins.display(), names.join(" "));
        }
    }
    eprintln!("\nall test layers passed; no namespaces or pins left behind");
    Ok(())
}
