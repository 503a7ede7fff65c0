//! Untrusted evidence and collateral: detecting, parsing, checking and verifying any bytes never
//! panics, and nothing made of random bytes verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_attest::{Collateral, Policy, simulated, verify};
use wetee_types::TeeKind;

const AT: u64 = 1_790_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let kind = match selector % 5 {
        0 => None,
        1 => Some(TeeKind::Sgx),
        2 => Some(TeeKind::Tdx),
        3 => Some(TeeKind::SevSnp),
        _ => Some(TeeKind::Simulated),
    };
    let policy = Policy {
        allow_simulated: true,
        ..Policy::default()
    };
    let _ = wetee_attest::detect_kind(bytes);
    let evidence = wetee_attest::evidence_from_bytes(bytes);
    // Through every parser: the quote parser and dcap-qvl with well-formed collateral, the SNP
    // report parser, and the collateral parsers on the same bytes.
    let dev = Collateral::Dcap(Box::new(simulated::collateral().expect("dev PKI").clone()));
    let verdict = verify(&evidence, kind, &dev, AT, &policy);
    assert!(!verdict.valid || selector % 5 == 4, "random bytes verified: {verdict:?}");
    let _ = verify(&evidence, kind, &Collateral::Vcek(bytes.to_vec()), AT, &policy);
    // The chain's paths: finding a quote's family, splitting SNP evidence, and checking posted
    // collateral (nothing random is Intel-signed).
    let _ = wetee_attest::collateral::quote_fmspc(bytes);
    let _ = wetee_attest::split_snp_evidence(bytes);
    let root = wetee_attest::collateral::intel_root_ca_der();
    assert!(wetee_attest::collateral::check_collateral(bytes, root, AT).is_err());
    if let Ok(collateral) = Collateral::from_bytes(bytes) {
        let quote = simulated::quote(&[0; 64]).expect("dev quote");
        let _ = verify(&quote, Some(TeeKind::Tdx), &collateral, AT, &policy);
    }
});
