#![no_main]
//! SMS TPDUs (`filter_dpi::sms`) both ways; the first byte picks the direction.

use filter_dpi::sms::{Direction, TpduSlice};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&d, rest)) = data.split_first() else { return };
    let dir = if d & 1 == 0 { Direction::ToMs } else { Direction::FromMs };
    if let Ok(t) = TpduSlice::from_slice(rest, dir) {
        let _ = (t.ies().count(), t.sim_ota_marks(), t.address().map(|a| a.digits()), t.user_data().len());
    }
});
