//! The `sigwall` binary as an operator uses it: exit codes and messages for good and bad input.

use std::process::{Command, Output};

fn sigwall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigwall")).args(args).output().expect("run sigwall")
}

fn example(name: &str) -> String {
    format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sigwall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn check_accepts_the_shipped_example_and_summarises_it() {
    let out = sigwall(&["check", &example("policy.toml")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(": ok"), "{stdout}");
    assert!(stdout.contains("3 peers"), "{stdout}");
    assert!(stdout.contains("partner-a"), "{stdout}");
}

#[test]
fn check_rejects_bad_files_with_file_line_message() {
    for (name, text, line, needle) in [
        ("syntax.toml", "[defaults\n", 1, "invalid table header"),
        ("key.toml", "[defaults]\nmode = \"enforce\"\nfoo = 1\n", 3, "unknown field `foo`"),
        (
            "prefix.toml",
            "[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/33\"]\nallow = [\"gtp-c\"]\n",
            3,
            "not a prefix",
        ),
        (
            "class.toml",
            "[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/24\"]\nallow = [\"gtp\"]\n",
            4,
            "unknown class",
        ),
        (
            "dup.toml",
            "[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/24\"]\nallow = []\n[[peer]]\nname = \"a\"\nprefixes = [\"198.18.1.0/24\"]\nallow = []\n",
            6,
            "duplicate peer name",
        ),
        (
            "twice.toml",
            "[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/24\"]\nallow = []\n[[peer]]\nname = \"b\"\nprefixes = [\"198.18.0.0/24\"]\nallow = []\n",
            7,
            "claimed by peer",
        ),
    ] {
        let path = tmp(name, text);
        let out = sigwall(&["check", &path]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(&format!("{path}:{line}: ")), "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
    }
    let out = sigwall(&["check", "/nonexistent/policy.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read policy file"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["run", "--policy", "x.toml"][..],
        &["run", "--iface", "eth0", "--policy", "x.toml", "--xdp-mode", "turbo"],
        &["run", "--iface", "eth0", "--policy", "x.toml", "--mode", "block"],
        &["stats"],
        &["frobnicate"],
    ] {
        let out = sigwall(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error:") && err.contains("--help"), "{args:?}: {err}");
    }
}

#[test]
fn run_checks_the_policy_before_touching_the_kernel() {
    // Works unprivileged too: the policy error comes first.
    let path = tmp("run-bad.toml", "[defaults]\nmode = \"loud\"\n");
    let out = sigwall(&["run", "--iface", "lo", "--policy", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run-bad.toml:2:"));
}

#[test]
fn version_and_help() {
    let out = sigwall(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sigwall "));
    let out = sigwall(&["--help"]);
    let s = String::from_utf8_lossy(&out.stdout);
    for sub in ["check", "run", "stats"] {
        assert!(s.contains(sub), "{s}");
    }
}
