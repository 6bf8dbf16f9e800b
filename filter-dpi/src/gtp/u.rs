//! GTP-U (TS 29.281): the GTPv1 header of [`super::v1`] on port 2152, and for a G-PDU the inner
//! IP packet's header: version, addresses, protocol, UDP ports, and whether the inner packet is
//! itself GTP (GTP-in-GTP, an FS.20 attack pattern).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::v1;
use crate::bytes::be16;
use crate::{DecodeError, Layer};

pub const MSG_ECHO_REQUEST: u8 = 1;
pub const MSG_ECHO_RESPONSE: u8 = 2;
pub const MSG_ERROR_INDICATION: u8 = 26;
pub const MSG_SUPPORTED_EXT_HEADERS: u8 = 31;
pub const MSG_TUNNEL_STATUS: u8 = 253;
pub const MSG_END_MARKER: u8 = 254;
pub const MSG_G_PDU: u8 = 255;

pub const PORT_GTP_C: u16 = 2123;
pub const PORT_GTP_U: u16 = 2152;

/// IPv6 extension headers followed to find the inner transport header.
pub const MAX_IPV6_EXT_HEADERS: usize = 6;

/// The inner IP header of a G-PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnerIp {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol, or the IPv6 upper-layer header after the extension headers.
    pub protocol: u8,
    /// Set for a non-first fragment: there is no transport header to read.
    pub later_fragment: bool,
    /// UDP source and destination ports, when the inner packet is UDP and its header is there.
    pub udp_ports: Option<(u16, u16)>,
    /// Offset of the transport header in the T-PDU.
    pub transport_at: usize,
}

impl InnerIp {
    /// Parses the IP header at the start of a T-PDU. `Ok(None)` if the T-PDU is not IP (a PDU
    /// session of Ethernet or unstructured type).
    pub fn parse(tpdu: &[u8]) -> Result<Option<InnerIp>, DecodeError> {
        const L: Layer = Layer::Ip;
        let Some(&first) = tpdu.first() else { return Ok(None) };
        match first >> 4 {
            4 => {
                DecodeError::need(L, 20, tpdu.len())?;
                let ihl = usize::from(first & 0x0f) * 4;
                if ihl < 20 {
                    return Err(DecodeError::Content { layer: L, what: "inner IPv4 header length below 20" });
                }
                DecodeError::need(L, ihl, tpdu.len())?;
                let addr = |at: usize| -> Ipv4Addr {
                    match tpdu.get(at..at + 4) {
                        Some(&[a, b, c, d]) => Ipv4Addr::new(a, b, c, d),
                        _ => Ipv4Addr::UNSPECIFIED,
                    }
                };
                let frag = be16(tpdu, 6).unwrap_or(0);
                let later_fragment = frag & 0x1fff != 0;
                let protocol = tpdu.get(9).copied().unwrap_or(0);
                let mut ip = InnerIp {
                    version: 4,
                    src: IpAddr::V4(addr(12)),
                    dst: IpAddr::V4(addr(16)),
                    protocol,
                    later_fragment,
                    udp_ports: None,
                    transport_at: ihl,
                };
                if protocol == 17 && !later_fragment {
                    ip.udp_ports = udp_ports(tpdu, ihl);
                }
                Ok(Some(ip))
            }
            6 => {
                DecodeError::need(L, 40, tpdu.len())?;
                let addr = |at: usize| -> Ipv6Addr {
                    tpdu.get(at..at + 16)
                        .and_then(|s| <[u8; 16]>::try_from(s).ok())
                        .map(Ipv6Addr::from)
                        .unwrap_or(Ipv6Addr::UNSPECIFIED)
                };
                let mut next = tpdu.get(6).copied().unwrap_or(0);
                let mut at = 40usize;
                let mut later_fragment = false;
                let mut chased = 0;
                // Hop-by-hop, routing, fragment, destination options: bounded.
                while matches!(next, 0 | 43 | 44 | 60) && chased < MAX_IPV6_EXT_HEADERS {
                    let Some(&[nh, hlen]) = tpdu.get(at..at + 2) else { break };
                    let len = if next == 44 {
                        // A fragment header cut short says nothing about the offset: not a later fragment.
                        later_fragment = be16(tpdu, at + 2).is_some_and(|f| f & 0xfff8 != 0);
                        8
                    } else {
                        (usize::from(hlen) + 1) * 8
                    };
                    next = nh;
                    at += len;
                    chased += 1;
                }
                let mut ip = InnerIp {
                    version: 6,
                    src: IpAddr::V6(addr(8)),
                    dst: IpAddr::V6(addr(24)),
                    protocol: next,
                    later_fragment,
                    udp_ports: None,
                    transport_at: at,
                };
                if next == 17 && !later_fragment {
                    ip.udp_ports = udp_ports(tpdu, at);
                }
                Ok(Some(ip))
            }
            _ => Ok(None),
        }
    }
}

fn udp_ports(b: &[u8], at: usize) -> Option<(u16, u16)> {
    Some((be16(b, at)?, be16(b, at.checked_add(2)?)?))
}

/// True if `payload` (a UDP payload) starts with a plausible GTP header: GTPv1 with PT = 1 or
/// GTPv2, the mandatory header present, and a length that fits the payload unless the payload
/// was cut short (`complete = false`: a first fragment or a snap length).
pub fn looks_like_gtp(payload: &[u8], complete: bool) -> bool {
    let Some(&flags) = payload.first() else { return false };
    let (hl, after_length) = match flags >> 5 {
        1 if flags & v1::FLAG_PT != 0 => (v1::HEADER_LEN, v1::HEADER_LEN),
        2 => (super::v2::HEADER_LEN, 4),
        _ => return false,
    };
    // Both headers are longer than the Length field's end, so a payload without it fails anyway.
    let Some(length) = be16(payload, 2) else { return false };
    let total = usize::from(length) + after_length;
    payload.len() >= hl && payload.get(1).is_some_and(|&t| t != 0) && (!complete || total <= payload.len())
}

/// GTP-in-GTP: the inner packet is UDP to or from 2123 or 2152 and its payload looks like GTP.
pub fn inner_is_gtp(tpdu: &[u8], inner: &InnerIp, complete: bool) -> bool {
    let Some((sp, dp)) = inner.udp_ports else { return false };
    if ![sp, dp].iter().any(|p| *p == PORT_GTP_C || *p == PORT_GTP_U) {
        return false;
    }
    let payload = tpdu.get(inner.transport_at + 8..).unwrap_or(&[]);
    looks_like_gtp(payload, complete)
}

#[cfg(test)]
pub(crate) fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut v = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
    v[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_ipv4_udp() {
        let p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, b"q");
        let ip = InnerIp::parse(&p).unwrap().unwrap();
        assert_eq!(ip.version, 4);
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!((ip.protocol, ip.udp_ports), (17, Some((1234, 53))));
        assert!(!inner_is_gtp(&p, &ip, true));
    }

    #[test]
    fn inner_ipv6_with_extension_header() {
        let mut p = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
        p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p.extend_from_slice(&Ipv6Addr::UNSPECIFIED.octets());
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]); // hop-by-hop, 8 bytes, then UDP
        p.extend_from_slice(&[0x08, 0x68, 0x08, 0x68, 0, 8, 0, 0]);
        let ip = InnerIp::parse(&p).unwrap().unwrap();
        assert_eq!((ip.version, ip.protocol, ip.udp_ports), (6, 17, Some((2152, 2152))));
        assert_eq!(ip.src, IpAddr::V6(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn gtp_in_gtp() {
        let inner_gtp = v1::encode(0, MSG_G_PDU, 9, None, &[], &[0x45]);
        let p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 2152, 2152, &inner_gtp);
        let ip = InnerIp::parse(&p).unwrap().unwrap();
        assert!(inner_is_gtp(&p, &ip, true));
        let v2 = super::super::v2::encode(32, Some(0), 1, &[]);
        let p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 40000, 2123, &v2);
        let ip = InnerIp::parse(&p).unwrap().unwrap();
        assert!(inner_is_gtp(&p, &ip, true));
        // Right port, not GTP.
        let p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 40000, 2123, b"hello world");
        let ip = InnerIp::parse(&p).unwrap().unwrap();
        assert!(!inner_is_gtp(&p, &ip, true));
    }

    #[test]
    fn not_ip_and_errors() {
        assert_eq!(InnerIp::parse(&[]).unwrap(), None);
        assert_eq!(InnerIp::parse(&[0x00, 1, 2]).unwrap(), None);
        assert!(InnerIp::parse(&[0x45, 0, 0]).is_err());
        assert!(InnerIp::parse(&[0x44; 20]).is_err());
        assert!(InnerIp::parse(&[0x60; 39]).is_err());
    }
}
