//! `sigwall top` for real: in a tmux pane, against a daemon on a veth lab. Needs root; tmux
//! (Debian package tmux) or the test prints SKIPPED. The rendering itself is unit-tested with
//! ratatui's TestBackend in src/cli/top.rs.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

use filter_testkit::{
    daemon::Daemon,
    netns::Lab,
    packets::{self, Frame, L4},
    sigwall_bin,
};

const POLICY: &str = "[[peer]]\nname = \"partner\"\nprefixes = [\"198.18.1.0/24\"]\nallow = [\"gtp-u\"]\n";

/// A tmux server of our own (`tmux -S <socket>`), so the test never touches the user's
/// sessions; killed, and its socket removed, on drop, pass or fail.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[test]
fn top_shows_the_peer_and_generation_under_tmux_and_quits_on_q() {
    if Command::new("tmux").arg("-V").output().map(|o| !o.status.success()).unwrap_or(true) {
        println!("SKIPPED: tmux is not installed (apt-get install tmux)");
        return;
    }
    let lab = Lab::new();
    let dir = std::env::temp_dir().join(format!("sigwall-top-{}", lab.edge_if));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let sigwall = sigwall_bin();
    let d = Daemon::start(&lab, &sigwall, &policy, &[]);
    let tx = lab.sender();
    let send = |src: &str, n: u32| {
        for i in 0..n {
            let f = Frame::new(
                src.parse().unwrap(),
                "198.18.0.2".parse().unwrap(),
                L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(i, &packets::inner_ipv4_udp()) },
            );
            tx.send(&f.bytes());
        }
    };
    send("198.18.1.5", 3);
    send("198.18.9.5", 2);

    // The pins are in the host's bpffs, so top runs in the root namespace; the control socket is
    // a path, reachable from any network namespace.
    let tmux = Tmux { socket: dir.join("tmux.sock") };
    // The shell prints top's exit status on the pane's normal screen once top has left the
    // alternate one, and keeps the pane open to be read (tmux 3.3 resets a dead pane's screen
    // even with remain-on-exit, and sometimes never fills in #{pane_dead_status}).
    let cmd = format!(
        "{} top --iface {} --socket {}; echo sigwall-top-exit=$?; sleep 60",
        sigwall.display(),
        lab.edge_if,
        d.socket().display()
    );
    let out = tmux.run(&["new-session", "-d", "-s", "top", "-x", "120", "-y", "40", &cmd]);
    assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));

    // Wait for a frame with rates (the second refresh), sending meanwhile so they are not zero.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut screen = String::new();
    while Instant::now() < deadline {
        send("198.18.1.5", 5);
        std::thread::sleep(Duration::from_millis(250));
        screen = tmux.screen();
        if screen.contains("rates over the last") && screen.contains("partner") {
            break;
        }
    }
    println!("sigwall top under tmux (120x40):\n{screen}");
    assert!(screen.contains("policy generation 1"), "{screen}");
    assert!(screen.contains("rates over the last"), "{screen}");
    let peer = screen.lines().find(|l| l.contains("partner")).unwrap_or_else(|| panic!("no peer row:\n{screen}"));
    assert!(peer.split_whitespace().nth(1).is_some_and(|pps| pps != "-"), "no rate for the peer: {peer}");
    assert!(screen.contains("mode enforce") && screen.contains("xdp native"), "{screen}");
    assert!(screen.contains("unknown sources (one aggregate slot)"), "{screen}");
    assert!(screen.lines().any(|l| l.contains("not_allowlisted") && l.contains("drop")), "{screen}");

    let out = tmux.run(&["send-keys", "-t", "top", "q"]);
    assert!(out.status.success(), "tmux send-keys: {}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = tmux.screen();
    while !after.contains("sigwall-top-exit=") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        after = tmux.screen();
    }
    assert!(after.contains("sigwall-top-exit=0"), "sigwall top did not exit with status 0 on q; pane:\n{after}");
    // It left the alternate screen and raw mode: the view is gone, the shell's line is intact.
    assert!(!after.contains("busiest first"), "terminal not restored:\n{after}");
    assert!(after.lines().any(|l| l.trim() == "sigwall-top-exit=0"), "{after}");

    drop(tmux);
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
