//! The genuine TEE test vectors, shared by the attest test binaries.
#![allow(dead_code)]

use std::path::PathBuf;

pub const YEAR: u64 = 365 * 24 * 3600;

/// `WETEE_TEE_VECTORS`, or the crate's own `testdata/`.
pub fn vectors() -> PathBuf {
    let dir = std::env::var_os("WETEE_TEE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata"));
    assert!(
        dir.join("README.md").exists(),
        "the TEE test vectors are not at {} (set WETEE_TEE_VECTORS)",
        dir.display()
    );
    dir
}

/// A vector's bytes, by its path under the vectors directory.
pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(vectors().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}
