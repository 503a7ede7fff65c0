//! Untrusted transaction bytes: decoding never panics, and what decodes re-encodes identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_types::transaction::SignedTransaction;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = SignedTransaction::decode(data) {
        assert_eq!(tx.encode(), data, "a decoded transaction must re-encode to the same bytes");
        let _ = tx.verify_signature(&wetee_types::Hash::ZERO);
        if let wetee_types::Call::Apps(wetee_types::transaction::AppsCall::Create { spec, .. }) = &tx.tx.call {
            let _ = spec.validate();
        }
    }
});
