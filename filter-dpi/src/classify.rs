//! What an SCTP user message is, by its own header, whatever PPID the sender put on it.
//!
//! The PPID is chosen by the sender and most receivers never look at it (freeDiameter's
//! `fd_sctp_recvmeta()` ignores it; RFC 4666 does not oblige an M3UA receiver to check it), so
//! decoding by PPID lets a sender hide a message from inspection (evasion review C5). The
//! receiver parses the bytes as whatever protocol it speaks; this module tells which of the
//! protocols sigwall decodes the bytes can be:
//!
//! - the SIGTRAN adaptation layers share a header (version 1, spare, class, type, 32-bit length)
//!   and are told apart by the message class: Transfer (1) is M3UA, connectionless and
//!   connection-oriented (7, 8) are SUA, MAUP and IIM (6, 10) are M2UA, 11 is M2PA. The
//!   management classes (0, 2, 3, 4, 9) are shared and carry no user data; they are given to
//!   the layer the PPID names, else M3UA (each decoder reports them as carrying nothing);
//! - Diameter: version 1, a 24-bit length of at least 20.
//!
//! Both headers start with version 1, so some byte strings are plausible as both. Each
//! candidate gets a score (its length field agrees with the user message; the bits that must
//! be zero are); [`Classification::best`] is the better one and [`Classification::candidates`]
//! lists all, best first. When [`Classification::is_ambiguous`] is true the caller should
//! decode every candidate: a receiver of either kind might act on the message.
//! Which protocol the receiver speaks is a property of the association (its configured port),
//! which only the caller knows; combine the two there.

use crate::bytes::{be24, be32};
use crate::sctp::{PPID_DIAMETER, PPID_DIAMETER_DTLS, PPID_M2PA, PPID_M2UA, PPID_M3UA, PPID_SUA};

/// A protocol an SCTP user message can be decoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PayloadKind {
    M3ua,
    Sua,
    M2ua,
    M2pa,
    Diameter,
}

impl PayloadKind {
    /// The PPID registered for it: what to pass to [`crate::ss7::decode`] (2-5) to decode the
    /// bytes as this kind, whatever PPID they came with.
    pub const fn ppid(self) -> u32 {
        match self {
            PayloadKind::M2ua => PPID_M2UA,
            PayloadKind::M3ua => PPID_M3UA,
            PayloadKind::Sua => PPID_SUA,
            PayloadKind::M2pa => PPID_M2PA,
            PayloadKind::Diameter => PPID_DIAMETER,
        }
    }

    /// The kind a PPID names, if it names one (DTLS-protected Diameter, 47, cannot be decoded,
    /// so it names none).
    pub const fn from_ppid(ppid: u32) -> Option<PayloadKind> {
        match ppid {
            PPID_M2UA => Some(PayloadKind::M2ua),
            PPID_M3UA => Some(PayloadKind::M3ua),
            PPID_SUA => Some(PayloadKind::Sua),
            PPID_M2PA => Some(PayloadKind::M2pa),
            PPID_DIAMETER => Some(PayloadKind::Diameter),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            PayloadKind::M3ua => "m3ua",
            PayloadKind::Sua => "sua",
            PayloadKind::M2ua => "m2ua",
            PayloadKind::M2pa => "m2pa",
            PayloadKind::Diameter => "diameter",
        }
    }

    pub const fn is_sigtran(self) -> bool {
        !matches!(self, PayloadKind::Diameter)
    }
}

/// A candidate and how well its header fits (higher is better; see [`classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub kind: PayloadKind,
    pub score: u8,
    /// The header's length field equals the user message's length.
    pub length_agrees: bool,
}

/// What [`classify`] found: at most one SIGTRAN and one Diameter candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Classification {
    pub sigtran: Option<Candidate>,
    pub diameter: Option<Candidate>,
}

impl Classification {
    /// The best candidate; SIGTRAN on a tie (ties are ambiguous anyway).
    pub fn best(&self) -> Option<PayloadKind> {
        self.candidates().next()
    }

    /// Every candidate, best first.
    pub fn candidates(&self) -> impl Iterator<Item = PayloadKind> {
        let (a, b) = match (self.sigtran, self.diameter) {
            (Some(s), Some(d)) if d.score > s.score => (Some(d), Some(s)),
            (s, d) => (s.or(d), s.and(d)),
        };
        a.into_iter().chain(b).map(|c| c.kind)
    }

    /// Both kinds fit equally well: decode both.
    pub fn is_ambiguous(&self) -> bool {
        matches!((self.sigtran, self.diameter), (Some(s), Some(d)) if s.score == d.score)
    }

    /// Nothing sigwall decodes fits.
    pub fn is_unknown(&self) -> bool {
        self.sigtran.is_none() && self.diameter.is_none()
    }
}

/// The SIGTRAN layer a message class belongs to; shared management classes go to the PPID's
/// layer when it names a SIGTRAN one, else M3UA.
fn sigtran_kind(class: u8, ppid: Option<u32>) -> Option<PayloadKind> {
    Some(match class {
        1 => PayloadKind::M3ua,
        7 | 8 => PayloadKind::Sua,
        6 | 10 => PayloadKind::M2ua,
        11 => PayloadKind::M2pa,
        0 | 2 | 3 | 4 | 9 => match ppid.and_then(PayloadKind::from_ppid) {
            Some(k @ (PayloadKind::Sua | PayloadKind::M2ua | PayloadKind::M3ua)) => k,
            _ => PayloadKind::M3ua,
        },
        _ => return None,
    })
}

/// Classifies a user message by its own header; the PPID only breaks the tie between SIGTRAN
/// layers for the management classes they share.
pub fn classify(ppid: u32, payload: &[u8]) -> Classification {
    let mut c = Classification::default();
    if payload.first() != Some(&1) || payload.len() < 8 {
        return c;
    }
    let ppid = (ppid != 0).then_some(ppid);
    let len = payload.len();
    let padded = |n: usize| n == len || (n < len && len - n < 4 && payload[n..].iter().all(|&b| b == 0));
    if let (Some(kind), Some(slen)) = (sigtran_kind(payload[2], ppid), be32(payload, 4)) {
        let length_agrees = padded(slen as usize);
        let min = if kind == PayloadKind::M2pa { 16 } else { 8 };
        // A length below the header or beyond the message is no message of this kind.
        if slen as usize >= min && slen as usize <= len {
            let score = 2 * u8::from(length_agrees) + u8::from(payload[1] == 0);
            c.sigtran = Some(Candidate { kind, score, length_agrees });
        }
    }
    if len >= 20
        && let Some(dlen) = be24(payload, 1)
        && dlen >= 20
        && dlen as usize <= len
    {
        let length_agrees = dlen as usize == len;
        let score = 2 * u8::from(length_agrees) + u8::from(payload[4] & 0x0f == 0 && dlen % 4 == 0);
        c.diameter = Some(Candidate { kind: PayloadKind::Diameter, score, length_agrees });
    }
    c
}

/// True for the PPID whose payload cannot be classified or decoded: DTLS-protected Diameter
/// (47), whose bytes are encrypted.
pub fn is_opaque_ppid(ppid: u32) -> bool {
    ppid == PPID_DIAMETER_DTLS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ss7::{m2pa, m2ua, m3ua, sua};

    fn diameter_plr() -> Vec<u8> {
        // version 1, length 28, flags R|P, command 8388620, app 16777255, hop, end, one AVP
        let mut m = vec![1, 0, 0, 28, 0xc0, 0x80, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x27];
        m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        m.extend_from_slice(&[0, 0, 1, 8, 0x40, 0, 0, 8]);
        m
    }

    #[test]
    fn each_kind_by_its_header_whatever_the_ppid() {
        let m3 = m3ua::tests::data_message(1, 2, 3, b"abcd");
        let su =
            sua::tests::cldt(&sua::tests::gt_address("4179", 6, None), &sua::tests::gt_address("4179", 8, None), b"x");
        let m2u = m2ua::tests::data(b"\x83\x01\x02\x03\x04");
        let m2p = m2pa::tests::user_data(b"\x83\x01\x02\x03\x04");
        let dia = diameter_plr();
        for ppid in [0, 1, 3, 4, 46, 0x0300_0000, u32::MAX] {
            assert_eq!(classify(ppid, &m3).best(), Some(PayloadKind::M3ua));
            assert_eq!(classify(ppid, &su).best(), Some(PayloadKind::Sua));
            assert_eq!(classify(ppid, &m2u).best(), Some(PayloadKind::M2ua));
            assert_eq!(classify(ppid, &m2p).best(), Some(PayloadKind::M2pa));
            assert_eq!(classify(ppid, &dia).best(), Some(PayloadKind::Diameter), "ppid {ppid}");
        }
        assert!(!classify(0, &m3).is_ambiguous());
        assert!(!classify(0, &dia).is_ambiguous());
    }

    #[test]
    fn understated_lengths_still_classify() {
        // M3UA length 8 (review H3): still M3UA, the only candidate whose header fits
        let mut m3 = m3ua::tests::data_message(1, 2, 3, b"abcd");
        m3[4..8].copy_from_slice(&8u32.to_be_bytes());
        let c = classify(3, &m3);
        assert_eq!(c.sigtran.map(|s| (s.kind, s.length_agrees)), Some((PayloadKind::M3ua, false)));
        assert!(c.candidates().any(|k| k == PayloadKind::M3ua));
        // Diameter length 20 on a longer message: still a Diameter candidate
        let mut d = diameter_plr();
        d[3] = 20;
        assert!(classify(46, &d).candidates().any(|k| k == PayloadKind::Diameter));
    }

    #[test]
    fn management_classes_follow_the_ppid() {
        let aspup = [1, 0, 3, 1, 0, 0, 0, 8];
        assert_eq!(classify(4, &aspup).best(), Some(PayloadKind::Sua));
        assert_eq!(classify(2, &aspup).best(), Some(PayloadKind::M2ua));
        assert_eq!(classify(0, &aspup).best(), Some(PayloadKind::M3ua));
        assert_eq!(classify(46, &aspup).best(), Some(PayloadKind::M3ua));
    }

    #[test]
    fn unknown_and_ambiguous() {
        assert!(classify(3, &[]).is_unknown());
        assert!(classify(3, &[2, 0, 1, 1, 0, 0, 0, 8]).is_unknown());
        assert!(classify(3, &[1, 0, 5, 1, 0, 0, 0, 8]).is_unknown(), "class 5 is no SIGTRAN class");
        assert!(classify(3, &[1, 0, 1, 1, 0, 0, 0, 9]).is_unknown(), "length beyond the message");
        // 20 bytes that are both an M3UA ASPSM message of length 20 and a Diameter header of
        // length 0x000314 (788 > 20: not Diameter) ...
        let m = [1, 0, 3, 20, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(classify(0, &m).best(), Some(PayloadKind::M3ua));
        // ... and a crafted 20-byte string that fits both headers equally: decode both
        let mut both = vec![1, 0, 0, 20, 0, 0, 0, 20];
        both.resize(20, 0);
        let c = classify(0, &both);
        assert!(c.is_ambiguous());
        assert_eq!(c.candidates().collect::<Vec<_>>(), [PayloadKind::M3ua, PayloadKind::Diameter]);
        assert_eq!(PayloadKind::from_ppid(47), None);
        assert!(is_opaque_ppid(47));
        for k in [PayloadKind::M3ua, PayloadKind::Sua, PayloadKind::M2ua, PayloadKind::M2pa, PayloadKind::Diameter] {
            assert_eq!(PayloadKind::from_ppid(k.ppid()), Some(k));
            assert_eq!(k.is_sigtran(), k != PayloadKind::Diameter);
            assert!(!k.name().is_empty());
        }
    }
}
