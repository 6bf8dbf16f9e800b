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

/// Put `prefixes` into the floor programs' tries (`FLOOR_PREFIXES`, `FLOOR_PREFIXES6` of a
/// loaded [`BASELINES`]), each in its family's trie: the floor then allows what sigwall's
/// policy allows by source, for a comparison with the same prefixes.
pub fn fill_floor(base: &mut aya::Ebpf, prefixes: impl IntoIterator<Item = ipnet::IpNet>) {
    use aya::maps::{LpmTrie, lpm_trie::Key};
    let (v4, v6): (Vec<_>, Vec<_>) = prefixes.into_iter().partition(|n| matches!(n, ipnet::IpNet::V4(_)));
    let mut t: LpmTrie<_, [u8; 4], u32> =
        LpmTrie::try_from(base.map_mut("FLOOR_PREFIXES").expect("FLOOR_PREFIXES")).unwrap();
    for n in v4 {
        if let ipnet::IpNet::V4(n) = n {
            t.insert(&Key::new(n.prefix_len() as u32, n.network().octets()), 1, 0).expect("floor IPv4 prefix");
        }
    }
    let mut t: LpmTrie<_, [u8; 16], u32> =
        LpmTrie::try_from(base.map_mut("FLOOR_PREFIXES6").expect("FLOOR_PREFIXES6")).unwrap();
    for n in v6 {
        if let ipnet::IpNet::V6(n) = n {
            t.insert(&Key::new(n.prefix_len() as u32, n.network().octets()), 1, 0).expect("floor IPv6 prefix");
        }
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
