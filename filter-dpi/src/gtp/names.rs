//! Message type names: GTPv2-C (TS 29.274 Table 6.1-1), GTPv1-C and GTP-U (TS 29.060 Table 1,
//! TS 29.281 Table 6.1-1), spelled as Wireshark shows them.

const V2: &[(u8, &str)] = &[
    (1, "Echo Request"),
    (2, "Echo Response"),
    (3, "Version Not Supported Indication"),
    (25, "SRVCC PS to CS Request"),
    (26, "SRVCC PS to CS Response"),
    (27, "SRVCC PS to CS Complete Notification"),
    (28, "SRVCC PS to CS Complete Acknowledge"),
    (29, "SRVCC PS to CS Cancel Notification"),
    (30, "SRVCC PS to CS Cancel Acknowledge"),
    (31, "SRVCC CS to PS Request"),
    (32, "Create Session Request"),
    (33, "Create Session Response"),
    (34, "Modify Bearer Request"),
    (35, "Modify Bearer Response"),
    (36, "Delete Session Request"),
    (37, "Delete Session Response"),
    (38, "Change Notification Request"),
    (39, "Change Notification Response"),
    (40, "Remote UE Report Notification"),
    (41, "Remote UE Report Acknowledge"),
    (64, "Modify Bearer Command"),
    (65, "Modify Bearer Failure Indication"),
    (66, "Delete Bearer Command"),
    (67, "Delete Bearer Failure Indication"),
    (68, "Bearer Resource Command"),
    (69, "Bearer Resource Failure Indication"),
    (70, "Downlink Data Notification Failure Indication"),
    (71, "Trace Session Activation"),
    (72, "Trace Session Deactivation"),
    (73, "Stop Paging Indication"),
    (95, "Create Bearer Request"),
    (96, "Create Bearer Response"),
    (97, "Update Bearer Request"),
    (98, "Update Bearer Response"),
    (99, "Delete Bearer Request"),
    (100, "Delete Bearer Response"),
    (101, "Delete PDN Connection Set Request"),
    (102, "Delete PDN Connection Set Response"),
    (103, "PGW Downlink Triggering Notification"),
    (104, "PGW Downlink Triggering Acknowledge"),
    (128, "Identification Request"),
    (129, "Identification Response"),
    (130, "Context Request"),
    (131, "Context Response"),
    (132, "Context Acknowledge"),
    (133, "Forward Relocation Request"),
    (134, "Forward Relocation Response"),
    (135, "Forward Relocation Complete Notification"),
    (136, "Forward Relocation Complete Acknowledge"),
    (137, "Forward Access Context Notification"),
    (138, "Forward Access Context Acknowledge"),
    (139, "Relocation Cancel Request"),
    (140, "Relocation Cancel Response"),
    (141, "Configuration Transfer Tunnel"),
    (149, "Detach Notification"),
    (150, "Detach Acknowledge"),
    (151, "CS Paging Indication"),
    (152, "RAN Information Relay"),
    (153, "Alert MME Notification"),
    (154, "Alert MME Acknowledge"),
    (155, "UE Activity Notification"),
    (156, "UE Activity Acknowledge"),
    (157, "ISR Status Indication"),
    (158, "UE Registration Query Request"),
    (159, "UE Registration Query Response"),
    (160, "Create Forwarding Tunnel Request"),
    (161, "Create Forwarding Tunnel Response"),
    (162, "Suspend Notification"),
    (163, "Suspend Acknowledge"),
    (164, "Resume Notification"),
    (165, "Resume Acknowledge"),
    (166, "Create Indirect Data Forwarding Tunnel Request"),
    (167, "Create Indirect Data Forwarding Tunnel Response"),
    (168, "Delete Indirect Data Forwarding Tunnel Request"),
    (169, "Delete Indirect Data Forwarding Tunnel Response"),
    (170, "Release Access Bearers Request"),
    (171, "Release Access Bearers Response"),
    (176, "Downlink Data Notification"),
    (177, "Downlink Data Notification Acknowledge"),
    (179, "PGW Restart Notification"),
    (180, "PGW Restart Notification Acknowledge"),
    (200, "Update PDN Connection Set Request"),
    (201, "Update PDN Connection Set Response"),
    (211, "Modify Access Bearers Request"),
    (212, "Modify Access Bearers Response"),
    (231, "MBMS Session Start Request"),
    (232, "MBMS Session Start Response"),
    (233, "MBMS Session Update Request"),
    (234, "MBMS Session Update Response"),
    (235, "MBMS Session Stop Request"),
    (236, "MBMS Session Stop Response"),
];

const V1: &[(u8, &str)] = &[
    (1, "Echo Request"),
    (2, "Echo Response"),
    (3, "Version Not Supported"),
    (4, "Node Alive Request"),
    (5, "Node Alive Response"),
    (6, "Redirection Request"),
    (7, "Redirection Response"),
    (16, "Create PDP Context Request"),
    (17, "Create PDP Context Response"),
    (18, "Update PDP Context Request"),
    (19, "Update PDP Context Response"),
    (20, "Delete PDP Context Request"),
    (21, "Delete PDP Context Response"),
    (22, "Initiate PDP Context Activation Request"),
    (23, "Initiate PDP Context Activation Response"),
    (26, "Error Indication"),
    (27, "PDU Notification Request"),
    (28, "PDU Notification Response"),
    (29, "PDU Notification Reject Request"),
    (30, "PDU Notification Reject Response"),
    (31, "Supported Extension Headers Notification"),
    (32, "Send Routing Information for GPRS Request"),
    (33, "Send Routing Information for GPRS Response"),
    (34, "Failure Report Request"),
    (35, "Failure Report Response"),
    (36, "Note MS GPRS Present Request"),
    (37, "Note MS GPRS Present Response"),
    (48, "Identification Request"),
    (49, "Identification Response"),
    (50, "SGSN Context Request"),
    (51, "SGSN Context Response"),
    (52, "SGSN Context Acknowledge"),
    (53, "Forward Relocation Request"),
    (54, "Forward Relocation Response"),
    (55, "Forward Relocation Complete"),
    (56, "Relocation Cancel Request"),
    (57, "Relocation Cancel Response"),
    (58, "Forward SRNS Context"),
    (59, "Forward Relocation Complete Acknowledge"),
    (60, "Forward SRNS Context Acknowledge"),
    (61, "UE Registration Query Request"),
    (62, "UE Registration Query Response"),
    (70, "RAN Information Relay"),
    (96, "MBMS Notification Request"),
    (97, "MBMS Notification Response"),
    (98, "MBMS Notification Reject Request"),
    (99, "MBMS Notification Reject Response"),
    (100, "Create MBMS Context Request"),
    (101, "Create MBMS Context Response"),
    (102, "Update MBMS Context Request"),
    (103, "Update MBMS Context Response"),
    (104, "Delete MBMS Context Request"),
    (105, "Delete MBMS Context Response"),
    (112, "MBMS Registration Request"),
    (113, "MBMS Registration Response"),
    (114, "MBMS De-Registration Request"),
    (115, "MBMS De-Registration Response"),
    (116, "MBMS Session Start Request"),
    (117, "MBMS Session Start Response"),
    (118, "MBMS Session Stop Request"),
    (119, "MBMS Session Stop Response"),
    (120, "MBMS Session Update Request"),
    (121, "MBMS Session Update Response"),
    (128, "MS Info Change Notification Request"),
    (129, "MS Info Change Notification Response"),
    (240, "Data Record Transfer Request"),
    (241, "Data Record Transfer Response"),
    (253, "Tunnel Status"),
    (254, "End Marker"),
    (255, "G-PDU"),
];

/// Name of a GTPv2-C message type.
pub fn v2_message_name(t: u8) -> Option<&'static str> {
    V2.iter().find(|m| m.0 == t).map(|m| m.1)
}

/// Name of a GTPv1 (GTPv1-C or GTP-U) message type.
pub fn v1_message_name(t: u8) -> Option<&'static str> {
    V1.iter().find(|m| m.0 == t).map(|m| m.1)
}

/// GTPv2-C mobility management messages (TS 29.274 Table 6.1-1, types 128-159: identification,
/// context transfer, forward relocation, relocation cancel, detach, ...), exchanged between MMEs
/// and SGSNs over S3, S10 and S16 and never expected from a roaming partner on S8.
pub fn v2_is_mobility_management(t: u8) -> bool {
    (128..=159).contains(&t)
}

/// GTPv1-C mobility management messages between SGSNs (TS 29.060 §7.5, types 48-62: SGSN
/// context, identification, forward relocation), carried on Gn between PLMNs only for
/// inter-PLMN SGSN changes.
pub fn v1_is_mobility_management(t: u8) -> bool {
    (48..=62).contains(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(v2_message_name(32), Some("Create Session Request"));
        assert_eq!(v2_message_name(101), Some("Delete PDN Connection Set Request"));
        assert_eq!(v2_message_name(130), Some("Context Request"));
        assert_eq!(v2_message_name(0), None);
        assert_eq!(v1_message_name(16), Some("Create PDP Context Request"));
        assert_eq!(v1_message_name(50), Some("SGSN Context Request"));
        assert_eq!(v1_message_name(255), Some("G-PDU"));
        assert!(v2_is_mobility_management(130) && !v2_is_mobility_management(32));
        assert!(v1_is_mobility_management(50) && !v1_is_mobility_management(16));
        for t in [V1, V2] {
            for m in t {
                assert_eq!(t.iter().filter(|n| n.0 == m.0).count(), 1, "{} twice", m.0);
            }
        }
    }
}
