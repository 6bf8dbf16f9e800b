//! SMS transfer-layer PDUs (3GPP TS 23.040 §9.2) as MAP carries them in `sm-RP-UI`: SMS-DELIVER
//! (service centre → mobile, in MT-forwardSM) and SMS-SUBMIT (mobile → service centre, in
//! MO-forwardSM), with the protocol identifier (TP-PID), the data coding scheme (TP-DCS, TS
//! 23.038 §4) and the user-data header's information elements (TS 23.040 §9.2.3.24), which is
//! what the SMS firewall judges (SIM OTA command packets: TS 31.115, UDH IEI 0x70/0x71).
//!
//! Zero-copy: [`TpduSlice`] validates the whole PDU once in [`TpduSlice::from_slice`] and keeps
//! offsets; the accessors cannot fail. The other TPDU types (STATUS-REPORT, COMMAND, the
//! reports) are recognised by type and not decoded further: the firewall's rules are about
//! DELIVER and SUBMIT.
//!
//! Caps: a TPDU is at most [`MAX_TPDU`] octets (TS 23.040: 164 for a DELIVER, one more for
//! some SUBMITs; anything longer is not an SMS); a UDH has at most [`MAX_IES`] elements.

use crate::{DecodeError, Layer};

/// Largest TPDU accepted (octets). TS 23.040 gives at most 140 octets of user data plus at most
/// 35 of header for SUBMIT with an absolute validity period and a 12-digit address.
pub const MAX_TPDU: usize = 200;
/// Information elements read from one user-data header (the header is at most 140 octets, so
/// at most 70 elements of two octets; a real one has one to four).
pub const MAX_IES: usize = 32;
/// Address digits (TS 23.040 §9.1.2.5: the address value field is at most 10 octets).
pub const MAX_ADDRESS_DIGITS: usize = 20;

/// TP-PID of (U)SIM data download (TS 23.040 §9.2.3.9: `0x7F`): the SMS goes to the SIM card.
pub const PID_SIM_DATA_DOWNLOAD: u8 = 0x7f;
/// TP-PID of ME data download (`0x7D`).
pub const PID_ME_DATA_DOWNLOAD: u8 = 0x7d;
/// TP-PID "ME de-personalization short message" (`0x7E`).
pub const PID_ME_DEPERSONALIZATION: u8 = 0x7e;
/// TP-PID "Short Message Type 0" (silent SMS, `0x40`): acknowledged and discarded by the phone,
/// a classic way to ping a subscriber for location tracking.
pub const PID_TYPE0: u8 = 0x40;
/// UDH IEI of a command packet to the (U)SIM (TS 31.115 §4.2, TS 23.040 §9.2.3.24: "(U)SIM
/// Toolkit Security Headers").
pub const IEI_COMMAND_PACKET: u8 = 0x70;
/// UDH IEI of a response packet (TS 31.115 §4.2).
pub const IEI_RESPONSE_PACKET: u8 = 0x71;

fn len_err(required: usize, len: usize) -> DecodeError {
    DecodeError::Len { layer: Layer::Sms, required, len }
}

fn content(what: &'static str) -> DecodeError {
    DecodeError::Content { layer: Layer::Sms, what }
}

/// Which way the TPDU travels: TP-MTI means different types each way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Service centre → mobile (MT-forwardSM).
    ToMs,
    /// Mobile → service centre (MO-forwardSM).
    FromMs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpduType {
    Deliver,
    Submit,
    DeliverReport,
    SubmitReport,
    StatusReport,
    Command,
    /// TP-MTI 3 (reserved): treated by phones as a DELIVER (to MS) or a SUBMIT; counted apart.
    Reserved,
}

/// The alphabet of TP-DCS (TS 23.038 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alphabet {
    Gsm7,
    EightBit,
    Ucs2,
}

/// A decoded TP-DCS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dcs {
    pub raw: u8,
    pub alphabet: Alphabet,
    /// Message class 0..=3 when the coding group gives one (class 2: (U)SIM-specific).
    pub class: Option<u8>,
    pub compressed: bool,
}

impl Dcs {
    pub fn parse(raw: u8) -> Dcs {
        let alpha = |bits: u8| match bits & 0x03 {
            1 => Alphabet::EightBit,
            2 => Alphabet::Ucs2,
            // 3 is reserved: TS 23.038 says treat it as the default alphabet.
            _ => Alphabet::Gsm7,
        };
        match raw >> 4 {
            // 00xx, 01xx: general data coding (01xx: marked for automatic deletion).
            0..=7 => Dcs {
                raw,
                alphabet: alpha(raw >> 2),
                class: (raw & 0x10 != 0).then_some(raw & 0x03),
                compressed: raw & 0x20 != 0,
            },
            // 1100, 1101: message waiting, default alphabet; 1110: message waiting, UCS2.
            0xc | 0xd => Dcs { raw, alphabet: Alphabet::Gsm7, class: None, compressed: false },
            0xe => Dcs { raw, alphabet: Alphabet::Ucs2, class: None, compressed: false },
            // 1111: data coding / message class.
            0xf => Dcs {
                raw,
                alphabet: if raw & 0x04 != 0 { Alphabet::EightBit } else { Alphabet::Gsm7 },
                class: Some(raw & 0x03),
                compressed: false,
            },
            // 1000..1011 reserved: default alphabet (TS 23.038).
            _ => Dcs { raw, alphabet: Alphabet::Gsm7, class: None, compressed: false },
        }
    }
}

/// One user-data header information element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ie<'a> {
    pub iei: u8,
    pub data: &'a [u8],
}

/// A TP address (TP-OA, TP-DA): TON/NPI and digits (semi-octets, or GSM 7-bit text when the
/// type of number is alphanumeric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address<'a> {
    /// Number of useful semi-octets (TP address length field).
    pub semi_octets: u8,
    pub ton: u8,
    pub npi: u8,
    pub value: &'a [u8],
}

impl Address<'_> {
    /// The digits of a numeric address (`None` for an alphanumeric one, TON 5).
    pub fn digits(&self) -> Option<String> {
        if self.ton == 5 {
            return None;
        }
        let mut s = String::with_capacity(self.semi_octets as usize);
        for (i, b) in self.value.iter().enumerate() {
            for (k, nib) in [b & 0x0f, b >> 4].into_iter().enumerate() {
                if 2 * i + k >= self.semi_octets as usize || nib == 0x0f {
                    return Some(s);
                }
                s.push(char::from(b"0123456789*#abc?"[nib as usize]));
            }
        }
        Some(s)
    }
}

/// A validated TPDU. Offsets are into `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TpduSlice<'a> {
    data: &'a [u8],
    kind: TpduType,
    /// TP-OA (DELIVER) or TP-DA (SUBMIT): offset of the length octet and the total length.
    addr: Option<(usize, usize)>,
    pid: Option<u8>,
    dcs: Option<Dcs>,
    /// User data (after TP-UDL): offset, and TP-UDL itself.
    ud: Option<(usize, u8)>,
    /// User-data header length (octets after the UDHL octet), when TP-UDHI is set.
    udh_len: Option<usize>,
}

impl<'a> TpduSlice<'a> {
    /// Validates a TPDU sent in `dir`. DELIVER and SUBMIT are checked to the last octet of their
    /// user data (a shorter PDU is `Len`, a user-data header that does not fit is `Content`);
    /// the other types only for their first octet.
    pub fn from_slice(data: &'a [u8], dir: Direction) -> Result<TpduSlice<'a>, DecodeError> {
        if data.len() > MAX_TPDU {
            return Err(DecodeError::Limit { layer: Layer::Sms, what: "TPDU longer than 200 octets" });
        }
        let &first = data.first().ok_or_else(|| len_err(1, 0))?;
        let kind = match (first & 0x03, dir) {
            (0, Direction::ToMs) => TpduType::Deliver,
            (0, Direction::FromMs) => TpduType::DeliverReport,
            (1, Direction::ToMs) => TpduType::SubmitReport,
            (1, Direction::FromMs) => TpduType::Submit,
            (2, Direction::ToMs) => TpduType::StatusReport,
            (2, Direction::FromMs) => TpduType::Command,
            _ => TpduType::Reserved,
        };
        let mut t = TpduSlice { data, kind, addr: None, pid: None, dcs: None, ud: None, udh_len: None };
        let mut off = 1;
        match kind {
            TpduType::Deliver => {}
            TpduType::Submit => off += 1, // TP-MR
            _ => return Ok(t),
        }
        // The address: length in semi-octets, TON/NPI, then the value.
        let alen = *data.get(off).ok_or_else(|| len_err(off + 1, data.len()))? as usize;
        if alen > MAX_ADDRESS_DIGITS {
            return Err(content("TP address longer than 20 semi-octets"));
        }
        let atotal = 2 + alen.div_ceil(2);
        if data.len() < off + atotal {
            return Err(len_err(off + atotal, data.len()));
        }
        t.addr = Some((off, atotal));
        off += atotal;
        let need = off + 2;
        if data.len() < need {
            return Err(len_err(need, data.len()));
        }
        t.pid = Some(data[off]);
        let dcs = Dcs::parse(data[off + 1]);
        t.dcs = Some(dcs);
        off += 2;
        off += match kind {
            TpduType::Deliver => 7, // TP-SCTS
            // TP-VPF (bits 3-4): 0 none, 2 relative (1 octet), 1 enhanced and 3 absolute (7).
            _ => match (first >> 3) & 0x03 {
                0 => 0,
                2 => 1,
                _ => 7,
            },
        };
        let &udl = data.get(off).ok_or_else(|| len_err(off + 1, data.len()))?;
        off += 1;
        // TP-UDL counts septets for the default alphabet (uncompressed), octets otherwise.
        let ud_octets = if dcs.alphabet == Alphabet::Gsm7 && !dcs.compressed {
            (udl as usize * 7).div_ceil(8)
        } else {
            udl as usize
        };
        if ud_octets > 140 {
            return Err(content("TP-UDL over 140 octets"));
        }
        if data.len() < off + ud_octets {
            return Err(len_err(off + ud_octets, data.len()));
        }
        t.ud = Some((off, udl));
        if first & 0x40 != 0 {
            // TP-UDHI: the user data starts with a header (UDHL, then elements).
            let &udhl = data.get(off).ok_or_else(|| content("TP-UDHI set but no user data"))?;
            if 1 + udhl as usize > ud_octets {
                return Err(content("user-data header longer than the user data"));
            }
            t.udh_len = Some(udhl as usize);
            // Walk the elements once so the iterator below never meets a cut one.
            let h = &data[off + 1..off + 1 + udhl as usize];
            let mut i = 0;
            let mut n = 0;
            while i < h.len() {
                if i + 2 > h.len() || i + 2 + h[i + 1] as usize > h.len() {
                    return Err(content("user-data header element overruns the header"));
                }
                n += 1;
                if n > MAX_IES {
                    return Err(DecodeError::Limit { layer: Layer::Sms, what: "more than 32 UDH elements" });
                }
                i += 2 + h[i + 1] as usize;
            }
        }
        Ok(t)
    }

    pub fn kind(&self) -> TpduType {
        self.kind
    }
    pub fn first_octet(&self) -> u8 {
        self.data[0]
    }
    /// TP-UDHI.
    pub fn has_udh(&self) -> bool {
        self.udh_len.is_some()
    }
    /// TP-OA of a DELIVER, TP-DA of a SUBMIT.
    pub fn address(&self) -> Option<Address<'a>> {
        self.addr.map(|(o, n)| Address {
            semi_octets: self.data[o],
            ton: (self.data[o + 1] >> 4) & 0x07,
            npi: self.data[o + 1] & 0x0f,
            value: &self.data[o + 2..o + n],
        })
    }
    pub fn pid(&self) -> Option<u8> {
        self.pid
    }
    pub fn dcs(&self) -> Option<Dcs> {
        self.dcs
    }
    /// TP-UDL as sent (septets or octets, see [`Dcs::alphabet`]).
    pub fn udl(&self) -> Option<u8> {
        self.ud.map(|(_, l)| l)
    }
    /// The user data octets, header included.
    pub fn user_data(&self) -> &'a [u8] {
        match self.ud {
            Some((o, _)) => &self.data[o..],
            None => &[],
        }
    }
    /// The user-data header's elements, in order.
    pub fn ies(&self) -> impl Iterator<Item = Ie<'a>> + 'a {
        let h: &'a [u8] = match (self.ud, self.udh_len) {
            (Some((o, _)), Some(l)) => &self.data[o + 1..o + 1 + l],
            _ => &[],
        };
        let mut i = 0;
        std::iter::from_fn(move || {
            // Checked whole in `from_slice`; `get` keeps this total anyway.
            let iei = *h.get(i)?;
            let l = *h.get(i + 1)? as usize;
            let data = h.get(i + 2..i + 2 + l)?;
            i += 2 + l;
            Some(Ie { iei, data })
        })
    }
    /// A (U)SIM command or response packet in the UDH (TS 31.115).
    pub fn has_command_packet(&self) -> bool {
        self.ies().any(|ie| ie.iei == IEI_COMMAND_PACKET || ie.iei == IEI_RESPONSE_PACKET)
    }
    /// The marks of an SMS addressed to the SIM card rather than to the user: TP-PID (U)SIM data
    /// download, class-2 8-bit coding, or a command-packet header. Each is listed (empty: none).
    pub fn sim_ota_marks(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.pid == Some(PID_SIM_DATA_DOWNLOAD) {
            v.push("tp-pid-sim-data-download");
        }
        if self.pid == Some(PID_ME_DATA_DOWNLOAD) {
            v.push("tp-pid-me-data-download");
        }
        if let Some(d) = self.dcs
            && d.alphabet == Alphabet::EightBit
            && d.class == Some(2)
        {
            v.push("dcs-class2-8bit");
        }
        if self.has_command_packet() {
            v.push("udh-command-packet");
        }
        v
    }
}

#[cfg(test)]
mod tests;
