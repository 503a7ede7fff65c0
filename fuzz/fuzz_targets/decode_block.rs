//! Untrusted block bytes from peers: decoding never panics, what decodes re-encodes
//! identically, and the header's checks over the decoded block never panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_types::block::Block;
use wetee_types::codec::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = decode::<Block>(data) {
        assert_eq!(encode(&block), data, "a decoded block must re-encode to the same bytes");
        let _ = block.hash();
        let _ = block.transactions_match();
        for tx in block.transactions.iter() {
            let _ = tx.verify_signature(&wetee_types::Hash::ZERO);
        }
    }
});
