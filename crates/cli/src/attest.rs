//! `wetee attest`: verify TEE evidence offline, with the verifier the chain uses.

use std::path::{Path, PathBuf};

use wetee_attest::{Collateral, Policy, Verdict};
use wetee_types::TeeKind;
use wetee_types::attestation::{TcbStatus, hex_array};

use crate::output::Format;

/// Exit status when the evidence is valid under the policy.
const VALID: i32 = 0;
/// Exit status when it is not (the reason is printed).
const INVALID: i32 = 1;
/// Exit status for a usage error: a missing file, a malformed policy or argument.
const USAGE: i32 = 2;

#[derive(Debug, clap::Subcommand)]
pub enum AttestCommand {
    /// Verifies a quote or report with its collateral and prints what it proves. Exits 0 when
    /// valid under the policy, 1 when not, 2 for a usage error.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The quote or report: raw binary, or hex text.
    #[arg(long)]
    evidence: PathBuf,
    /// DCAP collateral JSON (`QuoteCollateralV3` layout) for SGX and TDX quotes, or the chip's
    /// VCEK certificate (DER or PEM) for SEV-SNP reports.
    #[arg(long)]
    collateral: PathBuf,
    /// The evidence's kind, detected from its header when absent.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<TeeKind>,
    /// The time to verify at, in Unix seconds (default: now). Collateral expires after about
    /// 30 days, so old evidence needs the time it was produced.
    #[arg(long, value_name = "UNIX_SECONDS")]
    at: Option<u64>,
    /// Accept this TCB status besides UpToDate (repeatable).
    #[arg(long = "allow-tcb-status", value_name = "STATUS")]
    allow_tcb_status: Vec<TcbStatus>,
    /// How many days past its TCB date an allowed out-of-date platform or quoting enclave is
    /// still accepted, or `unlimited` (while its collateral is valid). Default: 90.
    #[arg(long, value_name = "DAYS|unlimited", value_parser = parse_grace)]
    tcb_grace_days: Option<Grace>,
    /// Accept debug enclaves, TDs and guests, whose memory the host can read.
    #[arg(long)]
    allow_debug: bool,
    /// The 64 bytes of report data the evidence must carry, in hex.
    #[arg(long, value_name = "HEX", value_parser = parse_report_data)]
    expect_report_data: Option<[u8; 64]>,
    /// A policy in JSON: allowed_tcb_statuses, allow_debug, report_data, allowed_measurements,
    /// platform_grace_days, qe_grace_days (days, or null: unlimited). Flags add to it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

fn parse_kind(text: &str) -> Result<TeeKind, String> {
    match text.parse()? {
        TeeKind::Simulated => {
            Err("simulated evidence is verified by the chain's dev tools, not here".into())
        }
        kind => Ok(kind),
    }
}

/// A grace in days, or none at all.
#[derive(Debug, Clone, Copy)]
struct Grace(Option<u32>);

fn parse_grace(text: &str) -> Result<Grace, String> {
    if text == "unlimited" {
        return Ok(Grace(None));
    }
    text.parse()
        .map(|days| Grace(Some(days)))
        .map_err(|_| format!("`{text}` is neither a number of days nor `unlimited`"))
}

fn parse_report_data(text: &str) -> Result<[u8; 64], String> {
    hex_array::parse(text)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

fn policy_of(args: &VerifyArgs) -> Result<Policy, String> {
    let mut policy = match &args.policy {
        Some(path) => {
            let text = read(path, "policy")?;
            serde_json::from_slice::<Policy>(&text)
                .map_err(|e| format!("the policy {} is not valid: {e}", path.display()))?
        }
        None => Policy::default(),
    };
    for status in &args.allow_tcb_status {
        if !policy.allowed_tcb_statuses.contains(status) {
            policy.allowed_tcb_statuses.push(*status);
        }
    }
    if let Some(Grace(days)) = args.tcb_grace_days {
        policy.platform_grace_days = days;
        policy.qe_grace_days = days;
    }
    policy.allow_debug |= args.allow_debug;
    if let Some(report_data) = args.expect_report_data {
        policy.report_data = Some(report_data);
    }
    policy.validate()?;
    Ok(policy)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Runs the command and returns the process's exit status.
pub fn run(command: &AttestCommand, format: Format) -> i32 {
    let AttestCommand::Verify(args) = command;
    let prepared = (|| {
        let policy = policy_of(args)?;
        let evidence = wetee_attest::evidence_from_bytes(&read(&args.evidence, "evidence")?);
        let collateral = Collateral::from_bytes(&read(&args.collateral, "collateral")?);
        Ok::<_, String>((policy, evidence, collateral))
    })();
    let (policy, evidence, collateral) = match prepared {
        Ok(prepared) => prepared,
        Err(message) => {
            match format {
                Format::Json => println!("{}", serde_json::json!({ "error": message })),
                Format::Text => eprintln!("error: {message}"),
            }
            return USAGE;
        }
    };
    let at = args.at.unwrap_or_else(now_secs);
    let verdict = match collateral {
        Ok(collateral) => wetee_attest::verify(&evidence, args.kind, &collateral, at, &policy),
        // Collateral that does not parse is part of the verdict, not a usage error.
        Err(error) => Verdict::refused(args.kind, error),
    };
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&verdict).unwrap_or_default()
        ),
        Format::Text => println!("{}", describe(&verdict, at)),
    }
    if verdict.valid { VALID } else { INVALID }
}

fn describe(verdict: &Verdict, at: u64) -> String {
    let kind = verdict
        .kind
        .map(|k| k.to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut lines = vec![match &verdict.reason {
        None => format!("VALID {kind} evidence (verified at {at})"),
        Some(reason) => format!("INVALID {kind} evidence (verified at {at}): {reason}"),
    }];
    if let Some(status) = verdict.tcb_status {
        let advisories = if verdict.advisory_ids.is_empty() {
            String::new()
        } else {
            format!(" ({})", verdict.advisory_ids.join(", "))
        };
        lines.push(format!("  tcb_status   {status}{advisories}"));
    }
    if let Some(debug) = verdict.debug {
        lines.push(format!("  debug        {debug}"));
    }
    if let Some(measurements) = &verdict.measurements
        && let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(measurements)
    {
        for (name, value) in fields {
            let value = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or(value.to_string());
            lines.push(format!("  {name:<12} {value}"));
        }
    }
    if let Some(report_data) = &verdict.report_data {
        lines.push(format!("  report_data  {}", hex::encode(report_data)));
    }
    lines.join("\n")
}

/// What `wetee bench attest` needs.
#[derive(Debug, clap::Args)]
pub struct AttestBenchArgs {
    /// The directory of the genuine TEE vectors (dcap/, snp/), from the repository's root.
    #[arg(
        long,
        env = "WETEE_TEE_VECTORS",
        default_value = "crates/attest/testdata"
    )]
    vectors: PathBuf,
    /// Seconds spent on each kind of evidence.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

struct BenchCase {
    name: String,
    evidence: Vec<u8>,
    kind: Option<TeeKind>,
    collateral: Collateral,
    at: u64,
    policy: Policy,
}

#[derive(Debug, serde::Serialize)]
struct AttestBenchRow {
    evidence: String,
    verifications: u64,
    per_second_one_core: f64,
    median_us: f64,
    p90_us: f64,
}

/// Verifications per second on one core, each with every check a verifier makes: signatures,
/// chains, revocation lists, TCB appraisal and policy.
pub fn bench(args: AttestBenchArgs, format: Format) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let at_dcap = |name: &str| -> anyhow::Result<(Vec<u8>, Collateral)> {
        let quote = std::fs::read(args.vectors.join("dcap").join(name)).with_context(|| {
            format!("reading the {name} vector under {}", args.vectors.display())
        })?;
        let collateral = std::fs::read(
            args.vectors
                .join("dcap")
                .join(format!("{name}_collateral.json")),
        )?;
        Ok((quote, Collateral::from_bytes(&collateral)?))
    };
    let lenient = Policy {
        allowed_tcb_statuses: vec![
            TcbStatus::UpToDate,
            TcbStatus::ConfigurationAndSwHardeningNeeded,
        ],
        ..Policy::default()
    };
    let simulated_policy = Policy {
        allow_simulated: true,
        ..Policy::default()
    };
    let mut cases: Vec<BenchCase> = Vec::new();
    for (name, at) in [
        ("sgx_quote", 1_750_377_600),
        ("tdx_quote", 1_750_377_600),
        ("tdx_quote_td15ex", 1_792_022_400),
    ] {
        let (quote, collateral) = at_dcap(name)?;
        cases.push(BenchCase {
            name: format!("DCAP {name}"),
            evidence: quote,
            kind: None,
            collateral,
            at,
            policy: lenient.clone(),
        });
    }
    let report = wetee_attest::evidence_from_bytes(&std::fs::read(
        args.vectors.join("snp/virtee_report_milan.hex"),
    )?);
    let vcek = Collateral::from_bytes(&std::fs::read(
        args.vectors.join("snp/virtee_vcek_milan.der"),
    )?)?;
    cases.push(BenchCase {
        name: "SEV-SNP Milan".into(),
        evidence: report,
        kind: None,
        collateral: vcek,
        at: 1_750_377_600,
        policy: Policy::default(),
    });
    let simulated = wetee_attest::simulated::quote(&[0; 64])?;
    let dev = Collateral::Dcap(Box::new(wetee_attest::simulated::collateral()?.clone()));
    cases.push(BenchCase {
        name: "simulated TDX".into(),
        evidence: simulated,
        kind: Some(TeeKind::Simulated),
        collateral: dev,
        at: 1_790_000_000,
        policy: simulated_policy,
    });

    let budget = std::time::Duration::from_secs_f64(args.seconds.max(0.1));
    let mut rows = Vec::new();
    for BenchCase {
        name,
        evidence,
        kind,
        collateral,
        at,
        policy,
    } in &cases
    {
        let first = wetee_attest::verify(evidence, *kind, collateral, *at, policy);
        anyhow::ensure!(first.valid, "{name} does not verify: {:?}", first.reason);
        let mut samples = Vec::new();
        let started = std::time::Instant::now();
        while started.elapsed() < budget {
            let one = std::time::Instant::now();
            let verdict = wetee_attest::verify(evidence, *kind, collateral, *at, policy);
            samples.push(one.elapsed().as_nanos() as u64);
            std::hint::black_box(verdict);
        }
        let elapsed = started.elapsed().as_secs_f64();
        samples.sort_unstable();
        let pick = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize] as f64 / 1_000.0;
        rows.push(AttestBenchRow {
            evidence: name.clone(),
            verifications: samples.len() as u64,
            per_second_one_core: samples.len() as f64 / elapsed,
            median_us: pick(0.5),
            p90_us: pick(0.9),
        });
    }
    crate::output::print(format, &rows, || {
        let mut lines = vec![format!(
            "{:<26} {:>8} {:>12} {:>10} {:>10}",
            "evidence", "runs", "per s/core", "p50 µs", "p90 µs"
        )];
        for row in &rows {
            lines.push(format!(
                "{:<26} {:>8} {:>12.0} {:>10.0} {:>10.0}",
                row.evidence, row.verifications, row.per_second_one_core, row.median_us, row.p90_us
            ));
        }
        lines.join("\n")
    });
    Ok(())
}
