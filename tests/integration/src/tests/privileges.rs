//! `sigwall run` as an unprivileged user with only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON
//! (kernel 6.18 charges BPF memory to the memory cgroup, so no CAP_SYS_RESOURCE), a clear error
//! naming a missing capability, and `--control-group`. Uses setpriv from util-linux. Root runs
//! the test and prepares directories the unprivileged user may write.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use filter_testkit::{netns::Lab, packets, sigwall_bin};

const NOBODY: u32 = 65534;

const POLICY: &str = "[[peer]]\nname = \"a\"\nprefixes = [\"198.18.1.0/24\"]\nallow = [\"gtp-u\"]\n";

struct Dirs {
    work: PathBuf,
    pins: PathBuf,
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
        let _ = std::fs::remove_dir_all(&self.pins);
    }
}

fn chown(p: &Path, uid: u32, gid: u32) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: chown on a path we created.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), uid, gid) }, 0, "chown {}", p.display());
}

/// A work directory and the pin directory, owned by nobody; the binary copied where nobody can
/// execute it (the build tree may be private).
fn dirs(lab: &Lab) -> (Dirs, PathBuf) {
    let work = std::env::temp_dir().join(format!("sigwall-priv-{}", lab.edge_if));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(&work, NOBODY, NOBODY);
    let bin = work.join("sigwall");
    std::fs::copy(sigwall_bin(), &bin).unwrap();
    std::fs::write(work.join("policy.toml"), POLICY).unwrap();
    chown(&work.join("policy.toml"), NOBODY, NOBODY);
    let pins = sigwall::loader::pin_dir(&lab.edge_if);
    std::fs::create_dir_all(&pins).unwrap();
    chown(&pins, NOBODY, NOBODY);
    (Dirs { work, pins }, bin)
}

fn run_as_nobody(lab: &Lab, bin: &Path, work: &Path, caps: &str, extra: &[&str]) -> Child {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{}", lab.edge_ns))
        .args(["--", "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(format!("--inh-caps=-all,{caps}"))
        .arg(format!("--ambient-caps=-all,{caps}"))
        .arg(format!("--bounding-set=-all,{caps}"))
        .arg("--")
        .arg(bin)
        .args(["run", "--iface", &lab.edge_if, "--policy"])
        .arg(work.join("policy.toml"))
        .arg("--run-dir")
        .arg(work)
        .arg("--audit-log")
        .arg(work.join("audit.jsonl"))
        .arg("--events")
        .arg(work.join("events.jsonl"))
        .args(["--stats-interval", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().expect("nsenter + setpriv (util-linux)")
}

fn wait_ready(child: &mut Child) -> bool {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if l.starts_with("sigwall: filtering on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).is_ok()
}

fn stop(child: Child) -> String {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn runs_with_only_bpf_net_admin_perfmon() {
    let lab = Lab::new();
    let (d, bin) = dirs(&lab);
    let mut child = run_as_nobody(&lab, &bin, &d.work, "+bpf,+net_admin,+perfmon", &["--control-group", "65534"]);
    if !wait_ready(&mut child) {
        panic!("sigwall did not start as nobody with CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON:\n{}", stop(child));
    }
    // It filters: an unknown source's GTP-U is dropped.
    let tx = lab.sender();
    let f = packets::Frame::new(
        "198.18.9.9".parse().unwrap(),
        "198.18.0.2".parse().unwrap(),
        packets::L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(1, &packets::inner_ipv4_udp()) },
    );
    tx.send(&f.bytes());
    std::thread::sleep(Duration::from_millis(300));
    let s = sigwall::stats::of_pins(&lab.edge_if).unwrap();
    assert_eq!(s.reason(filter_common::Reason::NotAllowlisted), 1);
    // The control socket: owned by nobody, group-accessible for the control group only.
    let sock = d.work.join(format!("{}.sock", lab.edge_if));
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY));
    let st = sigwall::control::call(&sock, sigwall::control::Command::Status, Duration::from_secs(5)).unwrap();
    assert_eq!(st["generation"], 1);
    let log = stop(child);
    assert!(log.contains("detached"), "{log}");
    assert!(!d.pins.join("link").exists() && !d.pins.join("STATS").exists(), "pins removed");
}

#[test]
fn a_missing_capability_is_named_and_nothing_is_attached() {
    let lab = Lab::new();
    let (d, bin) = dirs(&lab);
    let child = run_as_nobody(&lab, &bin, &d.work, "+bpf,+net_admin", &[]);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing capabilities CAP_PERFMON"), "{err}");
    assert!(!d.pins.join("link").exists());
    assert!(!lab.xdp_attached());
}
