//! Classic pcap files: read (either byte order, micro- or nanosecond stamps), write, and turn
//! Linux cooked (SLL) captures into Ethernet frames. pcapng files are converted first with
//! `editcap -F pcap` (Wireshark's own tool), see [`load_ethernet`].

use std::path::Path;

pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_LINUX_SLL: u32 = 113;

#[derive(Clone, Debug)]
pub struct Packet {
    pub sec: u32,
    pub usec: u32,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Classic pcap, either byte order, micro- or nanosecond stamps.
pub fn read_pcap(path: &Path) -> (u32, Vec<Packet>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(b.len() >= 24, "{}: not a pcap file", path.display());
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    let (le, nsec) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        m => panic!("{}: bad pcap magic {m:#x}", path.display()),
    };
    let u32_at = |o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }
    };
    let linktype = u32_at(20) & 0x0fff_ffff;
    let mut packets = Vec::new();
    let mut o = 24;
    while o + 16 <= b.len() {
        let incl = u32_at(o + 8) as usize;
        assert!(o + 16 + incl <= b.len(), "{}: truncated record", path.display());
        let frac = u32_at(o + 4);
        packets.push(Packet {
            sec: u32_at(o),
            usec: if nsec { frac / 1000 } else { frac },
            orig_len: u32_at(o + 12),
            data: b[o + 16..o + 16 + incl].to_vec(),
        });
        o += 16 + incl;
    }
    (linktype, packets)
}

pub fn write_pcap(path: &Path, packets: &[Packet]) {
    use sigwall::inspect::io::{pcap_header, pcap_record_header};
    let mut b = pcap_header();
    for p in packets {
        let ns = p.sec as u64 * 1_000_000_000 + p.usec as u64 * 1000;
        b.extend_from_slice(&pcap_record_header(ns, p.data.len() as u32, p.orig_len));
        b.extend_from_slice(&p.data);
    }
    std::fs::write(path, b).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Locally administered MACs for frames whose capture has no Ethernet header: SLL records only
/// the sender's address, and none at all for some devices.
pub const SLL_DST_MAC: [u8; 6] = [0x02, 0x53, 0x4c, 0x4c, 0x00, 0x02];
pub const SLL_SRC_MAC: [u8; 6] = [0x02, 0x53, 0x4c, 0x4c, 0x00, 0x01];

/// Ethernet frames from a capture of link type Ethernet or Linux cooked v1 (SLL: packet type,
/// ARPHRD type, address length, 8 address bytes, protocol; then the network layer).
pub fn to_ethernet(linktype: u32, packets: Vec<Packet>) -> Vec<Packet> {
    match linktype {
        LINKTYPE_ETHERNET => packets,
        LINKTYPE_LINUX_SLL => packets
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let d = &p.data;
                assert!(d.len() >= 16, "SLL frame {} shorter than its header", i + 1);
                let halen = u16::from_be_bytes([d[4], d[5]]);
                let proto = u16::from_be_bytes([d[14], d[15]]);
                assert!(proto >= 0x0600, "SLL frame {}: protocol {proto:#06x} is not an EtherType", i + 1);
                let mut e = SLL_DST_MAC.to_vec();
                if halen == 6 {
                    e.extend_from_slice(&d[6..12]);
                } else {
                    e.extend_from_slice(&SLL_SRC_MAC);
                }
                e.extend_from_slice(&proto.to_be_bytes());
                e.extend_from_slice(&d[16..]);
                Packet { orig_len: p.orig_len - 2, data: e, ..p }
            })
            .collect(),
        other => panic!("link type {other} is not supported by the replay test"),
    }
}

/// Ethernet frames of any capture tshark can read: converted to classic pcap with editcap into
/// `tmp` first.
pub fn load_ethernet(capture: &Path, tmp: &Path) -> Vec<Packet> {
    let out = std::process::Command::new("editcap")
        .args(["-F", "pcap"])
        .arg(capture)
        .arg(tmp)
        .output()
        .unwrap_or_else(|e| panic!("editcap (from tshark's package) is needed: {e}"));
    assert!(out.status.success(), "editcap {}: {}", capture.display(), String::from_utf8_lossy(&out.stderr));
    let (linktype, packets) = read_pcap(tmp);
    to_ethernet(linktype, packets)
}
