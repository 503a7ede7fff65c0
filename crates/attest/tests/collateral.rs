//! Genuine DCAP collateral is accepted for registration at the time its source states, for the
//! kind and FMSPC of its quote, and refused when stale, tampered with, chained to another root,
//! or not collateral at all.

mod common;

use common::{YEAR, read};
use wetee_attest::collateral::{CollateralInfo, check_collateral, intel_root_ca_der, quote_fmspc};
use wetee_attest::{AttestError, QuoteCollateralV3, simulated};
use wetee_types::TeeKind;

/// The README's time for each vector.
const VECTORS: [(&str, u64, TeeKind); 4] = [
    ("sgx_quote", 1_750_377_600, TeeKind::Sgx),
    ("tdx_quote", 1_750_377_600, TeeKind::Tdx),
    ("tdx_quote_outdated", 1_772_323_200, TeeKind::Tdx),
    ("tdx_quote_td15ex", 1_792_022_400, TeeKind::Tdx),
];

fn quote(name: &str) -> Vec<u8> {
    read(&format!("dcap/{name}"))
}

fn collateral_json(name: &str) -> Vec<u8> {
    read(&format!("dcap/{name}_collateral.json"))
}

fn collateral(name: &str) -> QuoteCollateralV3 {
    serde_json::from_slice(&collateral_json(name)).expect("collateral JSON")
}

fn json(collateral: &QuoteCollateralV3) -> Vec<u8> {
    serde_json::to_vec(collateral).expect("serializes")
}

fn check_intel(collateral: &QuoteCollateralV3, at: u64) -> Result<CollateralInfo, AttestError> {
    check_collateral(&json(collateral), intel_root_ca_der(), at)
}

fn flip_middle(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    String::from_utf8(bytes).expect("still ASCII")
}

fn tcb_evaluation_data_number(collateral: &QuoteCollateralV3) -> u64 {
    let tcb_info: serde_json::Value = serde_json::from_str(&collateral.tcb_info).unwrap();
    tcb_info["tcbEvaluationDataNumber"].as_u64().unwrap()
}

#[test]
fn every_dcap_vector_is_accepted_at_its_time_for_its_quotes_kind_and_fmspc() {
    for (name, at, kind) in VECTORS {
        let info = check_collateral(&collateral_json(name), intel_root_ca_der(), at)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.kind, kind, "{name}");
        assert_eq!(quote_fmspc(&quote(name)), Ok((kind, info.fmspc)), "{name}");
        // The collateral carries the revocation list of the CA that issued the quote's PCK.
        assert_eq!(
            wetee_attest::collateral::quote_pck_ca(&quote(name)),
            Ok(info.pck_ca),
            "{name}"
        );
        assert!(
            info.issued_at <= at && at <= info.next_update,
            "{name}: {info:?}"
        );
        assert_eq!(
            u64::from(info.tcb_evaluation_data_number),
            tcb_evaluation_data_number(&collateral(name)),
            "{name}"
        );
    }
    // Intel's dates, read exactly; the next update is the earliest one (here the QE Identity's).
    let sgx = check_collateral(
        &collateral_json("sgx_quote"),
        intel_root_ca_der(),
        1_750_377_600,
    )
    .unwrap();
    assert_eq!(
        sgx,
        CollateralInfo {
            kind: TeeKind::Sgx,
            fmspc: [0x00, 0xA0, 0x67, 0x11, 0x00, 0x00],
            issued_at: 1_750_330_571,   // 2025-06-19T10:56:11Z
            next_update: 1_752_919_278, // 2025-07-19T10:01:18Z
            tcb_evaluation_data_number: 17,
            pck_ca: "processor",
        }
    );
}

#[test]
fn every_dcap_vector_is_refused_a_year_before_and_a_year_after() {
    for (name, at, _) in VECTORS {
        for when in [at - YEAR, at + YEAR] {
            let result = check_collateral(&collateral_json(name), intel_root_ca_der(), when);
            assert!(
                matches!(result, Err(AttestError::CollateralNotCurrent { .. })),
                "{name} at {when}: {result:?}"
            );
        }
    }
}

#[test]
fn collateral_is_refused_from_the_second_after_its_next_update_naming_what_expired() {
    let sgx = collateral("sgx_quote");
    let info = check_intel(&sgx, 1_750_377_600).unwrap();
    assert_eq!(check_intel(&sgx, info.next_update), Ok(info));
    assert_eq!(
        check_intel(&sgx, info.next_update + 1),
        Err(AttestError::CollateralNotCurrent {
            what: "QE Identity".into(),
            valid_from: 1_750_327_278, // 2025-06-19T10:01:18Z
            valid_until: info.next_update,
            at: info.next_update + 1,
        })
    );
    let Err(AttestError::CollateralNotCurrent { what, .. }) = check_intel(&sgx, info.issued_at - 1)
    else {
        panic!("accepted before its TCB Info was issued")
    };
    assert_eq!(what, "TCB Info");
}

#[test]
fn a_flipped_byte_in_signed_collateral_or_its_signatures_is_refused() {
    for (name, at, _) in VECTORS {
        let genuine = collateral(name);
        let mut tampered = Vec::new();

        let mut c = genuine.clone();
        c.tcb_info = flip_middle(&c.tcb_info);
        tampered.push(("TCB Info", c));
        let mut c = genuine.clone();
        c.qe_identity = flip_middle(&c.qe_identity);
        tampered.push(("QE Identity", c));
        let mut c = genuine.clone();
        c.tcb_info_signature[40] ^= 0x01;
        tampered.push(("TCB Info signature", c));
        let mut c = genuine.clone();
        c.qe_identity_signature[7] ^= 0x80;
        tampered.push(("QE Identity signature", c));

        for (what, c) in tampered {
            let result = check_intel(&c, at);
            assert!(
                matches!(result, Err(AttestError::Verification(_))),
                "{name} with its {what} flipped: {result:?}"
            );
        }
        // A CRL's signed part or signature: refused as unparseable or unsigned.
        for at_byte in [60, 100] {
            for root_crl in [true, false] {
                let mut c = genuine.clone();
                let crl = if root_crl {
                    &mut c.root_ca_crl
                } else {
                    &mut c.pck_crl
                };
                let at_byte = at_byte.min(crl.len() - 1);
                crl[at_byte] ^= 0x01;
                assert!(check_intel(&c, at).is_err(), "{name}: CRL byte {at_byte}");
            }
        }
        let mut c = genuine.clone();
        let end = c.root_ca_crl.len() - 1;
        c.root_ca_crl[end] ^= 0x01;
        assert!(
            matches!(check_intel(&c, at), Err(AttestError::Verification(_))),
            "{name}: root CA CRL signature"
        );
    }
}

#[test]
fn tcb_info_and_qe_identity_of_different_kinds_are_refused() {
    // Both genuine and current, but an SGX TCB Info with a TD quoting enclave's identity.
    let tdx = collateral("tdx_quote");
    let mut mixed = collateral("sgx_quote");
    mixed.qe_identity = tdx.qe_identity;
    mixed.qe_identity_signature = tdx.qe_identity_signature;
    mixed.qe_identity_issuer_chain = tdx.qe_identity_issuer_chain;
    let result = check_intel(&mixed, 1_750_377_600);
    assert!(
        matches!(&result, Err(AttestError::Collateral(m)) if m.contains("TD_QE")),
        "{result:?}"
    );
}

#[test]
fn collateral_chained_to_another_root_is_refused() {
    let dev_root = simulated::root_ca_der().unwrap();
    let dev = simulated::collateral().unwrap();
    for (name, at, _) in VECTORS {
        let result = check_collateral(&collateral_json(name), dev_root, at);
        assert!(
            matches!(result, Err(AttestError::Verification(_))),
            "{name} against the development root: {result:?}"
        );
        // Intel's root and CRLs, but TCB Info signed by another PKI.
        let mut c = collateral(name);
        c.tcb_info = dev.tcb_info.clone();
        c.tcb_info_signature = dev.tcb_info_signature.clone();
        c.tcb_info_issuer_chain = dev.tcb_info_issuer_chain.clone();
        let result = check_intel(&c, at);
        assert!(
            matches!(result, Err(AttestError::Verification(_))),
            "{name} with the development TCB Info: {result:?}"
        );
        // Intel's TCB signing certificate alone, without the root, is accepted; followed by
        // anything but the root it is not.
        let mut c = collateral(name);
        let end = "-----END CERTIFICATE-----";
        let signer = c.tcb_info_issuer_chain.split_inclusive(end).next().unwrap();
        let signer = signer.to_string();
        c.tcb_info_issuer_chain = signer.clone();
        assert!(check_intel(&c, at).is_ok(), "{name}: signer without root");
        c.tcb_info_issuer_chain = format!("{signer}\n{signer}");
        assert!(
            matches!(check_intel(&c, at), Err(AttestError::Verification(_))),
            "{name}: signer followed by itself"
        );
        c.tcb_info_issuer_chain = dev.tcb_info_issuer_chain.clone() + &signer;
        assert!(check_intel(&c, at).is_err(), "{name}: three certificates");
    }
}

#[test]
fn the_simulated_collateral_is_accepted_only_against_the_development_root() {
    const NOW: u64 = 1_790_000_000;
    let dev = json(simulated::collateral().unwrap());
    let dev_root = simulated::root_ca_der().unwrap();
    let info = check_collateral(&dev, dev_root, NOW).unwrap();
    assert_eq!(
        info,
        CollateralInfo {
            kind: TeeKind::Tdx,
            fmspc: *b"WETEE\0",
            issued_at: 1_735_689_600,   // 2025-01-01
            next_update: 4_891_363_200, // 2125-01-01
            tcb_evaluation_data_number: 1,
            pck_ca: "processor",
        }
    );
    let quote = simulated::quote(&[0; 64]).unwrap();
    assert_eq!(quote_fmspc(&quote), Ok((TeeKind::Tdx, info.fmspc)));
    assert_eq!(
        wetee_attest::collateral::quote_pck_ca(&quote),
        Ok(info.pck_ca)
    );
    assert!(matches!(
        check_collateral(&dev, dev_root, 1_735_689_600 - 1),
        Err(AttestError::CollateralNotCurrent { .. })
    ));
    assert!(matches!(
        check_collateral(&dev, intel_root_ca_der(), NOW),
        Err(AttestError::Verification(_))
    ));
}

#[test]
fn truncated_garbage_and_oversized_collateral_is_refused_without_panic() {
    let (name, at, _) = VECTORS[1];
    let genuine = collateral_json(name);
    let root = intel_root_ca_der();
    for len in (0..genuine.len()).step_by(7) {
        assert!(
            check_collateral(&genuine[..len], root, at).is_err(),
            "{len}"
        );
    }
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for bytes in [
        &garbage[..],
        b"",
        b"{}",
        b"null",
        b"{\"not\": \"collateral\"}",
    ] {
        assert!(matches!(
            check_collateral(bytes, root, at),
            Err(AttestError::Collateral(_))
        ));
    }
    let mut oversized = genuine.clone();
    oversized.resize(wetee_attest::MAX_COLLATERAL_BYTES + 1, b' ');
    assert!(matches!(
        check_collateral(&oversized, root, at),
        Err(AttestError::Collateral(m)) if m.contains("more than")
    ));
    // A root that is not a certificate.
    assert!(check_collateral(&genuine, &garbage[..100], at).is_err());
    assert!(check_collateral(&genuine, b"", at).is_err());

    // Well-formed JSON with broken fields.
    let c = collateral(name);
    let chains = [
        "",
        "\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n",
        "not PEM",
    ];
    for chain in chains {
        for field in 0..3 {
            let mut broken = c.clone();
            match field {
                0 => broken.tcb_info_issuer_chain = chain.into(),
                1 => broken.qe_identity_issuer_chain = chain.into(),
                _ => broken.pck_crl_issuer_chain = chain.into(),
            }
            assert!(
                check_intel(&broken, at).is_err(),
                "chain {chain:?} in {field}"
            );
        }
    }
    for signature in [
        Vec::new(),
        vec![0; 63],
        vec![0; 64],
        vec![0xFF; 64],
        vec![1; 65],
    ] {
        let mut broken = c.clone();
        broken.tcb_info_signature = signature.clone();
        assert!(check_intel(&broken, at).is_err());
        let mut broken = c.clone();
        broken.qe_identity_signature = signature;
        assert!(check_intel(&broken, at).is_err());
    }
    for crl in [
        Vec::new(),
        vec![0x30],
        vec![0x30, 0x80],
        garbage[..500].to_vec(),
    ] {
        let mut broken = c.clone();
        broken.root_ca_crl = crl.clone();
        assert!(check_intel(&broken, at).is_err());
        let mut broken = c.clone();
        broken.pck_crl = crl;
        assert!(check_intel(&broken, at).is_err());
    }
}

#[test]
fn quote_fmspc_refuses_anything_but_an_sgx_or_tdx_quote_without_panic() {
    let tdx = quote("tdx_quote");
    for len in [0, 1, 47, 48, 100, 600, 1000, 2000, 4000, 4935] {
        assert!(quote_fmspc(&tdx[..len]).is_err(), "{len}");
    }
    let snp = wetee_attest::evidence_from_bytes(&read("snp/virtee_report_milan.hex"));
    assert!(matches!(quote_fmspc(&snp), Err(AttestError::Collateral(_))));
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(quote_fmspc(&garbage), Err(AttestError::UnknownKind));
    let mut oversized = tdx.clone();
    oversized.resize(wetee_attest::MAX_EVIDENCE_BYTES + 1, 0);
    assert!(matches!(
        quote_fmspc(&oversized),
        Err(AttestError::Oversized { .. })
    ));
}

#[test]
fn the_intel_root_is_the_one_dcap_qvl_ships() {
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(intel_root_ca_der())),
        "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
    );
    // And the one Intel's TCB Info chains end with.
    let chain = collateral("tdx_quote").tcb_info_issuer_chain;
    let root_pem = chain.split_inclusive("-----END CERTIFICATE-----").nth(1);
    let (_, der) = x509_cert::der::pem::decode_vec(root_pem.unwrap().trim().as_bytes()).unwrap();
    assert_eq!(der, intel_root_ca_der());
}
