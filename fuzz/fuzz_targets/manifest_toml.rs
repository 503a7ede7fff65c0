//! `wetee.toml` from anyone: parsing and validation never panic, and an accepted manifest is
//! valid on chain too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_types::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Manifest::from_toml(text) {
        Ok(Manifest::App(app)) => assert!(app.validate().is_ok()),
        Ok(Manifest::Task(task)) => assert!(task.validate().is_ok()),
        Err(_) => {}
    }
});
