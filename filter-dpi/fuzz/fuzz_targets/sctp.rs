//! SCTP: any bytes as a packet; every chunk and DATA accessor; DATA chunks through the
//! reassembler (a fresh one per input); the lax walk and the CRC32c. The same bytes also drive
//! the other transport reassemblers inspection uses: TCP (`tcp`) and IP fragments (`ipfrag`).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use filter_dpi::{
    ipfrag::{Defragmenter, FragKey, Fragment},
    sctp::{AssocKey, ChunkSlice, Reassembler, SctpSlice},
    tcp::{Segment, TcpReassembler},
};
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
    // The lax walk never loses a chunk the strict one accepts, and feeds every DATA/I-DATA.
    if let Ok((s, _stop)) = SctpSlice::from_slice_lax(data) {
        let _ = s.checksum_ok();
        // Where the strict walk accepts the packet and no chunk stops the receiver, both see
        // the same chunks.
        if let Ok(strict) = SctpSlice::from_slice(data)
            && !strict.chunks().any(|c| filter_dpi::sctp::unknown_chunk_stops(c.chunk_type()))
        {
            assert_eq!(s.chunk_count(), strict.chunk_count());
        }
        let key = AssocKey {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            src_port: 1,
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst_port: 2,
            vtag: s.verification_tag(),
        };
        let mut r = Reassembler::new();
        for d in s.data_chunks() {
            let _ = (d.message_id(), d.fsn(), d.is_idata());
            let _ = r.feed(u32::from(d.stream_id() & 3), key, &d);
        }
    }
    // Records of 8 bytes of header (seq, flags, urgent pointer, length) and a payload: as TCP
    // segments of one direction, and as IP fragments of a few datagrams.
    let mut t = TcpReassembler::new();
    let mut f = Defragmenter::new();
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 8 {
        let seq = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let (flags, urg) = (rest[4], u16::from(rest[5]));
        let n = (u16::from_be_bytes([rest[6], rest[7]]) as usize % 1500).min(rest.len() - 8);
        let payload = &rest[8..8 + n];
        let p = t.push_framed(&Segment { seq, flags, urgent_pointer: urg, payload }, |b| b.first() == Some(&1));
        assert!(t.buffered() <= filter_dpi::tcp::MAX_OOO_BYTES);
        let _ = p;
        let key = FragKey {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            proto: 132,
            id: u32::from(rest[0] & 3),
        };
        now += u64::from(rest[1]) * 1_000_000_000;
        let _ = f.push(
            u32::from(rest[2] & 1),
            key,
            Fragment { offset: (seq as usize & 0x1fff) * 8, more: flags & 1 == 1, data: payload },
            now,
        );
        assert!(f.buffered() <= filter_dpi::ipfrag::MAX_BYTES);
        rest = &rest[8 + n..];
    }
    // The same bytes as a run of chunks without the common header.
    let mut rest = data;
    while let Ok(c) = ChunkSlice::from_slice(rest) {
        let n = (c.length() as usize).next_multiple_of(4).max(4);
        rest = rest.get(n..).unwrap_or(&[]);
    }
});
