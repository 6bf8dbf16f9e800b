//! MTP3 (ITU-T Q.704): service information octet (SI, NI) and the ITU routing label
//! (14-bit DPC and OPC, 4-bit SLS), then the user part's data.

use crate::{DecodeError, Layer};

/// SIO plus the 4-octet ITU routing label.
pub const HEADER_LEN: usize = 5;

/// Service indicators.
pub const SI_SNM: u8 = 0;
pub const SI_SLTM: u8 = 1;
pub const SI_SCCP: u8 = 3;
pub const SI_TUP: u8 = 4;
pub const SI_ISUP: u8 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mtp3Slice<'a> {
    data: &'a [u8],
}

impl<'a> Mtp3Slice<'a> {
    pub fn from_slice(data: &'a [u8]) -> Result<Self, DecodeError> {
        DecodeError::need(Layer::Mtp3, HEADER_LEN, data.len())?;
        Ok(Mtp3Slice { data })
    }

    fn label(&self) -> u32 {
        match self.data.get(1..5) {
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
            _ => 0,
        }
    }

    pub fn sio(&self) -> u8 {
        self.data.first().copied().unwrap_or(0)
    }
    /// Service indicator (low four bits of the SIO).
    pub fn si(&self) -> u8 {
        self.sio() & 0x0f
    }
    /// Network indicator (top two bits of the SIO): 0 international, 2 national.
    pub fn ni(&self) -> u8 {
        self.sio() >> 6
    }
    /// The two spare/priority bits between NI and SI.
    pub fn priority(&self) -> u8 {
        (self.sio() >> 4) & 0x03
    }
    pub fn dpc(&self) -> u16 {
        (self.label() & 0x3fff) as u16
    }
    pub fn opc(&self) -> u16 {
        ((self.label() >> 14) & 0x3fff) as u16
    }
    pub fn sls(&self) -> u8 {
        (self.label() >> 28) as u8
    }
    /// The user part's message (SCCP when `si() == SI_SCCP`).
    pub fn payload(&self) -> &'a [u8] {
        self.data.get(HEADER_LEN..).unwrap_or(&[])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn message(si: u8, ni: u8, opc: u16, dpc: u16, sls: u8, payload: &[u8]) -> Vec<u8> {
        let label = (dpc as u32 & 0x3fff) | ((opc as u32 & 0x3fff) << 14) | ((sls as u32 & 0xf) << 28);
        let mut m = vec![(ni << 6) | (si & 0x0f)];
        m.extend_from_slice(&label.to_le_bytes());
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn routing_label() {
        let m = message(SI_SCCP, 2, 4536, 3, 9, b"x");
        let s = Mtp3Slice::from_slice(&m).unwrap();
        assert_eq!((s.si(), s.ni(), s.opc(), s.dpc(), s.sls(), s.payload()), (3, 2, 4536, 3, 9, &b"x"[..]));
        let s = Mtp3Slice::from_slice(&[0x83, 0xff, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!((s.ni(), s.dpc(), s.opc(), s.sls()), (2, 0x3fff, 0x3fff, 15));
        for n in 0..HEADER_LEN {
            assert!(matches!(Mtp3Slice::from_slice(&m[..n]), Err(DecodeError::Len { .. })));
        }
    }
}
