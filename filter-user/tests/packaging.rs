//! The systemd unit, the container recipe and the Kubernetes manifests: checked with the tools
//! that will read them (systemd-analyze, Python's YAML loader) where they exist here, and by
//! our own checks of what sigwall needs from them. No cluster runs here.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
};

/// Whether a missing tool may skip a check. Plain `cargo test` runs anywhere, so it skips (and
/// says so); `cargo xtask test`, whose set-up installs the tools, sets SIGWALL_REQUIRE_TOOLS=1
/// and a missing tool fails the test there.
fn may_skip(tool: &str) -> bool {
    if std::env::var_os("SIGWALL_REQUIRE_TOOLS").is_some() {
        panic!("{tool} is required (SIGWALL_REQUIRE_TOOLS is set): cargo xtask setup installs it");
    }
    eprintln!("SKIPPED: {tool} not installed");
    true
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unit() -> String {
    std::fs::read_to_string(root().join("packaging/systemd/sigwall@.service")).unwrap()
}

/// key -> values of a unit file (keys may repeat).
fn unit_keys(text: &str) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for l in text.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty()) {
        let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not key=value: {l}"));
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    m
}

#[test]
fn systemd_unit_is_hardened_and_least_privileged() {
    let keys = unit_keys(&unit());
    let one = |k: &str| -> &str { keys.get(k).and_then(|v| v.first()).unwrap_or_else(|| panic!("unit lacks {k}")) };
    let caps = "CAP_BPF CAP_NET_ADMIN CAP_PERFMON";
    assert_eq!(one("CapabilityBoundingSet"), caps);
    assert_eq!(one("AmbientCapabilities"), caps);
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("RuntimeDirectory"), "sigwall");
    assert_eq!(one("User"), "sigwall");
    assert!(one("ExecReload").contains("-HUP $MAINPID"));
    let exec = one("ExecStart");
    assert!(exec.contains("run --iface %i") && exec.contains("--on-exit keep"), "{exec}");
    // The options it passes are options sigwall has.
    let help = Command::new(env!("CARGO_BIN_EXE_sigwall")).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for opt in exec.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(help.contains(opt), "ExecStart uses {opt}, which `sigwall run` does not have");
    }
    // Writable paths cover what the daemon writes.
    let rw = one("ReadWritePaths");
    assert!(rw.contains("/etc/sigwall") && rw.contains("/sys/fs/bpf/sigwall"), "{rw}");
}

#[test]
fn systemd_analyze_verify_passes() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() && may_skip("systemd-analyze") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sigwall-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The unit's binaries must exist for verify: point it at the built one.
    let text = unit().replace("/usr/bin/sigwall", env!("CARGO_BIN_EXE_sigwall"));
    let path = dir.join("sigwall@eth7.service");
    std::fs::write(&path, text).unwrap();
    // --man=no: the man page is installed by the package (cargo xtask dist), not on this machine.
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    // Lines about other units on this machine are not ours to judge.
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("sigwall")).collect();
    assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify:\n{err}");
}

fn have_pyyaml() -> bool {
    Command::new("python3").args(["-c", "import yaml"]).output().is_ok_and(|o| o.status.success())
}

fn yaml_docs(path: &Path) -> Vec<serde_json::Value> {
    // Python's YAML loader (PyYAML) parses, serde_json carries the result back.
    let out = Command::new("python3")
        .args(["-c", "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"])
        .arg(path)
        .output()
        .expect("python3 with PyYAML");
    assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn kubernetes_manifests_have_what_a_node_needs() {
    if !have_pyyaml() && may_skip("python3 with PyYAML") {
        return;
    }
    let docs = yaml_docs(&root().join("packaging/kubernetes/sigwall.yaml"));
    let by_kind = |k: &str| docs.iter().filter(|d| d["kind"] == k).collect::<Vec<_>>();
    for d in &docs {
        assert!(d["apiVersion"].is_string() && d["kind"].is_string() && d["metadata"]["name"].is_string(), "{d}");
    }
    let ds = by_kind("DaemonSet");
    assert_eq!(ds.len(), 1);
    let spec = &ds[0]["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(ds[0]["spec"]["selector"]["matchLabels"], ds[0]["spec"]["template"]["metadata"]["labels"]);
    let c = &spec["containers"][0];
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    for want in ["run", "--watch-policy", "--no-persist", "--on-exit=keep"] {
        assert!(args.contains(&want), "{args:?} lacks {want}");
    }
    let metrics = args.iter().find(|a| a.starts_with("--metrics=")).expect("--metrics");
    assert!(!metrics.contains("0.0.0.0") && !metrics.contains("[::]"), "no wildcard: {metrics}");
    let sc = &c["securityContext"];
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(sc["capabilities"]["add"], serde_json::json!(["BPF", "NET_ADMIN", "PERFMON"]));
    assert_eq!(sc["runAsNonRoot"], true);
    let mounts: Vec<&str> =
        c["volumeMounts"].as_array().unwrap().iter().filter_map(|m| m["mountPath"].as_str()).collect();
    assert!(mounts.contains(&"/sys/fs/bpf") && mounts.contains(&"/etc/sigwall"), "{mounts:?}");
    let vols = spec["volumes"].as_array().unwrap();
    assert!(vols.iter().any(|v| v["hostPath"]["path"] == "/sys/fs/bpf"));
    let policy_cm = vols.iter().find(|v| v["name"] == "policy").unwrap()["configMap"]["name"].as_str().unwrap();

    // The policy in the ConfigMap is one `sigwall check` accepts.
    let cm = by_kind("ConfigMap").into_iter().find(|c| c["metadata"]["name"] == policy_cm).expect("policy ConfigMap");
    let text = cm["data"]["policy.toml"].as_str().unwrap();
    let f = std::env::temp_dir().join(format!("sigwall-cm-{}.toml", std::process::id()));
    std::fs::write(&f, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sigwall")).arg("check").arg(&f).output().unwrap();
    let _ = std::fs::remove_file(&f);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let svc = by_kind("Service");
    assert_eq!(svc[0]["spec"]["ports"][0]["port"], 9469);
    assert_eq!(svc[0]["spec"]["selector"], ds[0]["spec"]["template"]["metadata"]["labels"]);
}

#[test]
fn container_recipe_is_multi_stage_and_non_root() {
    let d = std::fs::read_to_string(root().join("packaging/Dockerfile")).unwrap();
    assert!(d.lines().filter(|l| l.starts_with("FROM ")).count() >= 2, "multi-stage");
    assert!(d.contains("bpf-linker@0.10.0") && d.contains("rust-src"), "builds the XDP object");
    let user = d.lines().rfind(|l| l.starts_with("USER ")).expect("USER");
    assert!(!user.contains("root") && !user.trim_end().ends_with(" 0"), "{user}");
    assert!(d.contains("setcap cap_bpf,cap_net_admin,cap_perfmon+ep"), "same capabilities as the unit");
}
