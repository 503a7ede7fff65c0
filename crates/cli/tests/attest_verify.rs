//! `wetee attest verify` on the genuine vectors: the README's verdicts and exit statuses, the
//! JSON a program reads, and clear refusals for bad input.

use std::path::PathBuf;
use std::process::Command;

const YEAR: u64 = 365 * 24 * 3600;

fn vectors() -> PathBuf {
    std::env::var_os("WETEE_TEE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../attest/testdata"))
}

fn verify(args: &[&str]) -> (i32, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_wetee"))
        .args(["attest", "verify", "--output", "json"])
        .args(args)
        .current_dir(vectors())
        .output()
        .expect("wetee runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code().expect("exited"), json)
}

fn dcap(name: &str, at: u64, extra: &[&str]) -> (i32, serde_json::Value) {
    let evidence = format!("dcap/{name}");
    let collateral = format!("dcap/{name}_collateral.json");
    let at = at.to_string();
    let mut args = vec![
        "--evidence",
        evidence.as_str(),
        "--collateral",
        collateral.as_str(),
        "--at",
        at.as_str(),
    ];
    args.extend_from_slice(extra);
    verify(&args)
}

#[test]
fn every_vector_gets_its_stated_verdict_and_exit_status() {
    let (code, json) = dcap("sgx_quote", 1_750_377_600, &[]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["valid"], false);
    assert_eq!(json["kind"], "sgx");
    assert_eq!(json["tcb_status"], "ConfigurationAndSWHardeningNeeded");
    assert_eq!(
        json["advisory_ids"],
        serde_json::json!(["INTEL-SA-00289", "INTEL-SA-00615"])
    );
    assert!(json["reason"].as_str().unwrap().contains("not allowed"));
    assert_eq!(json["debug"], false);
    assert!(json["measurements"]["mr_enclave"].is_string());

    let allow = ["--allow-tcb-status", "ConfigurationAndSWHardeningNeeded"];
    let (code, json) = dcap("sgx_quote", 1_750_377_600, &allow);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["valid"], true);
    assert_eq!(json["reason"], serde_json::Value::Null);

    for (name, at) in [
        ("tdx_quote", 1_750_377_600),
        ("tdx_quote_td15ex", 1_792_022_400),
    ] {
        let (code, json) = dcap(name, at, &[]);
        assert_eq!(code, 0, "{name}: {json}");
        assert_eq!(json["kind"], "tdx");
        assert_eq!(json["tcb_status"], "UpToDate");
        assert!(json["measurements"]["mr_td"].is_string());
        assert_eq!(json["report_data"].as_str().unwrap().len(), 128);
        for when in [at - YEAR, at + YEAR] {
            let (code, json) = dcap(name, when, &[]);
            assert_eq!(code, 1, "{name} at {when}: {json}");
        }
    }
    let (code, json) = dcap("tdx_quote_outdated", 1_772_323_200, &[]);
    assert_eq!(code, 1, "{json}");

    let (code, json) = verify(&[
        "--evidence",
        "snp/virtee_report_milan.hex",
        "--collateral",
        "snp/virtee_vcek_milan.der",
        "--at",
        "1750377600",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["kind"], "sev-snp");
    assert_eq!(json["measurements"]["policy"], 0x30000);
}

#[test]
fn report_data_and_policy_files_are_enforced() {
    let (_, genuine) = dcap("tdx_quote", 1_750_377_600, &[]);
    let report_data = genuine["report_data"].as_str().unwrap().to_owned();
    let (code, _) = dcap(
        "tdx_quote",
        1_750_377_600,
        &["--expect-report-data", &report_data],
    );
    assert_eq!(code, 0);
    let mut other = report_data.clone();
    other.replace_range(
        0..2,
        if &report_data[0..2] == "00" {
            "01"
        } else {
            "00"
        },
    );
    let (code, json) = dcap(
        "tdx_quote",
        1_750_377_600,
        &["--expect-report-data", &other],
    );
    assert_eq!(code, 1);
    assert!(json["reason"].as_str().unwrap().contains("report_data"));

    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let mr_td = genuine["measurements"]["mr_td"].as_str().unwrap();
    std::fs::write(
        &policy,
        format!(r#"{{"allowed_measurements":[{{"kind":"tdx","mr_td":"{mr_td}"}}]}}"#),
    )
    .unwrap();
    let path = policy.to_str().unwrap();
    assert_eq!(dcap("tdx_quote", 1_750_377_600, &["--policy", path]).0, 0);
    std::fs::write(
        &policy,
        format!(
            r#"{{"allowed_measurements":[{{"kind":"tdx","mr_td":"{}"}}]}}"#,
            "00".repeat(48)
        ),
    )
    .unwrap();
    let (code, json) = dcap("tdx_quote", 1_750_377_600, &["--policy", path]);
    assert_eq!(code, 1);
    assert!(json["reason"].as_str().unwrap().contains("measurements"));
    // A typo never loosens a policy: unknown fields are a usage error.
    std::fs::write(&policy, r#"{"allow_debugg": true}"#).unwrap();
    let (code, json) = dcap("tdx_quote", 1_750_377_600, &["--policy", path]);
    assert_eq!(code, 2);
    assert!(json["error"].as_str().unwrap().contains("allow_debugg"));
}

#[test]
fn bad_input_is_a_typed_refusal_or_a_usage_error_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0x5a; 3000]).unwrap();
    let garbage = garbage.to_str().unwrap();
    let truncated = dir.path().join("truncated");
    let quote = std::fs::read(vectors().join("dcap/tdx_quote")).unwrap();
    std::fs::write(&truncated, &quote[..1000]).unwrap();
    let truncated = truncated.to_str().unwrap();
    let oversized = dir.path().join("oversized");
    std::fs::write(&oversized, vec![3; 1 << 20]).unwrap();
    let oversized = oversized.to_str().unwrap();
    let collateral = "dcap/tdx_quote_collateral.json";

    for (evidence, collateral, words) in [
        (garbage, collateral, "not an SGX or TDX quote"),
        (truncated, collateral, "malformed"),
        (oversized, collateral, "more than"),
        ("dcap/tdx_quote", garbage, "collateral"),
        ("dcap/tdx_quote", "snp/virtee_vcek_milan.der", "collateral"),
        ("snp/virtee_report_milan.hex", collateral, "VCEK"),
        (
            "dcap/tdx_quote",
            "dcap/sgx_quote_collateral.json",
            "verification failed",
        ),
    ] {
        let (code, json) = verify(&[
            "--evidence",
            evidence,
            "--collateral",
            collateral,
            "--at",
            "1750377600",
        ]);
        assert_eq!(code, 1, "{evidence} with {collateral}: {json}");
        let reason = json["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(words), "{evidence}: {reason}");
    }

    let (code, json) = verify(&["--evidence", "nothing-here", "--collateral", collateral]);
    assert_eq!(code, 2);
    assert!(json["error"].as_str().unwrap().contains("nothing-here"));
    let (code, _) = verify(&[
        "--evidence",
        "dcap/tdx_quote",
        "--collateral",
        collateral,
        "--kind",
        "z80",
    ]);
    assert_eq!(code, 2);
    let (code, json) = verify(&[
        "--evidence",
        "dcap/tdx_quote",
        "--collateral",
        collateral,
        "--at",
        "1750377600",
        "--kind",
        "sgx",
    ]);
    assert_eq!(code, 1);
    assert!(
        json["reason"].as_str().unwrap().contains("not SGX"),
        "{json}"
    );
}

#[test]
fn worker_measurements_prints_the_rule_that_admits_exactly_this_build() {
    let output = Command::new(env!("CARGO_BIN_EXE_wetee"))
        .args(["worker", "measurements", "--simulated", "--output", "json"])
        .output()
        .expect("wetee runs");
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["kind"], "simulated", "{json}");
    let mr_td = hex::encode(wetee_attest::simulated::mr_td());
    assert_eq!(json["rule"]["kind"], "tdx", "{json}");
    assert_eq!(json["rule"]["mr_td"], mr_td, "{json}");
    // The printed rule is one a chain policy or `--expect-measurement` takes as it is.
    let rule: wetee_types::attestation::MeasurementRule =
        serde_json::from_value(json["rule"].clone()).unwrap();
    assert!(rule.is_pinned());
}
