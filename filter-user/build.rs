//! Builds the XDP program (filter-ebpf) for bpfel-unknown-none with nightly and bpf-linker, so
//! the controller embeds the exact object it was built with. `cargo xtask setup` installs both.
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../filter-ebpf");
    let root = root.canonicalize()?;
    let root = root.to_str().ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", root.display()))?;
    println!("cargo:rerun-if-changed=../filter-common/src");
    // `sigwall --version` names the commit it was built from.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SIGWALL_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    aya_build::build_ebpf([Package { name: "filter-ebpf", root_dir: root, ..Default::default() }], Toolchain::default())
}
