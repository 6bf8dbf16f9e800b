//! Shared by sigwall's benchmark programs (`src/bin/*.rs`, run by `cargo xtask bench`): the
//! bench-only XDP object, the summary statistic every table reports, and the default paths.
//! Test support (frames, namespaces, the TEST_RUN harness) comes from `filter-testkit`.

use std::path::PathBuf;

/// Reference programs for the benchmarks (`trivial_pass`, `floor`, `drop_count`, `pass_count`,
/// `gen_tx`), built by build.rs from bench/ebpf. The product never loads them.
pub static BASELINES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baselines"));

/// Median, minimum and maximum of a set of runs: every reported figure is a median with its
/// spread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// Of `samples`, which must not be empty (upper median for an even count).
    pub fn of(samples: &[f64]) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        Stats { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] }
    }
}

/// The workspace root (this crate lives in `bench/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Where the programs write their tables unless `--out` says otherwise: `target/bench`.
pub fn default_out() -> PathBuf {
    workspace_root().join("target/bench")
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn stats_take_the_upper_median_and_the_extremes() {
        assert_eq!(Stats::of(&[3.0, 1.0, 2.0]), Stats { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(Stats::of(&[4.0, 1.0, 3.0, 2.0]), Stats { median: 3.0, min: 1.0, max: 4.0 });
        assert_eq!(Stats::of(&[7.5]), Stats { median: 7.5, min: 7.5, max: 7.5 });
    }
}
