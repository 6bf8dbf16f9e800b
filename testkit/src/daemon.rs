//! `sigwall run` as a child process inside a lab's edge namespace, stopped on drop.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Stdio},
    sync::mpsc,
    time::Duration,
};

use sigwall::{loader, stats};

use crate::netns::Lab;

pub struct Daemon {
    child: Option<Child>,
    pub iface: String,
    /// Control socket and audit log live here; removed on drop.
    pub workdir: std::path::PathBuf,
    /// After `kill_hard`: the pins belong to whoever adopts them next.
    leave_pins: bool,
    /// Everything the daemon wrote to stderr, collected until it exits.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Daemon {
    /// Start `sigwall run` on the lab's edge interface and wait until it says it is filtering.
    pub fn start(lab: &Lab, sigwall: &Path, policy: &Path, extra: &[&str]) -> Daemon {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let workdir = std::env::temp_dir().join(format!("sigwall-daemon-{}-{n}", lab.edge_if));
        std::fs::create_dir_all(&workdir).expect("daemon workdir");
        let mut cmd = lab.edge_command(sigwall.to_str().expect("UTF-8 path"));
        cmd.args(["run", "--iface", &lab.edge_if, "--policy"])
            .arg(policy)
            .arg("--control-socket")
            .arg(workdir.join("control.sock"))
            .arg("--audit-log")
            .arg(workdir.join("audit.jsonl"))
            .arg("--run-dir")
            .arg(&workdir)
            .args(["--xdp-mode", "native"])
            .args(if extra.contains(&"--stats-interval") { vec![] } else { vec!["--stats-interval", "0"] })
            .args(extra)
            .args(if extra.contains(&"--events") {
                vec![]
            } else {
                vec!["--events".into(), workdir.join("events.jsonl")]
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sigwall run");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                s.push_str(&line);
                s.push('\n');
            }
            s
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("sigwall: filtering on") {
                    let _ = tx.send(());
                }
            }
        });
        let mut d = Daemon {
            child: Some(child),
            iface: lab.edge_if.clone(),
            workdir,
            leave_pins: false,
            stderr: Some(err_thread),
        };
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let log = d.stop();
            panic!("sigwall run did not start filtering on {}:\n{log}", lab.edge_if);
        }
        d
    }

    pub fn socket(&self) -> std::path::PathBuf {
        self.workdir.join("control.sock")
    }

    pub fn audit_log(&self) -> std::path::PathBuf {
        self.workdir.join("audit.jsonl")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `kill -9`: the daemon gets no chance to clean up; its pins (and so the filter) remain.
    pub fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.leave_pins = true;
    }

    /// Wait for the daemon to exit by itself (e.g. after `sigwall detach`); true if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            match self.child.as_mut().map(|c| c.try_wait()) {
                None | Some(Ok(Some(_))) => {
                    self.child = None;
                    return true;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }

    /// The daemon's stderr so far is only available after it exits: stop and return it.
    pub fn log(&mut self) -> String {
        self.stop()
    }

    pub fn stats(&self) -> stats::Snapshot {
        stats::of_pins(&self.iface).expect("read pinned counters")
    }

    /// SIGTERM, wait, and return what the daemon logged.
    pub fn stop(&mut self) -> String {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if std::time::Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        // A daemon that died without detaching leaves its filter pinned; detach it so nothing
        // outlives the test (unless a test killed it on purpose and another daemon adopts).
        if !self.leave_pins {
            let _ = loader::force_detach(&self.iface);
        }
        self.stderr.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}
