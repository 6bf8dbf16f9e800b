//! Names of Diameter command codes and application ids (IANA registry; 3GPP TS 29.272, 29.212,
//! 29.214, 29.172, 29.173, 32.299; RFC 6733, 4006, 7155), as Wireshark's dictionary spells them.

/// `(code, abbreviation of the request, abbreviation of the answer, name)`.
const COMMANDS: &[(u32, &str, &str, &str)] = &[
    (257, "CER", "CEA", "Capabilities-Exchange"),
    (258, "RAR", "RAA", "Re-Auth"),
    (265, "AAR", "AAA", "AA"),
    (268, "DER", "DEA", "Diameter-EAP"),
    (271, "ACR", "ACA", "Accounting"),
    (272, "CCR", "CCA", "Credit-Control"),
    (274, "ASR", "ASA", "Abort-Session"),
    (275, "STR", "STA", "Session-Termination"),
    (280, "DWR", "DWA", "Device-Watchdog"),
    (282, "DPR", "DPA", "Disconnect-Peer"),
    (316, "ULR", "ULA", "Update-Location"),
    (317, "CLR", "CLA", "Cancel-Location"),
    (318, "AIR", "AIA", "Authentication-Information"),
    (319, "IDR", "IDA", "Insert-Subscriber-Data"),
    (320, "DSR", "DSA", "Delete-Subscriber-Data"),
    (321, "PUR", "PUA", "Purge-UE"),
    (322, "RSR", "RSA", "Reset"),
    (323, "NOR", "NOA", "Notify"),
    (324, "ECR", "ECA", "ME-Identity-Check"),
    (8388620, "PLR", "PLA", "Provide-Location"),
    (8388621, "LRR", "LRA", "Location-Report"),
    (8388622, "RIR", "RIA", "LCS-Routing-Info"),
    (8388635, "SIR", "SIA", "Send-Routing-Info-for-SM"),
    (8388636, "OFR", "OFA", "MO-Forward-Short-Message"),
    (8388637, "TFR", "TFA", "MT-Forward-Short-Message"),
];

/// The long name of a command code, e.g. `Update-Location` for 316.
pub fn command_name(code: u32) -> Option<&'static str> {
    COMMANDS.iter().find(|c| c.0 == code).map(|c| c.3)
}

/// The abbreviation of a command, request or answer: `ULR`, `ULA`.
pub fn command_abbrev(code: u32, request: bool) -> Option<&'static str> {
    COMMANDS.iter().find(|c| c.0 == code).map(|c| if request { c.1 } else { c.2 })
}

/// The command code of an abbreviation (`"PLR"` or `"PLA"` → 8388620), for rule files.
pub fn command_code(abbrev: &str) -> Option<u32> {
    COMMANDS.iter().find(|c| c.1.eq_ignore_ascii_case(abbrev) || c.2.eq_ignore_ascii_case(abbrev)).map(|c| c.0)
}

const APPLICATIONS: &[(u32, &str)] = &[
    (0, "Diameter Common Messages"),
    (1, "NASREQ"),
    (3, "Diameter Base Accounting"),
    (4, "Diameter Credit Control (Gy/Ro)"),
    (5, "Diameter EAP"),
    (16777216, "3GPP Cx"),
    (16777217, "3GPP Sh"),
    (16777236, "3GPP Rx"),
    (16777238, "3GPP Gx"),
    (16777250, "3GPP STa"),
    (16777251, "3GPP S6a/S6d"),
    (16777252, "3GPP S13/S13'"),
    (16777255, "3GPP SLg"),
    (16777264, "3GPP SWm"),
    (16777265, "3GPP SWx"),
    (16777266, "3GPP Gxx"),
    (16777267, "3GPP S9"),
    (16777272, "3GPP S6b"),
    (16777291, "3GPP SLh"),
    (16777302, "3GPP Sy"),
    (16777308, "3GPP S6m"),
    (16777309, "3GPP T4"),
    (16777310, "3GPP S6c"),
    (16777312, "3GPP SGd"),
    (16777335, "3GPP S6t"),
    (16777336, "3GPP T6a/T6b"),
    (4294967295, "Relay"),
];

/// The name of an application id, e.g. `3GPP S6a/S6d` for 16777251. S6a and S6d share their id
/// (TS 29.272), as do Gy and Ro (RFC 4006's credit control).
pub fn application_name(id: u32) -> Option<&'static str> {
    APPLICATIONS.iter().find(|a| a.0 == id).map(|a| a.1)
}

/// Well-known application ids.
pub mod app {
    pub const COMMON: u32 = 0;
    pub const CREDIT_CONTROL: u32 = 4;
    pub const GY: u32 = 4;
    pub const RO: u32 = 4;
    pub const RX: u32 = 16777236;
    pub const GX: u32 = 16777238;
    pub const S6A: u32 = 16777251;
    pub const S6D: u32 = 16777251;
    pub const S13: u32 = 16777252;
    pub const SLG: u32 = 16777255;
    pub const SLH: u32 = 16777291;
    pub const RELAY: u32 = 0xffff_ffff;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(command_name(316), Some("Update-Location"));
        assert_eq!(command_abbrev(8388620, true), Some("PLR"));
        assert_eq!(command_abbrev(280, false), Some("DWA"));
        assert_eq!(command_code("rir"), Some(8388622));
        assert_eq!(command_code("CLA"), Some(317));
        assert_eq!(command_name(1), None);
        assert_eq!(application_name(app::S6A), Some("3GPP S6a/S6d"));
        assert_eq!(application_name(app::GX), Some("3GPP Gx"));
        assert_eq!(application_name(4), Some("Diameter Credit Control (Gy/Ro)"));
        assert_eq!(application_name(7), None);
        for c in COMMANDS {
            assert_eq!(COMMANDS.iter().filter(|d| d.0 == c.0).count(), 1, "{} twice", c.0);
        }
    }
}
