//! Digit strings packed two to an octet, and PLMN identities.
//!
//! One nibble walker ([`nibbles`]: low nibble first, the order of TBCD and of SCCP's BCD) and
//! three explicit policies for the nibbles that are not decimal digits, because the protocols
//! really do differ:
//!
//! | function | used by | 0xA-0xE | 0xF |
//! |---|---|---|---|
//! | [`tbcd_decimal`] | GTPv1-C, GTPv2-C (IMSI, MSISDN) | [`DecodeError::Content`] | ends the string |
//! | [`tbcd_map`] | MAP (IMSI, AddressString), TS 29.002 `TBCD-STRING` | `*`, `#`, `a`, `b`, `c` | ends the string |
//! | [`bcd_global_title`] | SCCP global titles, Q.713 | `A`, `B`, `C`, `D`, `E` | `F`, except a filler the parity says is one |
//!
//! Each renders what tshark shows for its protocol, which the agreement tests pin.
//!
//! **Home-IMSI matching** (`home_imsi_prefixes`) is a prefix match on decimal digits, and the
//! policies agree on every decimal run: a valid IMSI (TS 23.003 allows decimal digits only) reads
//! the same from MAP, GTP and Diameter (User-Name is text). They differ only on an IMSI with a
//! non-decimal nibble. MAP keeps it with the symbol in place, so a home prefix before the symbol
//! still matches and appending a `*` cannot hide a home subscriber from the Category 2 rule. GTP
//! refuses it as malformed: the IE is not used and the message counts as a decode error
//! (`gtpv1c.content`, `gtpv2c.content`), visible in the statistics rather than matched against a
//! guess. This is deliberate; changing it changes what the rules see, not just how digits print.
//!
//! PLMN identities (MCC/MNC in three octets, TS 24.008 §10.5.1.3, TS 29.274 §8.18, TS 29.272
//! §7.3.9) are shared by GTP (Serving Network) and Diameter (Visited-PLMN-Id).

use std::fmt;

use crate::{DecodeError, Layer};

/// The longest TBCD string [`tbcd_decimal`] decodes, in octets: an IMSI is at most 15 digits (8
/// octets), an MSISDN at most 15 digits plus filler; 16 octets leaves room for vendor oddities
/// and no more.
pub const TBCD_MAX_OCTETS: usize = 16;

/// The nibbles of `d`, low nibble of each octet first.
pub fn nibbles(d: &[u8]) -> impl Iterator<Item = u8> + '_ {
    d.iter().flat_map(|&b| [b & 0x0f, b >> 4])
}

/// TBCD identity digits, decimal only (GTP): a nibble 0xF ends the string (filler in the last
/// octet's high nibble). Identities that carry `*`, `#`, `a`-`c` are not IMSIs or MSISDNs and are
/// reported as [`DecodeError::Content`], as is a non-empty string without a digit; digits after
/// a filler as [`DecodeError::NonCanonical`]; more than [`TBCD_MAX_OCTETS`] octets as
/// [`DecodeError::Limit`].
pub fn tbcd_decimal(layer: Layer, bytes: &[u8]) -> Result<String, DecodeError> {
    if bytes.len() > TBCD_MAX_OCTETS {
        return Err(DecodeError::Limit { layer, what: "TBCD digit string longer than 16 octets" });
    }
    let mut s = String::with_capacity(bytes.len() * 2);
    let mut ended = false;
    for n in nibbles(bytes) {
        match n {
            // Digits after a filler: a receiver that skips the filler reads a different
            // identity than one that stops there (found by the differential fuzzer).
            _ if ended && n != 0x0f => {
                return Err(DecodeError::NonCanonical { layer, what: "TBCD filler before the last digit" });
            }
            0..=9 => s.push(char::from(b'0' + n)),
            0x0f => ended = true,
            _ => return Err(DecodeError::Content { layer, what: "TBCD digit string has a non-decimal digit" }),
        }
    }
    if s.is_empty() && !bytes.is_empty() {
        return Err(DecodeError::Content { layer, what: "TBCD digit string has no digit" });
    }
    Ok(s)
}

/// TBCD digits as TS 29.002 §17.7.8 defines them (MAP): 0xA..0xE are `*`, `#`, `a`, `b`, `c`;
/// a nibble 0xF (filler) ends them. Never fails; the caller bounds the length.
pub fn tbcd_map(bytes: &[u8]) -> String {
    // One allocation of the most characters there can be (one per nibble).
    let mut s = String::with_capacity(bytes.len() * 2);
    for n in nibbles(bytes) {
        let c = match n {
            0..=9 => char::from(b'0' + n),
            0x0a => '*',
            0x0b => '#',
            0x0c => 'a',
            0x0d => 'b',
            0x0e => 'c',
            _ => break,
        };
        s.push(c);
    }
    s
}

/// BCD address signals of an SCCP global title (Q.713 §3.4.2.3), low nibble first, every
/// nibble rendered (0-9, then `A`-`F` as upper-case hex; `B` and `C` are the code 11 and code 12
/// signals). The last octet's high nibble is dropped when the encoding scheme says the digit
/// count is odd (`odd == Some(true)`), or, with an unknown scheme (`None`), when it is the 0xF
/// filler. Never fails; at most 2 × the input length characters.
pub fn bcd_global_title(d: &[u8], odd: Option<bool>) -> String {
    let filler = match (odd, d.last()) {
        (Some(true), Some(_)) => true,
        (None, Some(&b)) => b >> 4 == 0x0f,
        _ => false,
    };
    let count = d.len() * 2 - usize::from(filler);
    // A nibble is below 16, so every one has its upper-case hex digit. Octet by octet: the
    // nibbles in `nibbles` order (low first), the first `count` of them.
    let hex = |n: u8| char::from(*b"0123456789ABCDEF".get(usize::from(n)).unwrap_or(&b'?'));
    let mut s = String::with_capacity(count);
    for (i, &b) in d.iter().enumerate() {
        if 2 * i < count {
            s.push(hex(b & 0x0f));
        }
        if 2 * i + 1 < count {
            s.push(hex(b >> 4));
        }
    }
    s
}

/// A PLMN identity: mobile country code and mobile network code, with the MNC's digit count
/// (`01` and `001` are different networks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Plmn {
    pub mcc: u16,
    pub mnc: u16,
    /// 2 or 3.
    pub mnc_digits: u8,
}

impl Plmn {
    /// The three-octet encoding: `MCC2 MCC1 | MNC3 MCC3 | MNC2 MNC1`, MNC3 = 0xF for a two-digit
    /// MNC.
    pub fn from_bytes(layer: Layer, b: &[u8]) -> Result<Plmn, DecodeError> {
        let &[b0, b1, b2] = b else {
            return match b.len() {
                0..=2 => Err(DecodeError::Len { layer, required: 3, len: b.len() }),
                _ => Err(DecodeError::Content { layer, what: "PLMN identity is not 3 octets" }),
            };
        };
        let digit = |d: u8| -> Result<u16, DecodeError> {
            if d <= 9 { Ok(u16::from(d)) } else { Err(DecodeError::Content { layer, what: "PLMN identity digit" }) }
        };
        let mcc = digit(b0 & 0x0f)? * 100 + digit(b0 >> 4)? * 10 + digit(b1 & 0x0f)?;
        let mnc12 = digit(b2 & 0x0f)? * 10 + digit(b2 >> 4)?;
        let (mnc, mnc_digits) = match b1 >> 4 {
            0x0f => (mnc12, 2),
            d => (mnc12 * 10 + digit(d)?, 3),
        };
        Ok(Plmn { mcc, mnc, mnc_digits })
    }

    /// True if `imsi` (a digit string) belongs to this PLMN.
    pub fn owns_imsi(&self, imsi: &str) -> bool {
        imsi.starts_with(&self.to_digits())
    }

    /// MCC and MNC digits run together, e.g. `22201`: the IMSI prefix of this PLMN.
    pub fn to_digits(&self) -> String {
        if self.mnc_digits == 3 {
            format!("{:03}{:03}", self.mcc, self.mnc)
        } else {
            format!("{:03}{:02}", self.mcc, self.mnc)
        }
    }
}

impl fmt::Display for Plmn {
    /// `222-01`, `310-410`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mnc_digits == 3 {
            write!(f, "{:03}-{:03}", self.mcc, self.mnc)
        } else {
            write!(f, "{:03}-{:02}", self.mcc, self.mnc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imsi_digits_with_filler() {
        // 222010100001140 (15 digits): the last octet's high nibble is filler.
        let b = [0x22, 0x02, 0x01, 0x01, 0x00, 0x10, 0x41, 0xf0];
        assert_eq!(tbcd_decimal(Layer::GtpV2C, &b).unwrap(), "222010100001140");
        assert_eq!(tbcd_decimal(Layer::GtpV2C, &[]).unwrap(), "");
        assert_eq!(tbcd_decimal(Layer::GtpV2C, &[0x21, 0x43]).unwrap(), "1234");
    }

    #[test]
    fn tbcd_rejects_non_decimal_and_overlong() {
        assert!(matches!(tbcd_decimal(Layer::GtpV2C, &[0x1a]), Err(DecodeError::Content { .. })));
        assert!(matches!(tbcd_decimal(Layer::GtpV2C, &[0x11; 17]), Err(DecodeError::Limit { .. })));
    }

    #[test]
    fn the_three_policies_on_the_same_bytes() {
        // 1, 0xA, 0xB, 0xC, 0xE, then 0xF: filler for TBCD, a last nibble for BCD.
        let b = [0xa1, 0xcb, 0xfe];
        assert!(matches!(tbcd_decimal(Layer::GtpV2C, &b), Err(DecodeError::Content { .. })));
        assert_eq!(tbcd_map(&b), "1*#ac");
        assert_eq!(bcd_global_title(&b, None), "1ABCE");
        assert_eq!(bcd_global_title(&b, Some(true)), "1ABCE");
        assert_eq!(bcd_global_title(&b, Some(false)), "1ABCEF");
        // A valid IMSI reads the same under every policy (what home-IMSI matching relies on).
        let imsi = [0x22, 0x08, 0x21, 0x21, 0x10, 0x90, 0x58, 0xf6];
        let d = tbcd_decimal(Layer::GtpV2C, &imsi).unwrap();
        assert_eq!(d, "228012120109856");
        assert_eq!(tbcd_map(&imsi), d);
        assert_eq!(bcd_global_title(&imsi, Some(true)), d);
        // A filler in the middle ends TBCD; BCD has no such rule.
        assert_eq!(tbcd_map(&[0x21, 0xf3, 0x54]), "123");
        assert!(matches!(tbcd_decimal(Layer::GtpV2C, &[0x21, 0xf3, 0x54]), Err(DecodeError::NonCanonical { .. })));
        assert!(matches!(tbcd_decimal(Layer::GtpV2C, &[0xff]), Err(DecodeError::Content { .. })));
        assert_eq!(tbcd_decimal(Layer::GtpV2C, &[0x21, 0xf3, 0xff]).unwrap(), "123");
        assert_eq!(bcd_global_title(&[0x21, 0xf3, 0x54], Some(false)), "123F45");
        assert_eq!(bcd_global_title(&[], None), "");
        assert_eq!(tbcd_map(&[]), "");
    }

    /// Every one- and two-octet input, and longer ones from each, against the iterator
    /// versions these functions were.
    #[test]
    fn map_and_global_title_digits_as_the_iterators_rendered() {
        let tbcd_ref = |b: &[u8]| -> String {
            nibbles(b)
                .map_while(|n| match n {
                    0..=9 => Some(char::from(b'0' + n)),
                    0x0a => Some('*'),
                    0x0b => Some('#'),
                    0x0c => Some('a'),
                    0x0d => Some('b'),
                    0x0e => Some('c'),
                    _ => None,
                })
                .collect()
        };
        let gt_ref = |d: &[u8], odd: Option<bool>| -> String {
            let filler = match (odd, d.last()) {
                (Some(true), Some(_)) => true,
                (None, Some(&b)) => b >> 4 == 0x0f,
                _ => false,
            };
            let count = d.len() * 2 - usize::from(filler);
            nibbles(d)
                .take(count)
                .map(|n| char::from_digit(u32::from(n), 16).map_or('?', |c| c.to_ascii_uppercase()))
                .collect()
        };
        for x in 0..=0xffffu32 {
            let [_, _, a, b] = x.to_be_bytes();
            for v in [&[a][..], &[a, b], &[b, 0x21, a, 0x43, b]] {
                assert_eq!(tbcd_map(v), tbcd_ref(v), "{v:02x?}");
                for odd in [None, Some(true), Some(false)] {
                    assert_eq!(bcd_global_title(v, odd), gt_ref(v, odd), "{v:02x?} {odd:?}");
                }
            }
        }
    }

    #[test]
    fn plmn_two_and_three_digit_mnc() {
        let p = Plmn::from_bytes(Layer::GtpV2C, &[0x22, 0xf2, 0x10]).unwrap();
        assert_eq!(p, Plmn { mcc: 222, mnc: 1, mnc_digits: 2 });
        assert_eq!(p.to_string(), "222-01");
        assert!(p.owns_imsi("222010100001140"));
        let p = Plmn::from_bytes(Layer::GtpV2C, &[0x13, 0x00, 0x14]).unwrap();
        assert_eq!(p, Plmn { mcc: 310, mnc: 410, mnc_digits: 3 });
        assert_eq!(p.to_string(), "310-410");
        assert_eq!(p.to_digits(), "310410");
        assert!(Plmn::from_bytes(Layer::GtpV2C, &[0x22, 0xf2]).is_err());
        assert!(Plmn::from_bytes(Layer::GtpV2C, &[0x22, 0xf2, 0x10, 0]).is_err());
        assert!(Plmn::from_bytes(Layer::GtpV2C, &[0xa2, 0xf2, 0x10]).is_err());
    }
}
