//! `cargo xtask bench [--quick]`: every benchmark in one command, then
//! `target/bench/report.md` (tables, SVG plots, machine and commit) and a summary.
//!
//! Steps 1-5 are programs of the `filter-bench` crate (bench/src/bin), built in release mode:
//! 1. `xdp_cost`: cost per packet in BPF_PROG_TEST_RUN against a trivial XDP_PASS, the floor
//!    program and xdp-filter;
//! 2. `scale`: allowlists of 10 to 1,000,000 prefixes (cost per packet, map memory, load
//!    time);
//! 3. `veth`: a live-frames flood on a veth pair in fresh namespaces (sigwall, counting
//!    XDP_DROP, XDP_PASS + nftables) and an allowed peer's loss meanwhile;
//! 4. `control`: `sigwall peer add` latency and a 100,000-prefix swap;
//! 5. `dpi`: deep inspection, decode + rules against tshark on the test captures, and the
//!    inspection ring buffer's events per second; then (step 5b) `inpath`: in-path mode (issue
//!    9) on three namespaces: inspected messages per second through one worker against a bare
//!    AF_XDP forwarder, added latency at 10 % and 50 % of that rate against the uninspected
//!    path, uninspected forwarding against a bare XDP_REDIRECT and a Linux bridge with
//!    nftables; `SIGWALL_BENCH_COMPARE=<sigwall binary>` adds that binary's inspected rate,
//!    measured in the same run (before and after a change);
//! 6. the criterion micro-benchmarks (bench/benches, full run only);
//! 7. [`report`]: report.md and the summary.
//!
//! `--quick` keeps every step but the criterion benches and the 1,000,000-prefix allowlist, with
//! shorter flood windows, fewer `peer add` runs and two of the five captures: under two minutes
//! once built.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, bail};

mod report;

pub struct Options {
    pub quick: bool,
    pub repeat: u32,
    pub runs: u32,
}

/// Outputs of earlier runs, removed first so the report never mixes runs.
const OUTPUTS: [&str; 22] = [
    "inpath.md",
    "inpath.json",
    "dpi.md",
    "dpi.json",
    "fig-dpi.svg",
    "report.md",
    "xdp_cost.md",
    "xdp_cost.json",
    "scale.md",
    "scale.json",
    "veth-shared.md",
    "veth-shared.json",
    "veth-own-core.md",
    "veth-own-core.json",
    "control.txt",
    "fig-xdp-cost.svg",
    "fig-scale-cost.svg",
    "fig-scale-load.svg",
    "fig-scale-memory.svg",
    "fig-veth.svg",
    "criterion.txt",
    "state.md",
];

pub fn run(o: Options) -> anyhow::Result<()> {
    if o.runs < 5 {
        bail!("--runs must be at least 5: every reported figure is a median of at least 5 runs");
    }
    crate::setup::run()?;
    crate::need_root("the benchmarks load XDP programs, attach them and create network namespaces")?;
    let built = Instant::now();
    crate::build()?;
    crate::cargo(&["build", "--release", "-p", "filter-bench", "--bins"])?;
    eprintln!("bench: build took {:.0} s", built.elapsed().as_secs_f64());
    let start = Instant::now();
    let root = crate::workspace_root();
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    for name in OUTPUTS {
        let _ = std::fs::remove_file(out.join(name));
    }
    let out_s = out.display().to_string();
    let (repeat, runs) = (o.repeat.to_string(), o.runs.to_string());

    // The per-packet figures are cheap to repeat and the most exposed to other work on the
    // machine: the full run takes three times as many runs of them.
    let cost_runs = if o.quick { runs.clone() } else { (o.runs * 3).to_string() };
    step(
        &root,
        "1/7 XDP cost per packet",
        "xdp_cost",
        &["--repeat", &repeat, "--runs", &cost_runs, "--out", &out_s],
        None,
    )?;
    let sizes = if o.quick { "10,1000,100000" } else { "10,1000,100000,1000000" };
    step(
        &root,
        "2/7 scale: 10 to 1,000,000 prefixes",
        "scale",
        &["--sizes", sizes, "--repeat", &repeat, "--runs", &runs, "--out", &out_s],
        None,
    )?;
    let window = if o.quick { "600" } else { "3000" };
    step(
        &root,
        "3/7 end to end on veth",
        "veth",
        &["--receiver", "shared", "--window-ms", window, "--runs", &runs, "--out", &out_s],
        None,
    )?;
    // The control-path benchmark belongs to the live-control work; a failure there is reported,
    // not fatal, so the data-path figures still reach the report.
    let peer_adds = if o.quick { "100" } else { "1000" };
    let sigwall = crate::sigwall_bin();
    if let Err(e) = step(
        &root,
        "4/7 control path",
        "control",
        &["--runs", peer_adds, "--prefixes", "100000", "--sigwall", &sigwall],
        Some(&out.join("control.txt")),
    ) {
        eprintln!("xtask: control-path benchmark failed: {e:#}");
        std::fs::write(out.join("control.txt"), format!("not measured: the control-path benchmark failed: {e:#}\n"))?;
    }
    // Subscriber state (in-process throughput and memory, Redis against in-process): its own
    // section, target/bench/state.md; a failure is reported, not fatal, like the control path.
    let subscribers = if o.quick { "1000000" } else { "10000000" };
    if let Err(e) = step(
        &root,
        "4b/7 subscriber state",
        "state",
        &["--subscribers", subscribers, "--runs", &runs],
        Some(&out.join("state.md")),
    ) {
        eprintln!("xtask: subscriber-state benchmark failed: {e:#}");
        std::fs::write(out.join("state.md"), format!("not measured: the subscriber-state benchmark failed: {e:#}\n"))?;
    }
    let mut dpi_args = vec!["--runs", &runs, "--out", &out_s];
    if o.quick {
        dpi_args.extend([
            "--seconds",
            "0.2",
            "--tshark-frames",
            "8000",
            "--only",
            "ss7_map_pcapr.pcap,inbound_roaming_01_210505_130828-1.pcapng",
        ]);
    }
    step(&root, "5/7 deep inspection", "dpi", &dpi_args, None)?;
    // In path: a failure is reported, not fatal, like the control path.
    let window = if o.quick { "400" } else { "2000" };
    let mut args = vec!["--runs", &runs, "--window-ms", window, "--sigwall", &sigwall, "--out", &out_s];
    let compare = std::env::var("SIGWALL_BENCH_COMPARE").ok();
    if let Some(c) = &compare {
        args.extend(["--compare", c, "--compare-label", "SIGWALL_BENCH_COMPARE"]);
    }
    if let Err(e) = step(&root, "5b/7 in path", "inpath", &args, None) {
        eprintln!("xtask: in-path benchmark failed: {e:#}");
        std::fs::write(out.join("inpath.md"), format!("not measured: the in-path benchmark failed: {e:#}\n"))?;
    }
    let criterion = if o.quick {
        eprintln!("\n=== 6/7 criterion micro-benchmarks: skipped with --quick ===");
        None
    } else {
        eprintln!("\n=== 6/7 criterion micro-benchmarks ===");
        crate::cargo(&["bench", "-p", "filter-bench", "--bench", "policy", "--bench", "engine"])?;
        Some(root.join("target/criterion"))
    };
    eprintln!("\n=== 7/7 report ===");
    report::run(&report::Args {
        out: out.clone(),
        mode: if o.quick { "quick" } else { "full" }.into(),
        command: if o.quick { "cargo xtask bench --quick" } else { "cargo xtask bench" }.into(),
        criterion,
    });
    eprintln!(
        "bench: {} run took {:.0} s after the build",
        if o.quick { "quick" } else { "full" },
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Run one release program of filter-bench; with `tee`, also keep its standard output in that
/// file.
fn step(root: &Path, title: &str, program: &str, args: &[&str], tee: Option<&PathBuf>) -> anyhow::Result<()> {
    eprintln!("\n=== {title} ===");
    let bin = root.join("target/release").join(program);
    let mut cmd = Command::new(&bin);
    cmd.args(args).current_dir(root);
    if tee.is_some() {
        cmd.stdout(Stdio::piped());
    }
    let t = Instant::now();
    let child = cmd.spawn().with_context(|| format!("start {}", bin.display()))?;
    let output = child.wait_with_output().with_context(|| format!("run {program}"))?;
    eprintln!("({program}: {:.0} s)", t.elapsed().as_secs_f64());
    if let Some(path) = tee {
        let text = String::from_utf8_lossy(&output.stdout);
        print!("{text}");
        std::fs::write(path, text.as_bytes()).with_context(|| format!("write {}", path.display()))?;
    }
    if !output.status.success() {
        bail!("{program} failed ({})", output.status);
    }
    Ok(())
}
