//! Untrusted RPC parameters: the JSON of every parameter type the node's methods take (see
//! `wetee-rpc-api`) never panics to decode, what decodes is read back identically after
//! encoding, and a transaction parameter is a transaction or a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wetee_types::rpc::{
    BlockId, EventFilter, Hex, HistoryPage, PageRequest, PlacementRequest, TransactionParam,
};
use wetee_types::{AccountId, AppId, TaskId, TeeKind, WorkerId, Workload};

/// Decodes `json` as `T`; what decodes must encode to JSON that decodes to the same value.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(json: &str) -> Option<T> {
    let value: T = serde_json::from_str(json).ok()?;
    let again: T = serde_json::from_str(&serde_json::to_string(&value).expect("encodes"))
        .expect("what decoded decodes again");
    assert_eq!(value, again, "a parameter must read back as it was");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    round_trip::<AccountId>(json);
    round_trip::<Option<BlockId>>(json);
    round_trip::<Vec<Hex>>(json);
    round_trip::<Option<PageRequest<WorkerId>>>(json);
    round_trip::<Option<PageRequest<AppId>>>(json);
    round_trip::<Option<PageRequest<TaskId>>>(json);
    round_trip::<Option<PageRequest<u32>>>(json);
    round_trip::<Option<PageRequest<u64>>>(json);
    round_trip::<Option<PageRequest<Workload>>>(json);
    round_trip::<Option<EventFilter>>(json);
    round_trip::<Option<HistoryPage>>(json);
    round_trip::<PlacementRequest>(json);
    round_trip::<Workload>(json);
    round_trip::<TeeKind>(json);
    if let Some(page) = round_trip::<PageRequest<u64>>(json) {
        assert!((1..=wetee_types::rpc::MAX_PAGE as usize).contains(&page.size()));
    }
    if let Ok(param) = serde_json::from_str::<TransactionParam>(json) {
        let _ = param.into_transaction();
    }
});
