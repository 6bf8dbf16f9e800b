//! Signaling classes and the protocol numbers that define them.

/// Traffic class of a packet. The discriminant indexes the counter array (append only).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    NonSignaling = 0,
    /// SS7 over IP: SCTP DATA with PPID M2UA/M3UA/SUA/M2PA, or SCTP to/from a `sigtran` port.
    Sigtran = 1,
    /// Diameter: SCTP PPID 46/47, or SCTP/TCP to/from a `diameter` port.
    Diameter = 2,
    GtpC = 3,
    GtpU = 4,
    /// SCTP that is neither SIGTRAN nor Diameter (S1AP, NGAP, X2AP, ...): only the `sctp`
    /// wildcard allows it.
    Sctp = 5,
    /// No class could be given: a later IP fragment, or a packet too broken to reach its
    /// transport header.
    Unclassified = 6,
}

pub const CLASS_COUNT: usize = 7;

impl Class {
    pub const ALL: [Class; CLASS_COUNT] = [
        Class::NonSignaling,
        Class::Sigtran,
        Class::Diameter,
        Class::GtpC,
        Class::GtpU,
        Class::Sctp,
        Class::Unclassified,
    ];

    #[inline(always)]
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Name used in policy files, stats and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Class::NonSignaling => "non-signaling",
            Class::Sigtran => "sigtran",
            Class::Diameter => "diameter",
            Class::GtpC => "gtp-c",
            Class::GtpU => "gtp-u",
            Class::Sctp => "sctp",
            Class::Unclassified => "unclassified",
        }
    }
}

/// SCTP payload protocol identifiers (IANA) that mean SIGTRAN: M2UA, M3UA, SUA, M2PA.
pub const SIGTRAN_PPIDS: [u32; 4] = [2, 3, 4, 5];
/// Diameter (46) and Diameter over DTLS (47).
pub const DIAMETER_PPIDS: [u32; 2] = [46, 47];

/// Class of an SCTP packet from its first DATA chunk's PPID (if any) and whether its port (see
/// `filter-ebpf`'s `port_class`: the destination port, the source port only towards an
/// ephemeral port) is a configured Diameter or SIGTRAN port.
///
/// The port names the receiver (the stack bound to it parses the payload whatever the PPID
/// says), the PPID is the sender's label. A configured port decides unless the PPID is not 0 and
/// names something else: then the packet is plain `Sctp`, which only the `sctp` wildcard allows
/// (review M1 and the reviewer's PPID laundering: a Diameter request labelled M3UA, PPID 3, sent
/// to the Diameter port must not pass as the SIGTRAN a peer may send; S1AP to a SIGTRAN port is
/// not SIGTRAN). Without a configured port the PPID decides; PPID 0 ("unspecified", which some
/// SIGTRAN stacks send) leaves the ports to decide.
#[inline(always)]
pub fn sctp_class(ppid: Option<u32>, diameter_port: bool, sigtran_port: bool) -> Class {
    let by_port = if diameter_port {
        Class::Diameter
    } else if sigtran_port {
        Class::Sigtran
    } else {
        Class::Sctp
    };
    let Some(p) = ppid else { return by_port };
    if p == 0 {
        return by_port;
    }
    // Two compares, not `(2..=5).contains(&p)`: this runs inside the XDP program's SCTP
    // chunk walk, and the range form compiled to code whose verifier states did not prune
    // (the load hit the 1M-instruction limit).
    #[expect(clippy::manual_range_contains, reason = "verifier budget; see above")]
    let by_ppid = if p >= 2 && p <= 5 {
        Class::Sigtran
    } else if p == 46 || p == 47 {
        Class::Diameter
    } else {
        Class::Sctp
    };
    // A configured port and a PPID of another protocol: the label and the receiver disagree.
    if by_port != Class::Sctp && by_ppid != by_port {
        return Class::Sctp;
    }
    by_ppid
}

/// The hash that samples SCTP and TCP per flow (review M5): the 32-bit word of both ports and the
/// low 32 bits of the source and destination addresses, each as loaded from the packet (native
/// order), mixed (murmur3's finaliser) so that `hash % N` spreads flows evenly. The XDP fast and
/// general paths compute it from the same bytes, so a flow is never split between them.
#[inline(always)]
pub fn flow_sample_hash(ports: u32, src: u32, dst: u32) -> u32 {
    let mut x = ports ^ src ^ dst.rotate_left(16);
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

/// GTP message types valid on GTP-U (TS 29.281 §6.1): echo request/response, error indication,
/// supported extension headers notification, tunnel status, end marker, G-PDU.
#[inline(always)]
pub fn gtpu_type_valid(t: u8) -> bool {
    matches!(t, 1 | 2 | 26 | 31 | 253 | 254 | 255)
}

/// Sanity of a GTP-C header (TS 29.274 for v2, TS 29.060 for v1). `udp_payload` is the number of
/// bytes after the UDP header; `whole` is false for a first IP fragment, whose tail is elsewhere.
#[inline(always)]
pub fn gtpc_header_ok(flags: u8, msg_type: u8, length: u16, udp_payload: u32, whole: bool) -> bool {
    let version = flags >> 5;
    let length = length as u32;
    match version {
        1 => {
            // GTPv1-C: PT=1, never a G-PDU; the length counts the bytes after the 8-byte header.
            if flags & 0x10 == 0 || msg_type == 0 || msg_type == 255 {
                return false;
            }
            !whole || 8 + length == udp_payload
        }
        2 => {
            // GTPv2-C: the length counts the bytes after the first 4; with the piggyback flag a
            // second message follows, so it may be shorter than the datagram.
            if msg_type == 0 || length < 4 {
                return false;
            }
            let piggyback = flags & 0x10 != 0;
            !whole || if piggyback { 4 + length <= udp_payload } else { 4 + length == udp_payload }
        }
        _ => false,
    }
}

/// Sanity of a GTP-U header (TS 29.281): version 1, PT=1, a GTP-U message type, and the length
/// matches the datagram.
#[inline(always)]
pub fn gtpu_header_ok(flags: u8, msg_type: u8, length: u16, udp_payload: u32, whole: bool) -> bool {
    if flags >> 5 != 1 || flags & 0x10 == 0 || !gtpu_type_valid(msg_type) {
        return false;
    }
    !whole || 8 + length as u32 == udp_payload
}
