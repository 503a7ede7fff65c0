//! Every record and message a node or worker decodes from the network or disk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_types::codec::{decode, encode};
use wetee_types::event::{Event, Receipt};
use wetee_types::records::{App, Task, Worker};
use wetee_types::report::SignedWorkReport;

fn check<T: wetee_types::codec::Canonical>(data: &[u8]) {
    if let Ok(value) = decode::<T>(data) {
        assert_eq!(encode(&value), data);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 6 {
        0 => check::<SignedWorkReport>(rest),
        1 => check::<Receipt>(rest),
        2 => check::<Event>(rest),
        3 => check::<Worker>(rest),
        4 => check::<App>(rest),
        _ => check::<Task>(rest),
    }
});
