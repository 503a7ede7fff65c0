//! The simulated TEE's quotes verify through the genuine DCAP code path against the development
//! root, only where a policy allows them, and never against Intel's root.

mod common;

use wetee_attest::{AttestError, Collateral, Policy, simulated, verify};
use wetee_types::TeeKind;
use wetee_types::attestation::{Measurements, TcbStatus};

const NOW: u64 = 1_790_000_000;

fn allowed() -> Policy {
    Policy {
        allow_simulated: true,
        ..Policy::default()
    }
}

fn dev_collateral() -> Collateral {
    Collateral::Dcap(Box::new(simulated::collateral().unwrap().clone()))
}

#[test]
fn a_simulated_quote_verifies_only_where_allowed() {
    let report_data = [7u8; 64];
    let quote = simulated::quote(&report_data).unwrap();
    let verdict = verify(
        &quote,
        Some(TeeKind::Simulated),
        &dev_collateral(),
        NOW,
        &allowed(),
    );
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.kind, Some(TeeKind::Simulated));
    assert_eq!(verdict.tcb_status, Some(TcbStatus::UpToDate));
    assert_eq!(verdict.report_data, Some(report_data));
    assert_eq!(verdict.debug, Some(false));
    let Some(Measurements::Tdx(m)) = verdict.measurements else {
        panic!("TDX measurements")
    };
    assert_eq!(m.mr_td, simulated::mr_td());

    // Deterministic: every process derives the same PKI and the same quote.
    assert_eq!(quote, simulated::quote(&report_data).unwrap());

    let refused = verify(
        &quote,
        Some(TeeKind::Simulated),
        &dev_collateral(),
        NOW,
        &Policy::default(),
    );
    assert_eq!(
        refused.error,
        Some(AttestError::KindNotAllowed {
            kind: TeeKind::Simulated
        })
    );
}

#[test]
fn a_simulated_quote_is_never_a_genuine_tdx_quote() {
    let quote = simulated::quote(&[1; 64]).unwrap();
    // Presented as TDX, it is checked against Intel's root and fails at the first signature.
    let verdict = verify(&quote, None, &dev_collateral(), NOW, &allowed());
    assert_eq!(verdict.kind, Some(TeeKind::Tdx));
    assert!(!verdict.valid);
    assert!(
        matches!(verdict.error, Some(AttestError::Verification(_))),
        "{verdict:?}"
    );
    // With genuine Intel collateral it fails too.
    let genuine = common::read("dcap/tdx_quote_collateral.json");
    let verdict = verify(
        &quote,
        None,
        &Collateral::from_bytes(&genuine).unwrap(),
        1_750_377_600,
        &allowed(),
    );
    assert!(!verdict.valid);
}

#[test]
fn tampered_or_rebound_simulated_quotes_are_refused() {
    let report_data = [9u8; 64];
    let quote = simulated::quote(&report_data).unwrap();
    let bound = Policy {
        report_data: Some(report_data),
        ..allowed()
    };
    assert!(
        verify(
            &quote,
            Some(TeeKind::Simulated),
            &dev_collateral(),
            NOW,
            &bound
        )
        .valid
    );

    // A quote for other keys does not pass for these.
    let other = simulated::quote(&[8; 64]).unwrap();
    let verdict = verify(
        &other,
        Some(TeeKind::Simulated),
        &dev_collateral(),
        NOW,
        &bound,
    );
    assert!(matches!(
        verdict.error,
        Some(AttestError::ReportDataMismatch { .. })
    ));

    // Rewriting the report data in place breaks the attestation key's signature.
    let mut tampered = quote.clone();
    tampered[568] ^= 1;
    let verdict = verify(
        &tampered,
        Some(TeeKind::Simulated),
        &dev_collateral(),
        NOW,
        &allowed(),
    );
    assert!(!verdict.valid);
    assert!(
        matches!(verdict.error, Some(AttestError::Verification(_))),
        "{verdict:?}"
    );
    // So does rewriting the measurement.
    let mut remeasured = quote;
    remeasured[184] ^= 1;
    assert!(
        !verify(
            &remeasured,
            Some(TeeKind::Simulated),
            &dev_collateral(),
            NOW,
            &allowed()
        )
        .valid
    );
}

#[test]
fn an_out_of_date_platform_is_accepted_only_when_allowed_and_only_within_the_grace() {
    // The platform's TCB level is dated 2025-01-01 and declared OutOfDate.
    const TCB_DATE: u64 = 1_735_689_600;
    const DAY: u64 = 86_400;
    let quote = simulated::quote(&[3u8; 64]).unwrap();
    let outdated = simulated::out_of_date_collateral().unwrap();
    let check = |policy: &Policy, at: u64| {
        wetee_attest::verify_simulated_with(&quote, outdated, at, policy)
    };

    // A strict policy refuses the status, whatever the grace.
    let strict = allowed();
    let verdict = check(&strict, TCB_DATE + 10 * DAY);
    assert!(!verdict.valid);
    assert_eq!(verdict.tcb_status, Some(TcbStatus::OutOfDate));
    assert!(matches!(
        verdict.error,
        Some(AttestError::TcbStatusNotAllowed { .. })
    ));

    // Allowing it takes effect, within the default grace of 90 days past the TCB date.
    let allowing = Policy {
        allowed_tcb_statuses: vec![TcbStatus::UpToDate, TcbStatus::OutOfDate],
        ..allowed()
    };
    assert_eq!(allowing.platform_grace_days, Some(90));
    let verdict = check(&allowing, TCB_DATE + 60 * DAY);
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.tcb_status, Some(TcbStatus::OutOfDate));

    // Once the grace has passed it is refused, naming why.
    let verdict = check(&allowing, TCB_DATE + 120 * DAY);
    assert!(!verdict.valid);
    let Some(AttestError::TcbPolicy(reason)) = verdict.error else {
        panic!("a TCB policy refusal: {verdict:?}")
    };
    assert!(reason.contains("grace"), "{reason}");

    // A longer grace, or an unlimited one, accepts it for as long as the collateral is valid.
    let longer = Policy {
        platform_grace_days: Some(365),
        ..allowing.clone()
    };
    assert!(check(&longer, TCB_DATE + 120 * DAY).valid);
    let unlimited = Policy {
        platform_grace_days: None,
        ..allowing
    };
    assert!(check(&unlimited, TCB_DATE + 3_000 * DAY).valid);
}
