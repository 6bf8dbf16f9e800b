//! Test support shared by the integration tests, the demo and the benchmarks: one packet
//! builder, one namespace lab. Not used by the product itself.

pub mod daemon;
pub mod netns;
pub mod packets;
pub mod pcap;
pub mod testrun;
pub mod tshark;
