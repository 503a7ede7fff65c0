//! Any bytes served as a workload's sealed output: splitting them into records and opening
//! each never panics, and nothing a forger made opens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_sealing::log_batch::{Binding, leaf_of, open, record_len, records};
use wetee_types::{AccountId, AppId, Hash, WorkerId, Workload};

fuzz_target!(|data: &[u8]| {
    let _ = record_len(data);
    let genesis = Hash::of(b"fuzz");
    let owner = AccountId([7; 32]);
    let binding = Binding {
        genesis_hash: &genesis,
        workload: Workload::App { app: AppId(1) },
        epoch: 1,
        worker: WorkerId(1),
        owner: &owner,
    };
    for (index, record) in records(data).into_iter().enumerate() {
        let _ = leaf_of(record);
        let opened = open(&[9; 32], &[5; 32], &binding, index as u32, record);
        assert!(opened.is_err(), "a record made without the owner's key opened");
    }
});
