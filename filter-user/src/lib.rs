//! sigwall's controller as a library: the `sigwall` binary, the tests, the demo and the
//! benchmarks all call these functions. Test support lives apart, in `filter-testkit`.

pub mod control;
pub mod daemon;
pub mod errors;
pub mod inpath;
pub mod inspect;
pub mod loader;
pub mod metrics;
pub mod policy;
pub mod stats;
pub mod subscriber;
