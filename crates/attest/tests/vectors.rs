//! Genuine SGX, TDX and SEV-SNP evidence from real hardware gets the verdict its source states,
//! at the time it states, and is refused a year before and after, or with any bit flipped.

mod common;

use common::{YEAR, read};
use wetee_attest::{AttestError, Collateral, Policy, Verdict, verify};
use wetee_types::TeeKind;
use wetee_types::attestation::{MeasurementRule, Measurements, TcbStatus};

/// Inside every DCAP vector's collateral window (the README's time for the first two).
const JUNE_2025: u64 = 1_750_377_600;
const MARCH_2026: u64 = 1_772_323_200;
const OCTOBER_2026: u64 = 1_792_022_400;

fn dcap(name: &str) -> (Vec<u8>, Collateral) {
    let quote = read(&format!("dcap/{name}"));
    let collateral =
        Collateral::from_bytes(&read(&format!("dcap/{name}_collateral.json"))).expect("collateral");
    (quote, collateral)
}

fn snp() -> (Vec<u8>, Collateral) {
    let report = wetee_attest::evidence_from_bytes(&read("snp/virtee_report_milan.hex"));
    let vcek = Collateral::from_bytes(&read("snp/virtee_vcek_milan.der")).expect("vcek");
    (report, vcek)
}

fn allowing(status: TcbStatus) -> Policy {
    Policy {
        allowed_tcb_statuses: vec![TcbStatus::UpToDate, status],
        ..Policy::default()
    }
}

fn assert_refused(verdict: &Verdict, what: &str) {
    assert!(!verdict.valid, "{what} was accepted: {verdict:?}");
    assert!(verdict.reason.is_some(), "{what}: no reason");
}

fn flip_report_data(evidence: &[u8], verdict: &Verdict) -> Vec<u8> {
    let report_data = verdict.report_data.expect("report data read");
    let at = evidence
        .windows(64)
        .position(|w| w == report_data)
        .expect("report data inside the evidence");
    let mut flipped = evidence.to_vec();
    flipped[at + 17] ^= 0x04;
    flipped
}

#[test]
fn the_sgx_quote_is_genuine_but_refused_until_its_tcb_status_is_allowed() {
    let (quote, collateral) = dcap("sgx_quote");
    let verdict = verify(&quote, None, &collateral, JUNE_2025, &Policy::default());
    assert_refused(&verdict, "strict policy");
    assert_eq!(verdict.kind, Some(TeeKind::Sgx));
    assert_eq!(
        verdict.tcb_status,
        Some(TcbStatus::ConfigurationAndSwHardeningNeeded)
    );
    assert_eq!(verdict.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert!(matches!(
        verdict.error,
        Some(AttestError::TcbStatusNotAllowed { .. })
    ));
    assert_eq!(verdict.debug, Some(false));
    assert!(matches!(verdict.measurements, Some(Measurements::Sgx(_))));
    assert!(verdict.report_data.unwrap().starts_with(b"Hello, world!"));

    let policy = allowing(TcbStatus::ConfigurationAndSwHardeningNeeded);
    let verdict = verify(&quote, None, &collateral, JUNE_2025, &policy);
    assert!(verdict.valid, "{verdict:?}");
    assert!(verdict.reason.is_none());
}

#[test]
fn the_tdx_quotes_get_their_stated_verdicts() {
    for (name, at) in [("tdx_quote", JUNE_2025), ("tdx_quote_td15ex", OCTOBER_2026)] {
        let (quote, collateral) = dcap(name);
        let verdict = verify(&quote, None, &collateral, at, &Policy::default());
        assert!(verdict.valid, "{name}: {verdict:?}");
        assert_eq!(verdict.kind, Some(TeeKind::Tdx));
        assert_eq!(verdict.tcb_status, Some(TcbStatus::UpToDate));
        assert_eq!(verdict.debug, Some(false));
        assert!(matches!(verdict.measurements, Some(Measurements::Tdx(_))));
    }
    // A platform below every TCB level is refused whatever statuses are allowed.
    let (quote, collateral) = dcap("tdx_quote_outdated");
    let lenient = Policy {
        allowed_tcb_statuses: TcbStatus::ALL[..8].to_vec(),
        ..Policy::default()
    };
    let verdict = verify(&quote, None, &collateral, MARCH_2026, &lenient);
    assert_refused(&verdict, "outdated TDX platform");
    assert!(
        matches!(verdict.error, Some(AttestError::Verification(_))),
        "{verdict:?}"
    );
}

#[test]
fn every_dcap_vector_is_refused_a_year_before_and_a_year_after() {
    let lenient = allowing(TcbStatus::ConfigurationAndSwHardeningNeeded);
    for (name, at) in [
        ("sgx_quote", JUNE_2025),
        ("tdx_quote", JUNE_2025),
        ("tdx_quote_td15ex", OCTOBER_2026),
        ("tdx_quote_outdated", MARCH_2026),
    ] {
        let (quote, collateral) = dcap(name);
        for when in [at - YEAR, at + YEAR] {
            let verdict = verify(&quote, None, &collateral, when, &lenient);
            assert_refused(&verdict, &format!("{name} at {when}"));
            assert!(
                matches!(verdict.error, Some(AttestError::Verification(_))),
                "{name} at {when}: {verdict:?}"
            );
        }
    }
}

#[test]
fn a_flipped_bit_in_report_data_or_signed_collateral_is_refused() {
    let lenient = allowing(TcbStatus::ConfigurationAndSwHardeningNeeded);
    for (name, at) in [
        ("sgx_quote", JUNE_2025),
        ("tdx_quote", JUNE_2025),
        ("tdx_quote_td15ex", OCTOBER_2026),
    ] {
        let (quote, collateral) = dcap(name);
        let genuine = verify(&quote, None, &collateral, at, &lenient);
        assert!(genuine.valid, "{name}: {genuine:?}");

        let tampered = flip_report_data(&quote, &genuine);
        let verdict = verify(&tampered, None, &collateral, at, &lenient);
        assert_refused(&verdict, &format!("{name} with report_data flipped"));

        let Collateral::Dcap(mut signed) = collateral.clone() else {
            unreachable!()
        };
        let mut tcb_info = signed.tcb_info.into_bytes();
        let middle = tcb_info.len() / 2;
        tcb_info[middle] ^= 0x01;
        signed.tcb_info = String::from_utf8(tcb_info).expect("still ASCII");
        let verdict = verify(&quote, None, &Collateral::Dcap(signed), at, &lenient);
        assert_refused(&verdict, &format!("{name} with TCB Info flipped"));
    }
}

#[test]
fn report_data_and_measurements_are_checked_against_the_policy() {
    let (quote, collateral) = dcap("tdx_quote");
    let genuine = verify(&quote, None, &collateral, JUNE_2025, &Policy::default());
    let report_data = genuine.report_data.unwrap();
    let Some(Measurements::Tdx(m)) = genuine.measurements else {
        panic!("TDX measurements")
    };

    let bound = Policy {
        report_data: Some(report_data),
        ..Policy::default()
    };
    assert!(verify(&quote, None, &collateral, JUNE_2025, &bound).valid);
    let mut other = report_data;
    other[0] ^= 1;
    let wrong = Policy {
        report_data: Some(other),
        ..Policy::default()
    };
    let verdict = verify(&quote, None, &collateral, JUNE_2025, &wrong);
    assert!(matches!(
        verdict.error,
        Some(AttestError::ReportDataMismatch { .. })
    ));

    let rule = |mr_td| MeasurementRule::Tdx {
        mr_td: Some(mr_td),
        rtmr0: Some(m.rtmr0),
        rtmr1: None,
        rtmr2: None,
        rtmr3: None,
    };
    let allowed = Policy {
        allowed_measurements: vec![rule(m.mr_td)],
        ..Policy::default()
    };
    assert!(verify(&quote, None, &collateral, JUNE_2025, &allowed).valid);
    let mut other_td = m.mr_td;
    other_td[47] ^= 1;
    let refused = Policy {
        allowed_measurements: vec![rule(other_td)],
        ..Policy::default()
    };
    let verdict = verify(&quote, None, &collateral, JUNE_2025, &refused);
    assert_eq!(verdict.error, Some(AttestError::MeasurementNotAllowed));
}

#[test]
fn the_snp_report_verifies_through_amds_chain_and_its_vcek() {
    let (report, vcek) = snp();
    let verdict = verify(&report, None, &vcek, JUNE_2025, &Policy::default());
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.kind, Some(TeeKind::SevSnp));
    assert_eq!(verdict.tcb_status, None);
    assert_eq!(verdict.debug, Some(false));
    let Some(Measurements::SevSnp(m)) = verdict.measurements else {
        panic!("SNP measurements")
    };
    assert_eq!(m.policy, 0x30000);
    assert_eq!(hex::encode(&m.measurement[..4]), "7a1e5c26");
    assert_eq!(hex::encode(&verdict.report_data.unwrap()[..4]), "d447b55d");

    // The VCEK is valid from April 2023 to April 2030.
    for when in [1_680_549_823 - YEAR, 1_901_474_623 + YEAR] {
        let verdict = verify(&report, None, &vcek, when, &Policy::default());
        assert_refused(&verdict, &format!("SNP at {when}"));
    }

    let mut flipped = report.clone();
    flipped[0x50] ^= 0x01;
    assert_refused(
        &verify(&flipped, None, &vcek, JUNE_2025, &Policy::default()),
        "SNP with report_data flipped",
    );
    // A reserved byte the signature would not cover is refused too.
    let mut reserved = report.clone();
    reserved[0x400] = 1;
    assert_refused(
        &verify(&reserved, None, &vcek, JUNE_2025, &Policy::default()),
        "SNP with a reserved byte set",
    );
}

#[test]
fn mismatched_kinds_and_collateral_are_typed_refusals() {
    let (quote, collateral) = dcap("tdx_quote");
    let (report, vcek) = snp();
    let policy = Policy::default();
    let verdict = verify(&quote, Some(TeeKind::Sgx), &collateral, JUNE_2025, &policy);
    assert!(matches!(
        verdict.error,
        Some(AttestError::KindMismatch { .. })
    ));
    let verdict = verify(&quote, None, &vcek, JUNE_2025, &policy);
    assert!(matches!(verdict.error, Some(AttestError::Collateral(_))));
    let verdict = verify(&report, None, &collateral, JUNE_2025, &policy);
    assert!(matches!(verdict.error, Some(AttestError::Collateral(_))));
    let (sgx, sgx_collateral) = dcap("sgx_quote");
    let verdict = verify(
        &sgx,
        None,
        &collateral,
        JUNE_2025,
        &allowing(TcbStatus::ConfigurationAndSwHardeningNeeded),
    );
    assert_refused(&verdict, "SGX quote with TDX collateral");
    let verdict = verify(&quote, None, &sgx_collateral, JUNE_2025, &policy);
    assert_refused(&verdict, "TDX quote with SGX collateral");
    let verdict = verify(
        &quote,
        Some(TeeKind::Simulated),
        &collateral,
        JUNE_2025,
        &policy,
    );
    assert_eq!(
        verdict.error,
        Some(AttestError::KindNotAllowed {
            kind: TeeKind::Simulated
        })
    );
}

#[test]
fn truncated_garbage_and_oversized_evidence_never_panics() {
    let (quote, collateral) = dcap("tdx_quote");
    let (report, vcek) = snp();
    let policy = Policy::default();
    // The TDX quote is 4,936 bytes followed by zero padding.
    for (evidence, end) in [(&quote, 4936), (&report, report.len())] {
        for len in [0, 1, 47, 48, 100, 600, end / 2, end - 1] {
            let cut = &evidence[..len.min(evidence.len())];
            for c in [&collateral, &vcek] {
                assert_refused(&verify(cut, None, c, JUNE_2025, &policy), "truncated");
            }
        }
    }
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(
        verify(&garbage, None, &collateral, JUNE_2025, &policy).error,
        Some(AttestError::UnknownKind)
    );
    let mut oversized = quote.clone();
    oversized.resize(wetee_attest::MAX_EVIDENCE_BYTES + 1, 0);
    assert!(matches!(
        verify(&oversized, None, &collateral, JUNE_2025, &policy).error,
        Some(AttestError::Oversized { .. })
    ));
    // Zero padding after a genuine quote is accepted; other bytes no signature covers are not.
    let mut padded = quote.clone();
    padded.extend_from_slice(&[0; 16]);
    assert!(verify(&padded, None, &collateral, JUNE_2025, &policy).valid);
    padded.push(1);
    assert_refused(
        &verify(&padded, None, &collateral, JUNE_2025, &policy),
        "padded quote",
    );
    assert!(Collateral::from_bytes(b"{\"not\": \"collateral\"}").is_err());
    assert!(Collateral::from_bytes(b"garbage").is_err());
    assert!(
        Collateral::from_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .is_err()
    );
}

#[test]
fn what_evidence_claims_is_what_verification_finds() {
    for (name, at, kind) in [
        ("sgx_quote", JUNE_2025, TeeKind::Sgx),
        ("tdx_quote", JUNE_2025, TeeKind::Tdx),
        ("tdx_quote_td15ex", OCTOBER_2026, TeeKind::Tdx),
    ] {
        let (quote, collateral) = dcap(name);
        let lenient = Policy {
            allowed_tcb_statuses: vec![
                TcbStatus::UpToDate,
                TcbStatus::ConfigurationAndSwHardeningNeeded,
            ],
            ..Policy::default()
        };
        let verdict = verify(&quote, Some(kind), &collateral, at, &lenient);
        assert!(verdict.valid, "{name}: {verdict:?}");
        let claimed = wetee_attest::claimed_measurements(&quote, kind).unwrap();
        assert_eq!(Some(claimed), verdict.measurements, "{name}");
        // The exact rule of a build admits it, and only it.
        let rule = MeasurementRule::exactly(&claimed);
        assert!(rule.is_pinned() && rule.matches(&claimed));
    }
    let (report, collateral) = snp();
    let verdict = verify(
        &report,
        Some(TeeKind::SevSnp),
        &collateral,
        JUNE_2025,
        &Policy::default(),
    );
    assert!(verdict.valid, "{verdict:?}");
    let claimed = wetee_attest::claimed_measurements(&report, TeeKind::SevSnp).unwrap();
    assert_eq!(Some(claimed), verdict.measurements);
    // Bytes that are no evidence are an error, not a panic.
    for junk in [&[][..], &[0u8; 7][..], &[0xff; 5000][..]] {
        for kind in [TeeKind::Sgx, TeeKind::Tdx, TeeKind::SevSnp] {
            assert!(wetee_attest::claimed_measurements(junk, kind).is_err());
        }
    }
}
