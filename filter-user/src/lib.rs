//! sigwall's controller as a library: the `sigwall` binary, the tests, the demo and the
//! benchmarks all call these functions.

pub mod policy;
