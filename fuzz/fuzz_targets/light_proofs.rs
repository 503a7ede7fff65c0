//! Untrusted proof bytes from a node: a state proof or a finalization certificate never panics
//! the light client, decoding or verifying, and never verifies against a root or validators it
//! was not made for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wetee_light::{Anchor, EntryProof, verify_entry};
use wetee_types::{Hash, Header};

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| Anchor::new(&wetee_light::testing::spec("wetee-fuzz", 4)).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 2 {
        0 => {
            if let Ok(proof) = EntryProof::from_bytes(rest) {
                let root = Hash::of(b"root");
                assert!(verify_entry(&root, b"app/key", Some(b"value"), &proof).is_err());
                assert!(verify_entry(&root, b"app/key", None, &proof).is_err());
            }
        }
        _ => {
            if let Ok(finalization) = anchor().decode_finalization(rest) {
                let header = Header::default();
                assert!(anchor().verify(&header, &[], &finalization).is_err());
            }
        }
    }
});
