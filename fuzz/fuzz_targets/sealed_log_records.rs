//! Any bytes served as a workload's sealed output: splitting them into records, checking a
//! record's tag and opening it never panic, and nothing a forger made opens or carries the
//! worker's tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_sealing::log_batch::{
    Binding, is_tagged_by, leaf_of, open, record_len, records, tag_key,
};
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
    let tag_key = tag_key(&[5; 32]);
    for (index, record) in records(data).into_iter().enumerate() {
        let _ = leaf_of(record);
        assert!(
            !is_tagged_by(&tag_key, binding.workload, 1, index as u32, record),
            "a forged record carries the worker's tag"
        );
        let opened = open(&[9; 32], &[5; 32], &binding, index as u32, record);
        assert!(opened.is_err(), "a record made without the owner's key opened");
    }
});
