//! A frame builder for every class and malformation sigwall distinguishes: used by the
//! BPF_PROG_TEST_RUN tables, the veth tests, the demo and the benchmarks, so all of them send
//! the same bytes.
//!
//! Checksums (IPv4 header, UDP, TCP, SCTP CRC32c) are computed, so captures of these frames
//! decode cleanly in tshark.

use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4 {
    /// SCTP common header plus chunks (each chunk fully encoded, see [`chunk`]).
    Sctp {
        sport: u16,
        dport: u16,
        chunks: Vec<Vec<u8>>,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    Tcp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    /// ICMP echo request (ICMPv6 for IPv6 frames).
    Icmp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fragment {
    #[default]
    None,
    /// Offset 0 with more-fragments set.
    First,
    /// A later fragment (offset 1480 bytes, more-fragments clear).
    Later,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Outer to inner TPIDs: `[0x8100]` for 802.1Q, `[0x88a8, 0x8100]` for QinQ.
    pub vlans: Vec<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 only: add a 4-byte options field (NOP NOP NOP EOL), so IHL is 6.
    pub ipv4_options: bool,
    /// IPv6 only: extension headers to put before the transport (0 hop-by-hop, 43 routing,
    /// 60 destination options; 44 fragment is added by `fragment`).
    pub ipv6_ext: Vec<u8>,
    pub fragment: Fragment,
    pub l4: L4,
}

pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

impl Frame {
    pub fn new(src: IpAddr, dst: IpAddr, l4: L4) -> Self {
        Frame { vlans: vec![], src, dst, ipv4_options: false, ipv6_ext: vec![], fragment: Fragment::None, l4 }
    }

    pub fn vlans(mut self, tpids: &[u16]) -> Self {
        self.vlans = tpids.to_vec();
        self
    }

    pub fn fragment(mut self, f: Fragment) -> Self {
        self.fragment = f;
        self
    }

    pub fn with_ipv4_options(mut self) -> Self {
        self.ipv4_options = true;
        self
    }

    pub fn with_ipv6_ext(mut self, ext: &[u8]) -> Self {
        self.ipv6_ext = ext.to_vec();
        self
    }

    pub fn proto(&self) -> u8 {
        match (&self.l4, self.src) {
            (L4::Sctp { .. }, _) => 132,
            (L4::Udp { .. }, _) => 17,
            (L4::Tcp { .. }, _) => 6,
            (L4::Icmp, IpAddr::V4(_)) => 1,
            (L4::Icmp, IpAddr::V6(_)) => 58,
        }
    }

    /// The transport segment, checksummed.
    pub fn l4_bytes(&self) -> Vec<u8> {
        let pseudo = |proto: u8, len: usize| pseudo_header(self.src, self.dst, proto, len);
        match &self.l4 {
            L4::Sctp { sport, dport, chunks } => {
                let mut b = Vec::new();
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&0x1234_5678u32.to_be_bytes()); // verification tag
                b.extend_from_slice(&[0; 4]);
                for c in chunks {
                    b.extend_from_slice(c);
                }
                let crc = crc32c(&b);
                b[8..12].copy_from_slice(&crc.to_le_bytes());
                b
            }
            L4::Udp { sport, dport, payload } => {
                let len = 8 + payload.len();
                let mut b = Vec::with_capacity(len);
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&(len as u16).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(payload);
                let mut sum = checksum(&[&pseudo(17, len), &b]);
                if sum == 0 {
                    sum = 0xffff;
                }
                b[6..8].copy_from_slice(&sum.to_be_bytes());
                b
            }
            L4::Tcp { sport, dport, payload } => {
                let mut b = Vec::new();
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&1000u32.to_be_bytes()); // seq
                b.extend_from_slice(&2000u32.to_be_bytes()); // ack
                b.push(5 << 4);
                b.push(0x18); // PSH ACK
                b.extend_from_slice(&65535u16.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 0]);
                b.extend_from_slice(payload);
                let sum = checksum(&[&pseudo(6, b.len()), &b]);
                b[16..18].copy_from_slice(&sum.to_be_bytes());
                b
            }
            L4::Icmp => {
                let ty = if self.src.is_ipv4() { 8 } else { 128 };
                let mut b = vec![ty, 0, 0, 0, 0, 1, 0, 1];
                b.extend_from_slice(b"sigwall-ping");
                let sum = if self.src.is_ipv4() { checksum(&[&b]) } else { checksum(&[&pseudo(58, b.len()), &b]) };
                b[2..4].copy_from_slice(&sum.to_be_bytes());
                b
            }
        }
    }

    /// The whole Ethernet frame.
    pub fn bytes(&self) -> Vec<u8> {
        self.with_l4(&self.l4_bytes())
    }

    /// The frame around an arbitrary transport segment (for truncated or altered transports
    /// whose IP lengths are still consistent).
    pub fn with_l4(&self, l4: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(64 + l4.len());
        f.extend_from_slice(&DST_MAC);
        f.extend_from_slice(&SRC_MAC);
        for (i, tpid) in self.vlans.iter().enumerate() {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(100 + i as u16).to_be_bytes()); // TCI: VLAN 100, 101
        }
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let opts: &[u8] = if self.ipv4_options { &[1, 1, 1, 0] } else { &[] };
                let hlen = 20 + opts.len();
                let total = hlen + l4.len();
                let frag: u16 = match self.fragment {
                    Fragment::None => 0x4000, // DF
                    Fragment::First => 0x2000,
                    Fragment::Later => 1480 / 8,
                };
                let mut h = vec![0x40 | (hlen / 4) as u8, 0];
                h.extend_from_slice(&(total as u16).to_be_bytes());
                h.extend_from_slice(&0x2a2au16.to_be_bytes());
                h.extend_from_slice(&frag.to_be_bytes());
                h.extend_from_slice(&[64, self.proto(), 0, 0]);
                h.extend_from_slice(&s.octets());
                h.extend_from_slice(&d.octets());
                h.extend_from_slice(opts);
                let sum = checksum(&[&h]);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                f.extend_from_slice(&h);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                let mut chain: Vec<u8> = self.ipv6_ext.clone();
                if self.fragment != Fragment::None {
                    chain.push(44);
                }
                let mut ext = Vec::new();
                for (i, ty) in chain.iter().enumerate() {
                    let next = chain.get(i + 1).copied().unwrap_or(self.proto());
                    match ty {
                        44 => {
                            let off: u16 = match self.fragment {
                                Fragment::Later => (1448 / 8) << 3,
                                _ => 1, // M flag
                            };
                            ext.extend_from_slice(&[next, 0]);
                            ext.extend_from_slice(&off.to_be_bytes());
                            ext.extend_from_slice(&0xabcd_0001u32.to_be_bytes());
                        }
                        _ => {
                            // 8 bytes: next header, length 0, then a PadN option of 4 zero bytes.
                            ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                        }
                    }
                }
                let first = chain.first().copied().unwrap_or(self.proto());
                let payload = ext.len() + l4.len();
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(payload as u16).to_be_bytes());
                f.extend_from_slice(&[first, 64]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                f.extend_from_slice(&ext);
            }
            _ => panic!("source and destination must be the same family"),
        }
        f.extend_from_slice(l4);
        f
    }
}

/// An SCTP chunk: header plus value, padded to 4 bytes (the length field excludes the padding).
pub fn chunk(ty: u8, flags: u8, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut c = vec![ty, flags];
    c.extend_from_slice(&(len as u16).to_be_bytes());
    c.extend_from_slice(value);
    while c.len() % 4 != 0 {
        c.push(0);
    }
    c
}

/// A complete (B and E set) DATA chunk.
pub fn data_chunk(ppid: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&1u32.to_be_bytes()); // TSN
    v.extend_from_slice(&0u16.to_be_bytes()); // stream
    v.extend_from_slice(&0u16.to_be_bytes()); // stream sequence
    v.extend_from_slice(&ppid.to_be_bytes());
    v.extend_from_slice(payload);
    chunk(0, 0x03, &v)
}

/// A SACK chunk (cumulative TSN ack, receiver window, no gap blocks).
pub fn sack_chunk() -> Vec<u8> {
    let mut v = 0u32.to_be_bytes().to_vec();
    v.extend_from_slice(&65536u32.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    chunk(3, 0, &v)
}

/// A HEARTBEAT chunk (a control chunk with no PPID).
pub fn heartbeat_chunk() -> Vec<u8> {
    chunk(4, 0, &chunk(1, 0, b"sigwall-hb"))
}

/// An M3UA DATA message (class 1, type 1) with a Protocol Data parameter carrying a short
/// SCCP payload.
pub fn m3ua_data() -> Vec<u8> {
    let mut pd = Vec::new();
    pd.extend_from_slice(&1000u32.to_be_bytes()); // OPC
    pd.extend_from_slice(&2000u32.to_be_bytes()); // DPC
    pd.extend_from_slice(&[3, 2, 0, 0]); // SI=SCCP, NI, MP, SLS
    pd.extend_from_slice(&[0x09, 0x81, 0x03, 0x05, 0x07, 0x02, 0x42, 0x08, 0x02, 0x42, 0x06]);
    let mut param = Vec::new();
    param.extend_from_slice(&0x0210u16.to_be_bytes());
    param.extend_from_slice(&((4 + pd.len()) as u16).to_be_bytes());
    param.extend_from_slice(&pd);
    while param.len() % 4 != 0 {
        param.push(0);
    }
    let mut m = vec![1, 0, 1, 1];
    m.extend_from_slice(&((8 + param.len()) as u32).to_be_bytes());
    m.extend_from_slice(&param);
    m
}

/// A TCAP Begin (otid 0x2a) with a dialogue request for the MAP application context
/// 0.4.0.0.1.0.`context`.`version` and one Invoke of local operation `op` (invoke id 1) whose
/// parameter is the element `param` (identifier, length and contents; short form lengths).
pub fn tcap_begin_invoke(op: u8, context: u8, version: u8, param: &[u8]) -> Vec<u8> {
    // dialoguePortion: EXTERNAL { dialogue-as-id, single-ASN1-type [0] AARQ { version1,
    // application-context-name [1] OID } }.
    let dialogue = [
        0x6b, 0x1e, 0x28, 0x1c, 0x06, 0x07, 0x00, 0x11, 0x86, 0x05, 0x01, 0x01, 0x01, 0xa0, 0x11, 0x60, 0x0f, 0x80,
        0x02, 0x07, 0x80, 0xa1, 0x09, 0x06, 0x07, 0x04, 0x00, 0x00, 0x01, 0x00, context, version,
    ];
    let mut invoke = vec![0x02, 0x01, 0x01, 0x02, 0x01, op];
    invoke.extend_from_slice(param);
    let mut comp = vec![0xa1, invoke.len() as u8];
    comp.extend_from_slice(&invoke);
    let mut comps = vec![0x6c, comp.len() as u8];
    comps.extend_from_slice(&comp);
    let mut body = vec![0x48, 0x04, 0x00, 0x00, 0x00, 0x2a];
    body.extend_from_slice(&dialogue);
    body.extend_from_slice(&comps);
    let mut m = vec![0x62, body.len() as u8];
    m.extend_from_slice(&body);
    m
}

/// IMSI 001010000000001 as MAP encodes it (TBCD, 8 octets).
pub const MAP_IMSI: [u8; 8] = [0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0xf1];

/// sendAuthenticationInfo's argument (v3): `SEQUENCE { imsi [0], numberOfRequestedVectors }`.
pub fn map_sai_arg() -> Vec<u8> {
    let mut v = vec![0x30, 13, 0x80, 8];
    v.extend_from_slice(&MAP_IMSI);
    v.extend_from_slice(&[0x02, 0x01, 0x01]);
    v
}

/// anyTimeInterrogation's argument: subscriberIdentity (IMSI), requestedInfo
/// (locationInformation), gsmSCF-Address.
pub fn map_ati_arg() -> Vec<u8> {
    let mut id = vec![0xa0, 10, 0x80, 8];
    id.extend_from_slice(&MAP_IMSI);
    let mut v = id;
    v.extend_from_slice(&[0xa1, 0x02, 0x80, 0x00]);
    v.extend_from_slice(&[0x83, 0x04, 0x91, 0x44, 0x77, 0x58]);
    let mut seq = vec![0x30, v.len() as u8];
    seq.extend_from_slice(&v);
    seq
}

/// An M3UA DATA message carrying an SCCP UDT (class 0) to SSN 6, from calling GT 4477850000
/// (E.164, international) with SSN 7, whose data is `tcap`.
pub fn m3ua_sccp(tcap: &[u8]) -> Vec<u8> {
    m3ua_sccp_from(tcap, "4477850000")
}

/// [`m3ua_sccp`] with a calling party global title of these digits (GTI 4, E.164, SSN 7).
pub fn m3ua_sccp_from(tcap: &[u8], calling_gt: &str) -> Vec<u8> {
    let called = [0x42, 0x06];
    let digits: Vec<u8> = calling_gt.bytes().map(|b| b - b'0').collect();
    // Numbering plan E.164 (1) and encoding scheme BCD odd (1) or even (2).
    let es = if digits.len() % 2 == 1 { 1 } else { 2 };
    let mut calling = vec![0x12, 0x07, 0x00, 0x10 | es, 0x04];
    calling.extend(digits.chunks(2).map(|p| p[0] | (p.get(1).copied().unwrap_or(0) << 4)));
    // Type, class, then the three pointers (each relative to its own octet).
    let mut sccp = vec![0x09, 0x00, 3, (3 + called.len()) as u8, (3 + called.len() + calling.len()) as u8];
    sccp.push(called.len() as u8);
    sccp.extend_from_slice(&called);
    sccp.push(calling.len() as u8);
    sccp.extend_from_slice(&calling);
    sccp.push(tcap.len() as u8);
    sccp.extend_from_slice(tcap);
    let mut pd = Vec::new();
    pd.extend_from_slice(&1000u32.to_be_bytes()); // OPC
    pd.extend_from_slice(&2000u32.to_be_bytes()); // DPC
    pd.extend_from_slice(&[3, 2, 0, 0]); // SI=SCCP, NI, MP, SLS
    pd.extend_from_slice(&sccp);
    let mut param = 0x0210u16.to_be_bytes().to_vec();
    param.extend_from_slice(&((4 + pd.len()) as u16).to_be_bytes());
    param.extend_from_slice(&pd);
    while !param.len().is_multiple_of(4) {
        param.push(0);
    }
    let mut m = vec![1, 0, 1, 1];
    m.extend_from_slice(&((8 + param.len()) as u32).to_be_bytes());
    m.extend_from_slice(&param);
    m
}

/// A Diameter request header with one Origin-Host AVP.
pub fn diameter_message(command: u32, app: u32) -> Vec<u8> {
    diameter_message_from(command, app, "mme.example.invalid")
}

/// A Diameter request header with one Origin-Host AVP naming `origin_host`.
pub fn diameter_message_from(command: u32, app: u32, origin_host: &str) -> Vec<u8> {
    let host = origin_host.as_bytes();
    let mut avp = Vec::new();
    avp.extend_from_slice(&264u32.to_be_bytes());
    let avp_len = 8 + host.len();
    avp.push(0x40);
    avp.extend_from_slice(&(avp_len as u32).to_be_bytes()[1..]);
    avp.extend_from_slice(host);
    while avp.len() % 4 != 0 {
        avp.push(0);
    }
    let len = 20 + avp.len();
    let mut m = vec![1];
    m.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    m.push(0x80); // request
    m.extend_from_slice(&command.to_be_bytes()[1..]);
    m.extend_from_slice(&app.to_be_bytes());
    m.extend_from_slice(&0x1111_1111u32.to_be_bytes());
    m.extend_from_slice(&0x2222_2222u32.to_be_bytes());
    m.extend_from_slice(&avp);
    m
}

/// GTPv2-C message with a TEID and `ies` as its body.
pub fn gtpv2c(msg_type: u8, teid: u32, seq: u32, ies: &[u8]) -> Vec<u8> {
    let mut m = vec![0x48, msg_type];
    m.extend_from_slice(&((8 + ies.len()) as u16).to_be_bytes());
    m.extend_from_slice(&teid.to_be_bytes());
    m.extend_from_slice(&(seq << 8).to_be_bytes());
    m.extend_from_slice(ies);
    m
}

/// GTPv2-C Echo Request (no TEID) with a Recovery IE.
pub fn gtpv2c_echo() -> Vec<u8> {
    let ies = [3u8, 0, 1, 0, 7];
    let mut m = vec![0x40, 1];
    m.extend_from_slice(&((4 + ies.len()) as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 1, 0]);
    m.extend_from_slice(&ies);
    m
}

/// GTPv1-U G-PDU carrying `inner`.
pub fn gtpu(teid: u32, inner: &[u8]) -> Vec<u8> {
    let mut m = vec![0x30, 255];
    m.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    m.extend_from_slice(&teid.to_be_bytes());
    m.extend_from_slice(inner);
    m
}

/// A small inner IPv4/UDP packet for G-PDUs (user traffic, addresses in the test range).
pub fn inner_ipv4_udp() -> Vec<u8> {
    let f = Frame::new(
        "198.18.200.1".parse().unwrap(),
        "198.18.200.2".parse().unwrap(),
        L4::Udp { sport: 40000, dport: 53, payload: b"user-plane".to_vec() },
    );
    f.bytes()[14..].to_vec()
}

fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => {}
    }
    p
}

/// The Internet checksum over the concatenation of `parts` (each even-length except the last).
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
        if let [last] = chunks.remainder() {
            sum += (*last as u32) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// CRC32c (Castagnoli), as SCTP uses it (RFC 9260 appendix A).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_rfc_3720_vector() {
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        let f = Frame::new("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap(), L4::Icmp).bytes();
        assert_eq!(checksum(&[&f[14..34]]), 0);
    }
}
