//! criterion micro-benchmarks of the decoders: one real message per protocol, from the
//! third-party captures in `testdata/captures/`, decoded the way `inspect` decodes it (the
//! decode half of `filter-user/examples/bench_dpi.rs`, without frames, rules or tshark).
//!
//! `cargo bench -p filter-dpi` (no root, nightly or bpf-linker needed).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use filter_dpi::diameter::StreamReassembler;
use filter_dpi::sctp::{self, AssocKey, ChunkSlice, Fed, PPID_M2PA, PPID_M3UA, SctpSlice};
use filter_dpi::{diameter, gtp, ss7, tcp};

/// `ss7_map_pcapr.pcap` frame 29: an SCTP packet, one DATA chunk (PPID 5) with M2PA, MTP3, SCCP UDT, TCAP Begin and a MAP sendRoutingInfoForSM Invoke (156 bytes).
const SCTP_M2PA_MAP: &str = concat!(
    "07d607d6b1f552345d9d661a0003008d18fd9c96000100020000000501000b010000007d00000001000000020103b8d1",
    "00000981030e190b12060011041497427533030b12080011041497797908004962474804000000016b1e281c06070011",
    "8605010101a011600f80020780a1090607040000010014026c1fa11d0201ff02012d30158007911497427533f3810100",
    "8207911497797908f0000000",
);

/// An M3UA DATA message (OPC 1234, DPC 5678) carrying SCCP UDT (called GT 22201000000 SSN 6,
/// calling GT 41799797800 SSN 7), a TCAP Begin (OTID 5a012344, AARQ with infoRetrievalContext v3
/// 0.4.0.0.1.0.14.3) and a MAP sendAuthenticationInfo Invoke (code 56: IMSI 220201000000112,
/// 5 vectors, segmentationProhibited) (124 bytes, built by hand: the captures have no M3UA).
const M3UA_SAI: &str = concat!(
    "010001010000007c02100071000004d20000162e030200050980030e190b12060011042202010000000b120700110414",
    "977979080043624148045a0123446b1e281c060700118605010101a011600f80020780a109060704000001000e036c19",
    "a117020101020138300f800822201000000011f20201050500000000",
);

/// `inbound_roaming_01_210505_130828-1.pcapng` frame 28: a Diameter S6a Update-Location-Request (260 bytes).
const DIAMETER_ULR: &str = concat!(
    "01000104c000013c01000023b80e2177e6ec4c37000001074000003b737472696e672d7336613b313430383332313634",
    "34353937313232383231393b313037393838303432393b313266383239613200000001084000000e737472696e670000",
    "000001284000000e737472696e670000000001164000000c60920a950000000140000017303031303230303030303030",
    "30363400000001154000000c0000000100000408c0000010000028af000003ec0000057dc0000010000028af00000022",
    "0000057fc000000f000028af00f110000000011b400000116d61676d612e636f6d000000000001254000001d6d61676d",
    "612d66656467772e6d61676d612e636f6d000000",
);

/// `inbound_roaming_01_210505_130828-1.pcapng` frame 39: a GTPv2-C Create Session Request (245 bytes).
const GTPV2_CSR: &str = concat!(
    "482000f10000000000000b000100080000010200000060f44c000400002100f04b000800044971357367000056000d00",
    "180011000001001100000000015300030000f11052000100064d00070000000000000000570009008600000001ac1001",
    "0c4700050004726f616d800001000063000100014f00050001000000007f000100004800080002cd29c005c81a404e00",
    "27008080211001010010810600000000830600000000000a00000d00000500001100001000001a01055d002c00490001",
    "0005570009028400000001ac10140450001600650900000000000000000000000000000000000000007200020000005f",
    "0002000000",
);

/// `inbound_roaming_01_210505_130828-1.pcapng` frame 102: a GTP-U G-PDU carrying an IPv4 packet (1008 bytes).
const GTPU_GPDU: &str = concat!(
    "30ff03e880000000450003e8008000004011775cc0a87e01ac10146f43084ad803d4f84f0000dffa7fc2c6c5c4c3c2c1",
    "c0bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0afaeadacabaaa9a8a7a6a5a4a3a2a1a09f9e9d9c9b9a999897969594939291",
    "908f8e8d8c8b8a898887868584838281807f7e7d7c7b7a797877767574737271706f6e6d6c6b6a696867666564636261",
    "605f5e5d5c5b5a595857565554535251504f4e4d4c4b4a494847464544434241403f3e3d3c3b3a393837363534333231",
    "302f2e2d2c2b2a292827262524232221201f1e1d1c1b1a191817161514131211100f0e0d0c0b0a090807060504030201",
    "00fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0dfdedddcdbdad9d8d7d6d5d4d3d2d1",
    "d0cfcecdcccbcac9c8c7c6c5c4c3c2c1c0bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0afaeadacabaaa9a8a7a6a5a4a3a2a1",
    "a09f9e9d9c9b9a999897969594939291908f8e8d8c8b8a898887868584838281807f7e7d7c7b7a797877767574737271",
    "706f6e6d6c6b6a696867666564636261605f5e5d5c5b5a595857565554535251504f4e4d4c4b4a494847464544434241",
    "403f3e3d3c3b3a393837363534333231302f2e2d2c2b2a292827262524232221201f1e1d1c1b1a191817161514131211",
    "100f0e0d0c0b0a09080706050403020100fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1",
    "e0dfdedddcdbdad9d8d7d6d5d4d3d2d1d0cfcecdcccbcac9c8c7c6c5c4c3c2c1c0bfbebdbcbbbab9b8b7b6b5b4b3b2b1",
    "b0afaeadacabaaa9a8a7a6a5a4a3a2a1a09f9e9d9c9b9a999897969594939291908f8e8d8c8b8a898887868584838281",
    "807f7e7d7c7b7a797877767574737271706f6e6d6c6b6a696867666564636261605f5e5d5c5b5a595857565554535251",
    "504f4e4d4c4b4a494847464544434241403f3e3d3c3b3a393837363534333231302f2e2d2c2b2a292827262524232221",
    "201f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100fffefdfcfbfaf9f8f7f6f5f4f3f2f1",
    "f0efeeedecebeae9e8e7e6e5e4e3e2e1e0dfdedddcdbdad9d8d7d6d5d4d3d2d1d0cfcecdcccbcac9c8c7c6c5c4c3c2c1",
    "c0bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0afaeadacabaaa9a8a7a6a5a4a3a2a1a09f9e9d9c9b9a999897969594939291",
    "908f8e8d8c8b8a898887868584838281807f7e7d7c7b7a797877767574737271706f6e6d6c6b6a696867666564636261",
    "605f5e5d5c5b5a595857565554535251504f4e4d4c4b4a494847464544434241403f3e3d3c3b3a393837363534333231",
    "302f2e2d2c2b2a292827262524232221201f1e1d1c1b1a191817161514131211100f0e0d0c0b0a090807060504030201",
);

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "hex of odd length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

fn decode(c: &mut Criterion) {
    let sctp = hex(SCTP_M2PA_MAP);
    let packet = SctpSlice::from_slice(&sctp).expect("SCTP packet");
    let user_message = packet.data_chunks().next().expect("a DATA chunk").payload().to_vec();
    let sai = hex(M3UA_SAI);
    let ulr = hex(DIAMETER_ULR);
    let csr = hex(GTPV2_CSR);
    let gpdu = hex(GTPU_GPDU);
    // The messages are what their names say, decoded all the way.
    let m = ss7::decode(PPID_M2PA, &user_message).expect("SIGTRAN");
    assert!(m.stopped.is_none() && m.op_codes().eq([45]), "{m:?}");
    let m = ss7::decode(PPID_M3UA, &sai).expect("SIGTRAN");
    assert!(m.stopped.is_none() && m.anomalies.is_empty() && m.op_codes().eq([56]), "{m:?}");
    assert_eq!(m.imsi(), Some("220201000000112"));
    assert_eq!(m.tcap.as_ref().and_then(|t| t.acn.as_deref()), Some("0.4.0.0.1.0.14.3"));
    assert_eq!(diameter::decode(&ulr).expect("Diameter").command_code, 316);
    assert_eq!(gtp::decode_c(&csr).expect("GTPv2-C").message_type, 32);
    assert!(gtp::decode_u(&gpdu).expect("GTP-U").inner.is_some());

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(sctp.len() as u64));
    g.bench_function("sctp_packet", |b| {
        b.iter(|| {
            let p = SctpSlice::from_slice(black_box(&sctp)).expect("valid");
            p.data_chunks().map(|d| d.payload().len()).sum::<usize>()
        })
    });
    g.throughput(Throughput::Bytes(user_message.len() as u64));
    g.bench_function("ss7_m2pa_to_map", |b| b.iter(|| ss7::decode(PPID_M2PA, black_box(&user_message))));
    g.throughput(Throughput::Bytes(sai.len() as u64));
    g.bench_function("ss7_m3ua_sai", |b| b.iter(|| ss7::decode(PPID_M3UA, black_box(&sai))));
    g.throughput(Throughput::Bytes(ulr.len() as u64));
    g.bench_function("diameter_ulr", |b| b.iter(|| diameter::decode(black_box(&ulr))));
    g.throughput(Throughput::Bytes(csr.len() as u64));
    g.bench_function("gtpv2c_create_session", |b| b.iter(|| gtp::decode_c(black_box(&csr))));
    g.throughput(Throughput::Bytes(gpdu.len() as u64));
    g.bench_function("gtpu_gpdu", |b| b.iter(|| gtp::decode_u(black_box(&gpdu))));
    g.finish();
}

/// A DATA chunk (B and E: a whole user message) of stream 1, PPID M3UA, carrying `payload`.
fn data_chunk(tsn: u32, payload: &[u8]) -> Vec<u8> {
    let mut c = vec![sctp::CHUNK_DATA, 3];
    c.extend_from_slice(&((sctp::DATA_HEADER_LEN + payload.len()) as u16).to_be_bytes());
    c.extend_from_slice(&tsn.to_be_bytes());
    c.extend_from_slice(&[0, 1, 0, 0]);
    c.extend_from_slice(&PPID_M3UA.to_be_bytes());
    c.extend_from_slice(payload);
    c
}

const SRC: [u8; 4] = [192, 0, 2, 1];
const DST: [u8; 4] = [192, 0, 2, 2];

fn assoc() -> AssocKey {
    AssocKey {
        src: IpAddr::V4(Ipv4Addr::from(SRC)),
        src_port: 2905,
        dst: IpAddr::V4(Ipv4Addr::from(DST)),
        dst_port: 2905,
        vtag: 7,
    }
}

/// One chunk through the reassembler, as `inspect::Engine::decode_sctp` feeds an authenticated
/// chunk: its user message out.
#[inline(never)]
fn sctp_feed_step(r: &mut sctp::Reassembler, key: AssocKey, chunk: &[u8]) -> usize {
    let Some(d) = ChunkSlice::from_slice(chunk).ok().and_then(|c| c.data()) else { return 0 };
    match r.feed(1, key, &d) {
        Ok(Fed::Message(m)) => m.data.len(),
        _ => 0,
    }
}

/// A TCP segment (20-byte header, ACK|PSH, checksum filled in for SRC → DST) carrying `payload`.
fn tcp_segment(seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0x0f, 0x1c, 0x9c, 0x40];
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 1, 0x50, tcp::ACK | tcp::PSH, 0xff, 0xff, 0, 0, 0, 0]);
    s.extend_from_slice(payload);
    set_tcp_checksum(&mut s);
    s
}

fn set_tcp_checksum(s: &mut [u8]) {
    s[16..18].copy_from_slice(&[0, 0]);
    let mut sum: u64 = 0;
    let mut words = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u64::from(c[0]) << 8 | u64::from(c.get(1).copied().unwrap_or(0));
        }
    };
    words(&SRC);
    words(&DST);
    words(&[0, 6]);
    words(&(s.len() as u32).to_be_bytes());
    words(s);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    s[16..18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// One TCP segment as `inspect` handles one on a Diameter port: the checksum (frame parsing),
/// then `decode_tcp`: the stream reassembler, the Diameter message reassembler and a lax decode
/// of each message. Returns the messages decoded.
#[inline(never)]
fn tcp_diameter_step(
    stream: &mut tcp::TcpReassembler,
    dia: &mut StreamReassembler,
    segment: &[u8],
) -> Vec<Result<diameter::LaxDiameterMessage, filter_dpi::DecodeError>> {
    let mut msgs = Vec::new();
    if !tcp::checksum_ok(&SRC, &DST, 6, segment) {
        return msgs;
    }
    let seq = u32::from_be_bytes([segment[4], segment[5], segment[6], segment[7]]);
    let payload = &segment[20..];
    let seg = tcp::Segment { seq, flags: segment[13], urgent_pointer: 0, payload };
    let starts = |p: &[u8]| {
        p.len() >= 4
            && p[0] == diameter::VERSION
            && u32::from_be_bytes([0, p[1], p[2], p[3]]) as usize >= diameter::HEADER_LEN
    };
    let pushed = stream.push_framed(&seg, starts);
    if pushed.reset || pushed.gap {
        *dia = StreamReassembler::new();
    }
    if !pushed.deliver.is_empty() {
        let _ = dia.push(&pushed.deliver, |m| msgs.push(diameter::decode_lax(m)));
    }
    msgs
}

/// Per-message transport work on one advancing SCTP association and one advancing TCP
/// connection: each iteration feeds a fresh TSN / sequence number (the input is updated in
/// place, four bytes, inside the timed loop).
fn transport(c: &mut Criterion) {
    let sai = hex(M3UA_SAI);
    let ulr = hex(DIAMETER_ULR);
    let mut g = c.benchmark_group("transport");

    let mut chunk = data_chunk(1, &sai);
    let mut r = sctp::Reassembler::new();
    assert_eq!(sctp_feed_step(&mut r, assoc(), &chunk), sai.len());
    let mut tsn = 1u32;
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("sctp_feed_m3ua_sai", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                tsn = tsn.wrapping_add(1);
                chunk[4..8].copy_from_slice(&tsn.to_be_bytes());
                black_box(sctp_feed_step(&mut r, assoc(), black_box(&chunk)));
            }
            start.elapsed()
        })
    });

    // Segments are stamped with their sequence number and checksum outside the timed part,
    // a batch at a time; segment k starts at 1000 + k * 260, so every one is new data in order.
    const BATCH: usize = 1024;
    let step = ulr.len() as u32;
    let mut segs: Vec<Vec<u8>> = (0..BATCH).map(|_| tcp_segment(0, &ulr)).collect();
    let mut stream = tcp::TcpReassembler::new();
    let mut dia = StreamReassembler::new();
    let mut k = 0u32;
    let mut stamp = |segs: &mut [Vec<u8>]| {
        for s in segs {
            s[4..8].copy_from_slice(&1000u32.wrapping_add(k.wrapping_mul(step)).to_be_bytes());
            set_tcp_checksum(s);
            k = k.wrapping_add(1);
        }
    };
    stamp(&mut segs[..1]);
    let m = tcp_diameter_step(&mut stream, &mut dia, &segs[0]);
    assert!(matches!(m.as_slice(), [Ok(l)] if l.stop.is_none() && l.message.command_code == 316), "{m:?}");
    g.throughput(Throughput::Bytes(ulr.len() as u64));
    g.bench_function("tcp_diameter_ulr", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH as u64) as usize;
                stamp(&mut segs[..n]);
                let start = Instant::now();
                for s in &segs[..n] {
                    let m = tcp_diameter_step(&mut stream, &mut dia, black_box(s));
                    debug_assert_eq!(m.len(), 1);
                    black_box(m);
                }
                spent += start.elapsed();
                left -= n as u64;
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, decode, transport);
criterion_main!(benches);
