//! Running the real XDP object on crafted frames with BPF_PROG_TEST_RUN, and reading back which
//! counter each frame moved.

use std::time::Duration;

use aya::{
    maps::{Array, MapData},
    programs::{TestRun, TestRunOptions},
};
use filter_common::{Class, Reason};
use sigwall::{
    loader::Filter,
    policy,
    stats::{self, Snapshot},
};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

/// A loaded, unattached filter with a policy applied.
pub struct Harness {
    pub filter: Filter,
    pub generation: u64,
}

/// What one frame did: the return code and the counter cells that moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: u32,
    /// (reason, class, packets, bytes) for every cell that changed.
    pub cells: Vec<(Reason, Class, u64, u64)>,
    /// (peer name, packets, bytes, passed, dropped) deltas for every peer that changed.
    pub peers: Vec<(String, u64, u64, u64, u64)>,
}

impl Harness {
    pub fn new(policy_text: &str) -> Harness {
        let filter = Filter::load(0).expect("load the sigwall object (needs root)");
        let mut h = Harness { filter, generation: 0 };
        h.apply(policy_text);
        h
    }

    /// The program as in-path mode loads it (in-path code kept by the verifier), no ports set.
    pub fn new_inpath(policy_text: &str) -> Harness {
        let filter = Filter::load_for_inpath(0).expect("load the sigwall object for in-path mode (needs root)");
        let mut h = Harness { filter, generation: 0 };
        h.apply(policy_text);
        h
    }

    /// Replace the policy (a generation flip).
    pub fn apply(&mut self, policy_text: &str) {
        let pol = policy::parse("test-policy.toml", policy_text, &policy::Limits::default()).expect("policy");
        let c = self.filter.compile(&pol).expect("compile");
        self.filter.apply(&c, policy::sha256(policy_text)).expect("apply policy");
        self.generation = c.global.generation;
    }

    pub fn snapshot(&self) -> Snapshot {
        stats::of_filter(&self.filter).expect("read counters")
    }

    /// Run the program once on `frame`; return its action code.
    pub fn run(&mut self, frame: &[u8]) -> u32 {
        let prog = self.filter.program().expect("program");
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        prog.test_run(opts).expect("BPF_PROG_TEST_RUN").return_value
    }

    /// Run `frame` `repeat` times in the kernel; return the mean time per run.
    pub fn time(&mut self, frame: &[u8], repeat: u32) -> Duration {
        let prog = self.filter.program().expect("program");
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat;
        prog.test_run(opts).expect("BPF_PROG_TEST_RUN").duration
    }

    /// Run `frame` once and report every counter it moved.
    pub fn outcome(&mut self, frame: &[u8]) -> Outcome {
        let before = self.snapshot();
        let action = self.run(frame);
        let after = self.snapshot();
        let mut cells = Vec::new();
        for r in Reason::ALL {
            for c in Class::ALL {
                let (a, b) = (after.cells[r as usize][c as usize], before.cells[r as usize][c as usize]);
                if a != b {
                    cells.push((r, c, a.packets - b.packets, a.bytes - b.bytes));
                }
            }
        }
        let mut peers = Vec::new();
        for p in &after.peers {
            let b = before.peer(&p.name).cloned().unwrap_or_default();
            if (p.packets, p.bytes, p.passed, p.dropped) != (b.packets, b.bytes, b.passed, b.dropped) {
                peers.push((
                    p.name.clone(),
                    p.packets - b.packets,
                    p.bytes - b.bytes,
                    p.passed - b.passed,
                    p.dropped - b.dropped,
                ));
            }
        }
        Outcome { action, cells, peers }
    }

    /// Forget a peer's rate history so its next packet conforms.
    pub fn reset_rate(&mut self, peer_name: &str) {
        let id = self.snapshot().peer(peer_name).expect("peer").id;
        let mut rs: Array<&mut MapData, u64> =
            Array::try_from(self.filter.ebpf.map_mut("RATE_STATE").expect("map RATE_STATE")).expect("RATE_STATE");
        rs.set(id, 0, 0).expect("reset rate state");
    }
}
