//! `wetee bench dev`: what an idle dev cloud costs its laptop. Starts `wetee dev` (the node and
//! the worker in one process) on a fresh chain with no apps, waits until its worker runs, then
//! measures its CPU time over a window, and the Podman service's beside it.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

use crate::bench::{cpu_ticks, machine};
use crate::output::{Format, print};

/// Linux's `USER_HZ`: clock ticks per second in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: f64 = 100.0;

/// What `wetee bench dev` needs.
#[derive(Debug, Args)]
pub struct DevBenchArgs {
    /// Seconds the idle dev cloud is watched.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds to let it settle after the worker runs, before watching.
    #[arg(long, default_value_t = 10)]
    settle: u64,
    /// The chain's RPC port.
    #[arg(long, default_value_t = 19_980)]
    rpc_port: u16,
    /// The worker's ingress port.
    #[arg(long, default_value_t = 18_980)]
    ingress_port: u16,
    /// The `wetee` binary to measure (default: this one), to compare builds side by side.
    #[arg(long)]
    binary: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct DevReport {
    machine: String,
    binary: String,
    seconds: f64,
    /// The `wetee dev` process (node and worker), in % of one core.
    wetee_dev_cpu_percent: f64,
    /// The Podman service it started, if it started one.
    podman_service_cpu_percent: Option<f64>,
}

/// `wetee bench dev`.
pub fn dev(args: DevBenchArgs, format: Format) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("wetee-bench-dev-")
        .tempdir()?;
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()?,
    };
    let mut child = Command::new(&binary)
        .args(["dev", "--output", "json", "--data-dir"])
        .arg(dir.path().join("dev"))
        .args(["--rpc-port", &args.rpc_port.to_string()])
        .args(["--p2p-port", &(args.rpc_port - 1).to_string()])
        .args(["--ingress-port", &args.ingress_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("dev.log"))?)
        .spawn()
        .context("starting wetee dev")?;
    let measured = measure(&mut child, &args, &binary);
    // Stopped as a user stops it, so that it cleans up after itself.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let report = measured.with_context(|| {
        format!(
            "wetee dev's log: {}",
            std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default()
        )
    })?;
    print(format, &report, || {
        format!(
            "idle wetee dev ({}: node and worker, no apps) over {:.0} s on {}\n  wetee dev       {:.2}% of one core\n  Podman service  {}",
            report.binary,
            report.seconds,
            report.machine,
            report.wetee_dev_cpu_percent,
            report
                .podman_service_cpu_percent
                .map_or("not started by wetee dev".into(), |c| format!(
                    "{c:.2}% of one core"
                ))
        )
    });
    Ok(())
}

fn measure(
    child: &mut std::process::Child,
    args: &DevBenchArgs,
    binary: &std::path::Path,
) -> Result<DevReport> {
    let stdout = child.stdout.take().context("wetee dev's output")?;
    let mut reader = BufReader::new(stdout);
    // The banner is one pretty-printed JSON document: read lines until it parses.
    let mut printed = String::new();
    let banner: serde_json::Value = loop {
        if reader
            .read_line(&mut printed)
            .context("reading wetee dev's banner")?
            == 0
        {
            bail!("wetee dev exited before its banner");
        }
        if let Ok(banner) = serde_json::from_str(&printed) {
            break banner;
        }
    };
    if !banner["worker"].is_object() {
        bail!("the dev worker is not running: {banner}");
    }
    let service = banner["engine_service_pid"]
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok());
    std::thread::sleep(Duration::from_secs(args.settle));
    let pid = child.id();
    let before = (cpu_ticks(pid), service.and_then(cpu_ticks));
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.seconds));
    let after = (cpu_ticks(pid), service.and_then(cpu_ticks));
    let seconds = started.elapsed().as_secs_f64();
    let percent = |before: Option<u64>, after: Option<u64>| {
        Some(after?.saturating_sub(before?) as f64 / TICKS_PER_SECOND / seconds * 100.0)
    };
    Ok(DevReport {
        machine: machine(),
        binary: binary.display().to_string(),
        seconds,
        wetee_dev_cpu_percent: percent(before.0, after.0)
            .context("wetee dev exited while it was watched")?,
        podman_service_cpu_percent: percent(before.1, after.1),
    })
}
