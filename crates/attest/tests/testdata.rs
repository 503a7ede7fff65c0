//! The genuine vectors are the bytes their README names: every file in `SHA256SUMS` hashes to
//! its listed value, and every vector file is listed.

mod common;

use sha2::{Digest as _, Sha256};

#[test]
fn every_vector_matches_its_listed_sha256() {
    let dir = common::vectors();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).expect("SHA256SUMS");
    let mut listed = Vec::new();
    for line in sums.lines().filter(|line| !line.trim().is_empty()) {
        let (expected, path) = line.split_once("  ").expect("`HASH  PATH` lines");
        let actual = hex::encode(Sha256::digest(common::read(path)));
        assert_eq!(actual, expected, "{path} is not the published vector");
        listed.push(path.to_string());
    }
    for kind in ["dcap", "snp"] {
        for entry in std::fs::read_dir(dir.join(kind)).expect("vector directory") {
            let name = format!(
                "{kind}/{}",
                entry.expect("entry").file_name().to_string_lossy()
            );
            assert!(listed.contains(&name), "{name} is not in SHA256SUMS");
        }
    }
    assert_eq!(listed.len(), 11, "eight DCAP files and three SEV-SNP files");
}
