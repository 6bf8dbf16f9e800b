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
    rerun_on_new_commit();
    aya_build::build_ebpf([Package { name: "filter-ebpf", root_dir: root, ..Default::default() }], Toolchain::default())
}

/// Rebuild when HEAD moves: HEAD itself only names the branch, so also watch the branch's ref
/// and packed-refs. Paths come from git, which also handles worktrees (where `.git` is a file
/// and refs live in the common directory). Only existing files are named: cargo would rerun
/// for a missing one on every build.
fn rerun_on_new_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let (Some(git_dir), Some(common)) =
        (git(&["rev-parse", "--absolute-git-dir"]), git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]))
    else {
        return;
    };
    let mut watch =
        vec![std::path::Path::new(&git_dir).join("HEAD"), std::path::Path::new(&common).join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(std::path::Path::new(&common).join(branch));
    }
    for p in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
