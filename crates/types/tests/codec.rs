//! The wire format: pinned by conformance hashes, round-trips exactly, and never panics on
//! hostile bytes.

use arbitrary::{Arbitrary, Unstructured};
use commonware_codec::conformance::CodecConformance;
use commonware_conformance::conformance_tests;
use proptest::prelude::*;
use wetee_types::codec::{Canonical, decode, encode};
use wetee_types::event::{Event, Receipt};
use wetee_types::params::Params;
use wetee_types::records::{Account, App, AppFailure, AppSecrets, Lease, Task, TaskRun, Worker};
use wetee_types::report::SignedWorkReport;
use wetee_types::transaction::SignedTransaction;
use wetee_types::{CallError, Workload};

// A change to any of these encodings forks the chain: these tests fail until the change is made
// on purpose (`RUSTFLAGS="--cfg generate_conformance_tests" cargo test -p wetee-types`).
conformance_tests! {
    CodecConformance<SignedTransaction> => 2048,
    CodecConformance<SignedWorkReport> => 1024,
    CodecConformance<Receipt> => 1024,
    CodecConformance<Event> => 2048,
    CodecConformance<CallError> => 1024,
    CodecConformance<Account> => 1024,
    CodecConformance<Worker> => 1024,
    CodecConformance<App> => 1024,
    CodecConformance<AppSecrets> => 1024,
    CodecConformance<AppFailure> => 1024,
    CodecConformance<Task> => 1024,
    CodecConformance<TaskRun> => 1024,
    CodecConformance<Lease> => 1024,
    CodecConformance<Params> => 1024,
    CodecConformance<Workload> => 1024,
    CodecConformance<wetee_types::Block> => 256,
}

fn roundtrips<T>(data: &[u8]) -> Result<(), TestCaseError>
where
    T: Canonical + for<'a> Arbitrary<'a> + PartialEq + std::fmt::Debug,
{
    let mut u = Unstructured::new(data);
    if let Ok(value) = T::arbitrary(&mut u) {
        let bytes = encode(&value);
        let back: T = decode(&bytes).map_err(|e| TestCaseError::fail(format!("{value:?}: {e}")))?;
        prop_assert_eq!(&back, &value);
        // Canonical: the same value always has the same bytes.
        prop_assert_eq!(encode(&back), bytes);
    }
    Ok(())
}

/// The JSON form (what the RPC speaks) must carry every value exactly, so a typed client reads
/// back what the node meant.
fn json_roundtrips<T>(data: &[u8]) -> Result<(), TestCaseError>
where
    T: serde::Serialize
        + serde::de::DeserializeOwned
        + for<'a> Arbitrary<'a>
        + PartialEq
        + std::fmt::Debug,
{
    let mut u = Unstructured::new(data);
    if let Ok(value) = T::arbitrary(&mut u) {
        let text = serde_json::to_string(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: T =
            serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &value);
    }
    Ok(())
}

fn never_panics<T: Canonical>(bytes: &[u8]) {
    let _ = decode::<T>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn every_value_round_trips(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        roundtrips::<SignedTransaction>(&data)?;
        roundtrips::<SignedWorkReport>(&data)?;
        roundtrips::<Receipt>(&data)?;
        roundtrips::<Worker>(&data)?;
        roundtrips::<App>(&data)?;
        roundtrips::<Task>(&data)?;
        roundtrips::<TaskRun>(&data)?;
        roundtrips::<wetee_types::Block>(&data)?;
        roundtrips::<wetee_types::records::AppSecrets>(&data)?;
        roundtrips::<wetee_types::records::CollateralRecord>(&data)?;
    }

    #[test]
    fn every_value_survives_json(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        json_roundtrips::<SignedTransaction>(&data)?;
        json_roundtrips::<Receipt>(&data)?;
        json_roundtrips::<Event>(&data)?;
        json_roundtrips::<Worker>(&data)?;
        json_roundtrips::<App>(&data)?;
        json_roundtrips::<Task>(&data)?;
        json_roundtrips::<TaskRun>(&data)?;
        json_roundtrips::<Params>(&data)?;
        json_roundtrips::<wetee_types::attestation::AttestationPolicy>(&data)?;
        json_roundtrips::<wetee_types::records::AppSecrets>(&data)?;
        json_roundtrips::<wetee_types::Block>(&data)?;
    }

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        never_panics::<wetee_types::Block>(&bytes);
        never_panics::<SignedTransaction>(&bytes);
        never_panics::<SignedWorkReport>(&bytes);
        never_panics::<Receipt>(&bytes);
        never_panics::<Event>(&bytes);
        never_panics::<Worker>(&bytes);
        never_panics::<App>(&bytes);
        never_panics::<Task>(&bytes);
        let _ = SignedTransaction::decode(&bytes);
    }

    #[test]
    fn corrupting_a_valid_transaction_never_panics(
        data in proptest::collection::vec(any::<u8>(), 64..2048),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut u = Unstructured::new(&data);
        if let Ok(tx) = SignedTransaction::arbitrary(&mut u) {
            let mut bytes = encode(&tx);
            for (at, value) in flips {
                let len = bytes.len();
                bytes[at % len] ^= value | 1;
            }
            let _ = SignedTransaction::decode(&bytes);
            bytes.truncate(bytes.len() / 2);
            prop_assert!(SignedTransaction::decode(&bytes).is_err());
        }
    }
}

#[test]
fn the_manifest_parser_refuses_garbage_without_panicking() {
    let samples = [
        "",
        "kind = ",
        "kind = \"app\"\n[resources]\ncpu_millicores = 99999999999999999999",
        "kind = \"task\"\n[task]\ncron = \"\u{0}\"",
        "[[ports]]\ncontainer = -1",
        "kind = 1\nname = []",
    ];
    for sample in samples {
        assert!(wetee_types::manifest::Manifest::from_toml(sample).is_err());
    }
}

#[test]
fn dev_and_production_parameters_are_valid() {
    assert!(Params::dev().validate().is_ok());
    assert!(Params::production().validate().is_ok());
    let dev = wetee_types::attestation::AttestationPolicy::dev();
    let pinned = wetee_types::attestation::MeasurementRule::Sgx {
        mr_enclave: Some([7; 32]),
        mr_signer: None,
        isv_prod_id: None,
        min_isv_svn: None,
    };
    let production = wetee_types::attestation::AttestationPolicy::production(vec![pinned]);
    assert!(dev.validate().is_ok() && production.validate().is_ok());
    assert!(dev.allow_simulated_tee);
    assert!(!production.allow_simulated_tee);
    // Genuine TEEs only, and any worker binary: refused, naming the field.
    let unpinned = wetee_types::attestation::AttestationPolicy::production(Vec::new());
    assert!(
        unpinned
            .validate()
            .unwrap_err()
            .contains("allowed_worker_measurements")
    );
}
