//! Builds the bench-only XDP programs (bench/ebpf: the baselines sigwall is measured against)
//! for bpfel-unknown-none with nightly and bpf-linker, as filter-user/build.rs builds the
//! product's program. `cargo xtask setup` installs both.
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ebpf");
    let root = root.canonicalize()?;
    let root = root.to_str().ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", root.display()))?;
    aya_build::build_ebpf(
        [Package { name: "filter-bench-ebpf", root_dir: root, ..Default::default() }],
        Toolchain::default(),
    )
}
