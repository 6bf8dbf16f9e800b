//! SCTP: any bytes as a packet; every chunk and DATA accessor; DATA chunks through the
//! reassembler (a fresh one per input).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use filter_dpi::sctp::{AssocKey, ChunkSlice, Reassembler, SctpSlice};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new();
    if let Ok(s) = SctpSlice::from_slice(data) {
        let key = AssocKey {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            src_port: s.source_port(),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst_port: s.destination_port(),
            vtag: s.verification_tag(),
        };
        assert_eq!(s.chunks().count(), s.chunk_count());
        for c in s.chunks() {
            let _ = (c.chunk_type(), c.flags(), c.length(), c.value());
            if let Some(d) = c.data() {
                let _ = (d.tsn(), d.stream_id(), d.stream_seq(), d.ppid(), d.unordered(), d.payload());
                if let Ok(Some(m)) = r.push(key, &d) {
                    assert!(m.fragments >= 1);
                }
            }
        }
    }
    // The same bytes as a run of chunks without the common header.
    let mut rest = data;
    while let Ok(c) = ChunkSlice::from_slice(rest) {
        let n = (c.length() as usize).next_multiple_of(4).max(4);
        rest = rest.get(n..).unwrap_or(&[]);
    }
});
