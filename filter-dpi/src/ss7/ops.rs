//! GSM MAP local operation codes (3GPP TS 29.002 §17.5), named once.
//!
//! Every operation is one line below: its constant, its code and its name as TS 29.002 and
//! tshark spell it. The names table ([`name`], [`ALL`]), the per-operation extraction in
//! [`super::map`] and the controller's rule lists (SS7 Category 1 and 2) all use these
//! constants, so an operation is never a bare number in two places. MAP codes are local values
//! 0..=127 (TS 29.002 `OPERATION-CODE`), hence `u8`.

macro_rules! operations {
    ($($constant:ident = $code:literal, $name:literal;)*) => {
        $(
            #[doc = concat!("`", $name, "` (", stringify!($code), ").")]
            pub const $constant: u8 = $code;
        )*

        /// Every assigned operation: code and name, in code order.
        pub const ALL: &[(u8, &str)] = &[$(($constant, $name)),*];

        /// Operation name as tshark and TS 29.002 spell it (`None` for unassigned codes).
        pub const fn name(code: u8) -> Option<&'static str> {
            match code {
                $($constant => Some($name),)*
                _ => None,
            }
        }
    };
}

operations! {
    UPDATE_LOCATION = 2, "updateLocation";
    CANCEL_LOCATION = 3, "cancelLocation";
    PROVIDE_ROAMING_NUMBER = 4, "provideRoamingNumber";
    NOTE_SUBSCRIBER_DATA_MODIFIED = 5, "noteSubscriberDataModified";
    RESUME_CALL_HANDLING = 6, "resumeCallHandling";
    INSERT_SUBSCRIBER_DATA = 7, "insertSubscriberData";
    DELETE_SUBSCRIBER_DATA = 8, "deleteSubscriberData";
    SEND_PARAMETERS = 9, "sendParameters";
    REGISTER_SS = 10, "registerSS";
    ERASE_SS = 11, "eraseSS";
    ACTIVATE_SS = 12, "activateSS";
    DEACTIVATE_SS = 13, "deactivateSS";
    INTERROGATE_SS = 14, "interrogateSS";
    AUTHENTICATION_FAILURE_REPORT = 15, "authenticationFailureReport";
    NOTIFY_SS = 16, "notifySS";
    REGISTER_PASSWORD = 17, "registerPassword";
    GET_PASSWORD = 18, "getPassword";
    PROCESS_UNSTRUCTURED_SS_DATA = 19, "processUnstructuredSS-Data";
    RELEASE_RESOURCES = 20, "releaseResources";
    MT_FORWARD_SM_VGCS = 21, "mt-ForwardSM-VGCS";
    SEND_ROUTING_INFO = 22, "sendRoutingInfo";
    UPDATE_GPRS_LOCATION = 23, "updateGprsLocation";
    SEND_ROUTING_INFO_FOR_GPRS = 24, "sendRoutingInfoForGprs";
    FAILURE_REPORT = 25, "failureReport";
    NOTE_MS_PRESENT_FOR_GPRS = 26, "noteMsPresentForGprs";
    PERFORM_HANDOVER = 28, "performHandover";
    SEND_END_SIGNAL = 29, "sendEndSignal";
    PERFORM_SUBSEQUENT_HANDOVER = 30, "performSubsequentHandover";
    PROVIDE_SIWFS_NUMBER = 31, "provideSIWFSNumber";
    SIWFS_SIGNALLING_MODIFY = 32, "sIWFSSignallingModify";
    PROCESS_ACCESS_SIGNALLING = 33, "processAccessSignalling";
    FORWARD_ACCESS_SIGNALLING = 34, "forwardAccessSignalling";
    NOTE_INTERNAL_HANDOVER = 35, "noteInternalHandover";
    CANCEL_VCSG_LOCATION = 36, "cancelVcsgLocation";
    RESET = 37, "reset";
    FORWARD_CHECK_SS_INDICATION = 38, "forwardCheckSS-Indication";
    PREPARE_GROUP_CALL = 39, "prepareGroupCall";
    SEND_GROUP_CALL_END_SIGNAL = 40, "sendGroupCallEndSignal";
    PROCESS_GROUP_CALL_SIGNALLING = 41, "processGroupCallSignalling";
    FORWARD_GROUP_CALL_SIGNALLING = 42, "forwardGroupCallSignalling";
    CHECK_IMEI = 43, "checkIMEI";
    MT_FORWARD_SM = 44, "mt-forwardSM";
    SEND_ROUTING_INFO_FOR_SM = 45, "sendRoutingInfoForSM";
    MO_FORWARD_SM = 46, "mo-forwardSM";
    REPORT_SM_DELIVERY_STATUS = 47, "reportSM-DeliveryStatus";
    NOTE_SUBSCRIBER_PRESENT = 48, "noteSubscriberPresent";
    ALERT_SERVICE_CENTRE_WITHOUT_RESULT = 49, "alertServiceCentreWithoutResult";
    ACTIVATE_TRACE_MODE = 50, "activateTraceMode";
    DEACTIVATE_TRACE_MODE = 51, "deactivateTraceMode";
    TRACE_SUBSCRIBER_ACTIVITY = 52, "traceSubscriberActivity";
    UPDATE_VCSG_LOCATION = 53, "updateVcsgLocation";
    BEGIN_SUBSCRIBER_ACTIVITY = 54, "beginSubscriberActivity";
    SEND_IDENTIFICATION = 55, "sendIdentification";
    SEND_AUTHENTICATION_INFO = 56, "sendAuthenticationInfo";
    RESTORE_DATA = 57, "restoreData";
    SEND_IMSI = 58, "sendIMSI";
    PROCESS_UNSTRUCTURED_SS_REQUEST = 59, "processUnstructuredSS-Request";
    UNSTRUCTURED_SS_REQUEST = 60, "unstructuredSS-Request";
    UNSTRUCTURED_SS_NOTIFY = 61, "unstructuredSS-Notify";
    ANY_TIME_SUBSCRIPTION_INTERROGATION = 62, "anyTimeSubscriptionInterrogation";
    INFORM_SERVICE_CENTRE = 63, "informServiceCentre";
    ALERT_SERVICE_CENTRE = 64, "alertServiceCentre";
    ANY_TIME_MODIFICATION = 65, "anyTimeModification";
    READY_FOR_SM = 66, "readyForSM";
    PURGE_MS = 67, "purgeMS";
    PREPARE_HANDOVER = 68, "prepareHandover";
    PREPARE_SUBSEQUENT_HANDOVER = 69, "prepareSubsequentHandover";
    PROVIDE_SUBSCRIBER_INFO = 70, "provideSubscriberInfo";
    ANY_TIME_INTERROGATION = 71, "anyTimeInterrogation";
    SS_INVOCATION_NOTIFICATION = 72, "ss-InvocationNotification";
    SET_REPORTING_STATE = 73, "setReportingState";
    STATUS_REPORT = 74, "statusReport";
    REMOTE_USER_FREE = 75, "remoteUserFree";
    REGISTER_CC_ENTRY = 76, "registerCC-Entry";
    ERASE_CC_ENTRY = 77, "eraseCC-Entry";
    SECURE_TRANSPORT_CLASS1 = 78, "secureTransportClass1";
    SECURE_TRANSPORT_CLASS2 = 79, "secureTransportClass2";
    SECURE_TRANSPORT_CLASS3 = 80, "secureTransportClass3";
    SECURE_TRANSPORT_CLASS4 = 81, "secureTransportClass4";
    PROVIDE_SUBSCRIBER_LOCATION = 83, "provideSubscriberLocation";
    SEND_GROUP_CALL_INFO = 84, "sendGroupCallInfo";
    SEND_ROUTING_INFO_FOR_LCS = 85, "sendRoutingInfoForLCS";
    SUBSCRIBER_LOCATION_REPORT = 86, "subscriberLocationReport";
    IST_ALERT = 87, "ist-Alert";
    IST_COMMAND = 88, "ist-Command";
    NOTE_MM_EVENT = 89, "noteMM-Event";
    LCS_PERIODIC_LOCATION_CANCELLATION = 109, "lcs-PeriodicLocationCancellation";
    LCS_LOCATION_UPDATE = 110, "lcs-LocationUpdate";
    LCS_PERIODIC_LOCATION_REQUEST = 111, "lcs-PeriodicLocationRequest";
    LCS_AREA_EVENT_CANCELLATION = 112, "lcs-AreaEventCancellation";
    LCS_AREA_EVENT_REPORT = 113, "lcs-AreaEventReport";
    LCS_AREA_EVENT_REQUEST = 114, "lcs-AreaEventRequest";
    LCS_MOLR = 115, "lcs-MOLR";
    LCS_LOCATION_NOTIFICATION = 116, "lcs-LocationNotification";
    CALL_DEFLECTION = 117, "callDeflection";
    USER_USER_SERVICE = 118, "userUserService";
    ACCESS_REGISTER_CC_ENTRY = 119, "accessRegisterCCEntry";
    FORWARD_CUG_INFO = 120, "forwardCUG-Info";
    SPLIT_MPTY = 121, "splitMPTY";
    RETRIEVE_MPTY = 122, "retrieveMPTY";
    HOLD_MPTY = 123, "holdMPTY";
    BUILD_MPTY = 124, "buildMPTY";
    FORWARD_CHARGE_ADVICE = 125, "forwardChargeAdvice";
    EXPLICIT_CT = 126, "explicitCT";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_named() {
        assert!(ALL.windows(2).all(|w| w[0].0 < w[1].0), "codes sorted and unique");
        assert_eq!(ALL.len(), 104);
        for &(code, n) in ALL {
            assert_eq!(name(code), Some(n));
        }
        assert_eq!(name(ANY_TIME_INTERROGATION), Some("anyTimeInterrogation"));
        assert_eq!(name(0), None);
        assert_eq!(name(127), None);
    }
}
