//! Test support shared by the integration tests (`tests/integration`), the demo and the
//! benchmarks (`bench`): one packet builder, one namespace lab, one way to find the `sigwall`
//! binary. Not part of the product: nothing in `filter-user`'s library or binary uses it.

use std::path::PathBuf;

pub mod daemon;
pub mod netns;
pub mod packets;
pub mod pcap;
pub mod testrun;
pub mod tshark;

/// The environment variable naming the `sigwall` binary the integration tests run.
pub const SIGWALL_BIN: &str = "SIGWALL_BIN";

/// The `sigwall` binary under test: `$SIGWALL_BIN`, which `cargo xtask test` sets after building
/// it. Panics with what to do when it is unset or names no file.
pub fn sigwall_bin() -> PathBuf {
    let Some(path) = std::env::var_os(SIGWALL_BIN) else {
        panic!(
            "{SIGWALL_BIN} is not set: run these tests through `cargo xtask test`, or build the binary \
             (`cargo build -p filter-user --bin sigwall`) and, from the workspace root, set \
             {SIGWALL_BIN}=$PWD/target/debug/sigwall (an absolute path: tests run in their package's directory)"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{SIGWALL_BIN}={} is not a file: build it with `cargo build -p filter-user --bin sigwall` and give an absolute path",
        path.display()
    );
    path
}

/// Keep the calling thread on the CPU it runs on now. Per-CPU state the tests count (the XDP
/// program's source cache) then sees one CPU: BPF_PROG_TEST_RUN runs on the caller's CPU, and a
/// frame sent through a veth is received in the sender's softirq, on the sender's CPU.
pub fn stay_on_one_cpu() {
    // SAFETY: cpu_set_t is plain data; sched_getcpu and sched_setaffinity on this thread.
    unsafe {
        let cpu = libc::sched_getcpu().max(0) as usize;
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0, "pin to CPU {cpu}");
    }
}

/// A fresh directory under the system temp dir, named after `tag`, removed when the returned
/// guard drops (also when the test panics).
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sigwall-{tag}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("create a temp dir for {tag}: {e}"))
}
