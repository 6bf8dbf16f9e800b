//! TBCD digit strings (TS 29.002 `TBCD-STRING`, used by GTP and Diameter for IMSI and MSISDN) and
//! PLMN identities (MCC/MNC in three octets, TS 24.008 §10.5.1.3, TS 29.274 §8.18, TS 29.272 §7.3.9).

use std::fmt;

use crate::dpi::{DecodeError, Layer};

/// The longest TBCD string we decode, in octets: an IMSI is at most 15 digits (8 octets), an
/// MSISDN at most 15 digits plus filler; 16 octets leaves room for vendor oddities and no more.
pub const TBCD_MAX_OCTETS: usize = 16;

/// Digits of a TBCD string: low nibble first, then high nibble; a nibble 0xF ends the string
/// (filler in the last octet's high nibble). Only decimal digits are accepted: identities that
/// carry `*`, `#`, `a`-`c` are not IMSIs or MSISDNs and are reported as [`DecodeError::Content`].
pub fn tbcd_digits(layer: Layer, bytes: &[u8]) -> Result<String, DecodeError> {
    if bytes.len() > TBCD_MAX_OCTETS {
        return Err(DecodeError::Limit { layer, what: "TBCD digit string longer than 16 octets" });
    }
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b & 0x0f, b >> 4] {
            match nibble {
                0..=9 => s.push(char::from(b'0' + nibble)),
                0x0f => return Ok(s),
                _ => return Err(DecodeError::Content { layer, what: "TBCD digit string has a non-decimal digit" }),
            }
        }
    }
    Ok(s)
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
        assert_eq!(tbcd_digits(Layer::GtpV2C, &b).unwrap(), "222010100001140");
        assert_eq!(tbcd_digits(Layer::GtpV2C, &[]).unwrap(), "");
        assert_eq!(tbcd_digits(Layer::GtpV2C, &[0x21, 0x43]).unwrap(), "1234");
    }

    #[test]
    fn tbcd_rejects_non_decimal_and_overlong() {
        assert!(matches!(tbcd_digits(Layer::GtpV2C, &[0x1a]), Err(DecodeError::Content { .. })));
        assert!(matches!(tbcd_digits(Layer::GtpV2C, &[0x11; 17]), Err(DecodeError::Limit { .. })));
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
