//! sigwall's integration tests, one module per layer, all in one test binary (the shape of aya's
//! `test/integration-test`). They load XDP programs, create network namespaces, run the
//! `sigwall` binary named by `$SIGWALL_BIN` and compare against tshark, scapy and pycrate, so
//! most need root: run them with `cargo xtask test`, which builds the binary, sets
//! `$SIGWALL_BIN` and runs each layer by module filter, e.g.
//! `cargo test -p filter-integration -- tests::veth:: --test-threads=1`.

#[cfg(test)]
mod tests;
