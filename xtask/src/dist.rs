//! `cargo xtask dist`: a release tarball, target/dist/sigwall-<version>-<arch>-linux.tar.gz.
//!
//! The tarball holds one directory whose content is laid out as the `/usr` prefix the systemd
//! unit expects (`ExecStart=/usr/bin/sigwall`), so it installs with
//! `tar -xzf sigwall-<version>-<arch>-linux.tar.gz -C /usr --strip-components=1`:
//!
//! ```text
//! bin/sigwall
//! lib/systemd/system/sigwall@.service
//! share/man/man8/sigwall.8, sigwall-<subcommand>.8
//! share/bash-completion/completions/sigwall
//! share/zsh/vendor-completions/_sigwall
//! share/fish/vendor_completions.d/sigwall.fish
//! share/sigwall/examples/*.toml
//! share/sigwall/kubernetes/sigwall.yaml
//! share/sigwall/Dockerfile
//! share/doc/sigwall/README.md
//! ```
//!
//! Man pages and completions come from the release binary itself (`sigwall generate`), so they
//! always match it. The archive is written by GNU tar and gzip, not by crates: xtask stays
//! dependency-light (it must build on a bare machine before `cargo xtask setup` has run), and
//! tar's `--sort=name --owner=0 --group=0 --mtime` with `gzip -n` give a reproducible archive
//! for free; both are on every Debian machine.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

pub fn run() -> anyhow::Result<()> {
    crate::setup::run()?;
    crate::cargo(&["build", "--release", "-p", "filter-user", "--bin", "sigwall"])?;
    let root = crate::workspace_root();
    let bin = PathBuf::from(crate::sigwall_bin());

    // The version the binary reports: `sigwall 0.1.0 (commit ..., map layout N)`.
    let version_line = output(Command::new(&bin).arg("--version"))?;
    let version = version_line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("unexpected `sigwall --version`: {version_line}"))?
        .to_string();
    let name = format!("sigwall-{version}-{}-linux", std::env::consts::ARCH);
    let dist = root.join("target/dist");
    let stage = dist.join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }

    install(&bin, &stage.join("bin/sigwall"), 0o755)?;
    install(
        &root.join("packaging/systemd/sigwall@.service"),
        &stage.join("lib/systemd/system/sigwall@.service"),
        0o644,
    )?;
    let man8 = stage.join("share/man/man8");
    std::fs::create_dir_all(&man8)?;
    output(Command::new(&bin).args(["generate", "man", "--dir"]).arg(&man8))?;
    for (shell, path) in [
        ("bash", "share/bash-completion/completions/sigwall"),
        ("zsh", "share/zsh/vendor-completions/_sigwall"),
        ("fish", "share/fish/vendor_completions.d/sigwall.fish"),
    ] {
        let text = output(Command::new(&bin).args(["generate", "completions", shell]))?;
        write(&stage.join(path), &text)?;
    }
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    examples.sort();
    if examples.is_empty() {
        bail!("no example policies in {}", root.join("examples").display());
    }
    for p in &examples {
        install(p, &stage.join("share/sigwall/examples").join(p.file_name().unwrap()), 0o644)?;
    }
    install(
        &root.join("packaging/kubernetes/sigwall.yaml"),
        &stage.join("share/sigwall/kubernetes/sigwall.yaml"),
        0o644,
    )?;
    install(&root.join("packaging/Dockerfile"), &stage.join("share/sigwall/Dockerfile"), 0o644)?;
    install(&root.join("README.md"), &stage.join("share/doc/sigwall/README.md"), 0o644)?;

    let tarball = dist.join(format!("{name}.tar.gz"));
    let mtime = source_date(&root);
    let status = Command::new("tar")
        .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mode=go-w"])
        .arg(format!("--mtime=@{mtime}"))
        .args(["--use-compress-program=gzip -n -9", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&dist)
        .arg(&name)
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar failed ({status})");
    }
    let list = output(Command::new("tar").arg("-tzvf").arg(&tarball))?;
    println!("{}\n{list}", tarball.display());
    println!("install: tar -xzf {} -C /usr --strip-components=1", tarball.display());
    Ok(())
}

/// Copy `from` to `to` (creating directories) with `mode`.
fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(to: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(to, text).with_context(|| format!("writing {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Run a command and return its stdout; a failure carries its stderr.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// File times in the archive: SOURCE_DATE_EPOCH if set, else the last commit's time, else now.
fn source_date(root: &Path) -> u64 {
    if let Some(t) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse().ok()) {
        return t;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
        })
}
