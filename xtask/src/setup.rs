//! `cargo xtask setup`: make a fresh machine able to build and test sigwall. Every step checks
//! first and does nothing when already done, so every other task can call it.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// Debian packages the tests, demo and benchmarks use, with the command that proves each is
/// present.
const PACKAGES: [(&str, &str); 11] = [
    ("iproute2", "ip"),
    ("util-linux", "nsenter"),
    ("tshark", "tshark"),
    ("tcpreplay", "tcpreplay"),
    ("tcpdump", "tcpdump"),
    ("bpftool", "bpftool"),
    ("xdp-tools", "xdp-filter"),
    ("nftables", "nft"),
    ("prometheus", "promtool"),
    ("tmux", "tmux"),
    // The two-edge subscriber-state test shares its state through a real Redis.
    ("redis-server", "redis-server"),
];

const BPF_LINKER_VERSION: &str = "0.10.0";

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

fn have(cmd: &str) -> bool {
    quiet(Command::new("sh").args(["-c", &format!("command -v {cmd}")]))
}

fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

pub fn run() -> anyhow::Result<()> {
    rust_src()?;
    bpf_linker()?;
    cargo_fuzz()?;
    lint_tools()?;
    packages()?;
    python()?;
    bpffs()?;
    Ok(())
}

fn rust_src() -> anyhow::Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .context("rustup not found: sigwall's eBPF crate needs a rustup-managed nightly toolchain")?;
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    eprintln!("setup: adding rust-src to the nightly toolchain");
    exec(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

fn bpf_linker() -> anyhow::Result<()> {
    if let Ok(out) = Command::new("bpf-linker").arg("--version").output()
        && String::from_utf8_lossy(&out.stdout).contains(BPF_LINKER_VERSION)
    {
        return Ok(());
    }
    eprintln!("setup: installing bpf-linker {BPF_LINKER_VERSION} (about 5 minutes, once)");
    exec(Command::new("cargo").args(["install", &format!("bpf-linker@{BPF_LINKER_VERSION}"), "--locked"]))
}

fn cargo_fuzz() -> anyhow::Result<()> {
    if quiet(Command::new("cargo").args(["fuzz", "--version"])) {
        return Ok(());
    }
    eprintln!("setup: installing cargo-fuzz (once)");
    exec(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}

/// The gates of `cargo xtask lint`, pinned so a new release cannot turn CI red by itself:
/// cargo-deny (licences, bans, sources, advisories) and cargo-machete (unused dependencies; it
/// reads the sources, so it needs no nightly, unlike cargo-udeps).
const LINT_TOOLS: [(&str, &str, &str); 2] = [("cargo-deny", "deny", "0.20.2"), ("cargo-machete", "machete", "0.9.2")];

fn lint_tools() -> anyhow::Result<()> {
    for (krate, sub, version) in LINT_TOOLS {
        if quiet(Command::new("cargo").args([sub, "--version"])) {
            continue;
        }
        eprintln!("setup: installing {krate} {version} (once)");
        exec(Command::new("cargo").args(["install", &format!("{krate}@{version}"), "--locked"]))?;
    }
    Ok(())
}

fn packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().filter(|(_, cmd)| !have(cmd)).map(|(pkg, _)| *pkg).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: installing Debian packages: {}", missing.join(" "));
    // tshark asks whether non-root users may capture; answer for it.
    let _ = Command::new("sh")
        .args(["-c", "echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections"])
        .status();
    exec(Command::new("apt-get").arg("update").arg("-q").env("DEBIAN_FRONTEND", "noninteractive"))?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Independent encoders for the attack tests: scapy's contrib layers (SCTP, GTP, GTPv2,
/// Diameter) and pycrate (TCAP/MAP ASN.1), and PyYAML for the manifest checks; from PyPI, pinned.
const PYTHON_PACKAGES: [&str; 3] = ["scapy==2.8.0", "pycrate==0.8.1", "PyYAML==6.0.3"];

fn python() -> anyhow::Result<()> {
    if quiet(Command::new("python3").args(["-c", "import scapy, pycrate_asn1dir, yaml"])) {
        return Ok(());
    }
    eprintln!("setup: installing Python packages: {}", PYTHON_PACKAGES.join(" "));
    exec(
        Command::new("python3").args(["-m", "pip", "install", "-q", "--root-user-action=ignore"]).args(PYTHON_PACKAGES),
    )
}

fn bpffs() -> anyhow::Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.split_whitespace().nth(2) == Some("bpf"))
    {
        return Ok(());
    }
    if !crate::is_root() {
        eprintln!("setup: bpffs is not mounted at /sys/fs/bpf; as root: mount -t bpf bpf /sys/fs/bpf");
        return Ok(());
    }
    eprintln!("setup: mounting bpffs at /sys/fs/bpf");
    exec(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}
