//! `sigwall generate`: the man pages and shell completions that `cargo xtask dist` packages.

use std::{
    io::Write as _,
    process::{Command, Output, Stdio},
};

fn sigwall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigwall")).args(args).output().expect("run sigwall")
}

fn stdout_of(args: &[&str]) -> String {
    let out = sigwall(args);
    assert!(out.status.success(), "sigwall {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Visible subcommands every generated artefact must know.
const SUBCOMMANDS: [&str; 12] =
    ["check", "run", "stats", "status", "peers", "peer", "policy", "mode", "events", "detach", "top", "add"];

/// `man -l -` renders the page, when man(1) is installed; its complaints go to stderr.
fn man_renders(page: &str) -> Option<String> {
    let mut child = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "man -l - failed:\n{stderr}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn man_page_is_roff_in_section_8_and_renders() {
    let page = stdout_of(&["generate", "man"]);
    let th = page.lines().find(|l| l.starts_with(".TH ")).unwrap_or_else(|| panic!("no .TH line:\n{page}"));
    assert!(th.starts_with(".TH sigwall 8"), "{th}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "missing {section}");
    }
    for sub in ["sigwall\\-top(8)", "sigwall\\-run(8)", "sigwall\\-stats(8)"] {
        assert!(page.contains(sub), "missing {sub} in\n{page}");
    }
    // The hidden subcommand stays out of the documentation.
    assert!(!page.contains("generate"), "{page}");
    match man_renders(&page) {
        Some(text) => {
            assert!(text.contains("SUBCOMMANDS") && text.contains("sigwall-top(8)"), "{text}");
        }
        None => println!("man(1) not installed: rendering not checked"),
    }
}

#[test]
fn man_dir_writes_one_page_per_subcommand() {
    let dir = std::env::temp_dir().join(format!("sigwall-generate-{}", std::process::id()));
    let listed = stdout_of(&["generate", "man", "--dir", dir.to_str().unwrap()]);
    for name in ["sigwall.8", "sigwall-top.8", "sigwall-run.8", "sigwall-peer-add.8", "sigwall-policy-reload.8"] {
        let p = dir.join(name);
        assert!(listed.lines().any(|l| l == p.to_str().unwrap()), "{name} not listed:\n{listed}");
        let page = std::fs::read_to_string(&p).unwrap();
        assert!(page.contains(".TH "), "{name}");
        if name == "sigwall-top.8" {
            assert!(page.contains("\\-\\-interval\\-ms"), "{page}");
            if let Some(text) = man_renders(&page) {
                assert!(text.contains("--iface"), "{text}");
            }
        }
    }
    assert!(!dir.join("sigwall-generate.8").exists() && !dir.join("sigwall-help.8").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn completions_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let text = stdout_of(&["generate", "completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
        assert!(text.contains("--interval-ms") || text.contains("interval-ms"), "{shell}: no top options");
        match shell {
            "bash" => assert!(text.contains("complete -F _sigwall"), "{text}"),
            "zsh" => assert!(text.starts_with("#compdef sigwall"), "{text}"),
            _ => assert!(text.contains("complete -c sigwall"), "{text}"),
        }
    }
    let out = sigwall(&["generate", "completions", "tcsh"]);
    assert!(!out.status.success());
}

#[test]
fn generate_is_hidden_and_version_is_kept() {
    let help = stdout_of(&["--help"]);
    assert!(help.contains("top") && !help.contains("generate"), "{help}");
    let v = stdout_of(&["--version"]);
    assert!(v.starts_with(&format!("sigwall {} (commit ", env!("CARGO_PKG_VERSION"))), "{v}");
    assert!(v.contains("map layout "), "{v}");
}
