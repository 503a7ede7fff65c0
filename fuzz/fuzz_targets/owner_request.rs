//! Any owner-API request's headers: verifying them never panics, and nothing unsigned passes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_types::owner::{
    ACCOUNT_HEADER, Audience, NONCE_HEADER, RequestTarget, SESSION_HEADER, SIGNATURE_HEADER,
    Session, TIMESTAMP_HEADER, verify_request,
};
use wetee_types::{Hash, WorkerId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let fields: Vec<&str> = text.split('\n').collect();
    let field = |i: usize| fields.get(i).map(|f| f.to_string());
    let header = |name: &str| match name {
        ACCOUNT_HEADER => field(0),
        TIMESTAMP_HEADER => field(1),
        NONCE_HEADER => field(2),
        SIGNATURE_HEADER => field(3),
        SESSION_HEADER => field(4),
        _ => None,
    };
    if let Some(session) = field(4) {
        let _ = Session::parse(&session);
    }
    let host = fields.get(6).copied().unwrap_or("127.0.0.1:8800");
    let request = RequestTarget {
        method: "GET",
        target: fields.get(5).copied().unwrap_or("/_wetee/apps/1/logs"),
        host,
    };
    let audience = Audience {
        worker: WorkerId(1),
        authority: host,
    };
    let now = field(1).and_then(|t| t.parse().ok()).unwrap_or(0);
    // A random signature verifying would be a forgery.
    assert!(verify_request(&Hash([7; 32]), audience, request, header, now).is_err());
});
