//! Any owner-API request's headers: verifying them never panics, and nothing unsigned passes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_types::Hash;
use wetee_types::owner::{
    ACCOUNT_HEADER, RequestTarget, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_request,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let fields: Vec<&str> = text.split('\n').collect();
    let field = |i: usize| fields.get(i).map(|f| f.to_string());
    let header = |name: &str| match name {
        ACCOUNT_HEADER => field(0),
        TIMESTAMP_HEADER => field(1),
        SIGNATURE_HEADER => field(2),
        _ => None,
    };
    let request = RequestTarget {
        method: fields.get(3).copied().unwrap_or("GET"),
        target: fields.get(4).copied().unwrap_or("/_wetee/apps/1/logs"),
        host: fields.get(5).copied().unwrap_or("127.0.0.1:8800"),
    };
    let now = field(1).and_then(|t| t.parse().ok()).unwrap_or(0);
    // A random signature verifying would be a forgery.
    assert!(verify_request(&Hash([7; 32]), request, header, now).is_err());
});
