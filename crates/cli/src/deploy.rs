//! `wetee app deploy`: creates an app from its manifest and, with `--wait`, follows it through
//! its stages (submitted → final → placed on worker N → started → serving at URL), saying
//! what it waits for and why, until it serves, needs its owner, fails, or the timeout passes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use wetee_client::light::{LightClient, Trust};
use wetee_client::rpc::{Client, ClientError};
use wetee_types::records::AppStatus;
use wetee_types::rpc::TransactionStatus;
use wetee_types::transaction::AppsCall;
use wetee_types::{AppId, Balance, Call, Keypair, WorkerId};

use crate::calls::{Session, http_status, read_app_spec};
use crate::output::{Format, print};
use crate::progress::Progress;
use wetee_client::app_overview::AppOverview as AppState;

/// How often the app's state is read while waiting.
const POLL: Duration = Duration::from_millis(250);

/// What `wetee app deploy` needs.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The owner's key.
    #[arg(long, default_value = "//Alice")]
    from: String,
    /// The manifest (`wetee.toml`).
    #[arg(long, short = 'f')]
    file: PathBuf,
    /// The prepaid deposit, in WTE.
    #[arg(long, default_value = "10")]
    deposit: Balance,
    /// Wait until the app answers on its worker's ingress, showing each stage.
    #[arg(long)]
    wait: bool,
    /// Sign nothing: say what deploying would do now (the chain's checks, the worker and its
    /// price, or the chain's reason it would wait, and the least deposit).
    #[arg(long, conflicts_with = "wait")]
    dry_run: bool,
    /// How long to wait at most (`90`, `90s`, `5m`); then exit with status 1, the app staying
    /// deployed.
    #[arg(long, default_value = "300s", value_parser = parse_duration, requires = "wait")]
    timeout: Duration,
}

/// `20`, `20s`, `500ms`, `5m` or `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 90, 90s or 5m"))?;
    let unit_ms = match unit.trim() {
        "" | "s" => 1_000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        other => return Err(format!("unknown unit `{other}`: use ms, s, m or h")),
    };
    number
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// Where the followed app ended up.
enum Reached {
    /// It answers on its worker's ingress.
    Serving(AppState),
    /// It is placed and waits for its owner to seal its secrets.
    AwaitingSecrets(AppState),
}

/// `wetee app deploy`.
pub async fn deploy(context: &Session<'_>, args: DeployArgs) -> Result<()> {
    let began = Instant::now();
    let spec = read_app_spec(&args.file)?;
    if args.dry_run {
        return dry_run(context, spec, args.deposit).await;
    }
    let key = context.signing_key(&args.from)?;
    // What a failure report's log lines are verified against, if the user named a chain (or
    // `wetee dev` made one here).
    let trust = context.trust.trust().ok();
    let client = Client::connect(context.rpc).await?;
    let progress = Progress::new(context.format);
    let deadline = began + args.timeout;
    // Once per account: workers keep the output only sealed to it, and seal a failing app's
    // last lines to it. Not awaited: the app's creation takes the next nonce.
    match wetee_client::owner_key::publish(&client, &key).await {
        Ok(true) => progress.stage(
            "publishing your sealing key (once per account)",
            json!({ "stage": "sealing_key" }),
        ),
        Ok(false) => {}
        Err(e) => progress.stage(
            &format!(
                "could not publish your sealing key ({e}): until it is, workers keep none of \
                 your workloads' output (they keep it only sealed to that key)"
            ),
            json!({ "stage": "sealing_key", "error": e.to_string() }),
        ),
    }
    let sending = client.send(
        &key,
        Call::Apps(AppsCall::Create {
            spec,
            deposit: args.deposit,
        }),
        |status| match status {
            TransactionStatus::Ready { hash } => progress.stage(
                &format!("submitted {hash}"),
                json!({ "stage": "submitted", "hash": hash }),
            ),
            TransactionStatus::Included { block } => progress.waiting(
                &format!("in block #{}, waiting for finality", block.height),
                "waiting for finality",
            ),
            TransactionStatus::Finalized { .. } | TransactionStatus::Dropped { .. } => {}
        },
    );
    // With --wait, the timeout counts from the start, finality included.
    let sent = if args.wait {
        match tokio::time::timeout_at(deadline.into(), sending).await {
            Ok(sent) => sent,
            Err(_) => bail!(
                "the deployment was not final after {} s; it may still be: see `wetee app list \
                 --owner {}`",
                args.timeout.as_secs(),
                key.account_id()
            ),
        }
    } else {
        sending.await
    };
    let finalized = match sent {
        Ok(finalized) => finalized,
        Err(ClientError::Failed { block, error, .. }) => {
            bail!(
                "the chain refused the deployment in block #{}: {error}",
                block.height
            )
        }
        Err(e @ ClientError::Connection { .. }) => bail!(
            "{e}. The deployment may have been created before the connection was lost: see \
             `wetee app list --owner {}` before deploying again",
            key.account_id()
        ),
        Err(e) => return Err(e.into()),
    };
    let app = finalized
        .receipt
        .events
        .iter()
        .find_map(|event| match event {
            wetee_types::Event::AppCreated { app, .. } => Some(*app),
            _ => None,
        })
        .context("the chain created no app")?;
    progress.stage(
        &format!(
            "final in block #{}: app {app} created",
            finalized.block.height
        ),
        json!({ "stage": "final", "block": finalized.block, "app_id": app }),
    );
    if !args.wait {
        let state = AppState::read(&client, app)
            .await?
            .with_context(|| format!("there is no app {app}"))?;
        progress.finish();
        return finish(context.format, &state, "created");
    }
    let followed = tokio::select! {
        followed = follow(
            context.rpc,
            trust.as_ref(),
            &progress,
            client,
            &key,
            app,
            (deadline, args.timeout),
        ) => followed,
        signal = crate::signals::shutdown() => {
            progress.finish();
            eprintln!(
                "{signal}: stopped waiting. App {app} stays deployed: follow it with \
                 `wetee app status {app}`, or stop it with `wetee app stop {app} --from {}`",
                args.from
            );
            std::process::exit(crate::signals::exit_status(signal));
        }
    };
    progress.finish();
    match followed {
        Ok(Reached::Serving(state)) => finish(context.format, &state, "serving"),
        Ok(Reached::AwaitingSecrets(state)) => finish(context.format, &state, "awaiting_secrets"),
        Err(e) => Err(e),
    }
}

/// `wetee app deploy --dry-run`: what the chain says creating the app would do now, in the
/// words the web console shows.
async fn dry_run(
    context: &Session<'_>,
    spec: wetee_types::manifest::AppSpec,
    deposit: Balance,
) -> Result<()> {
    let client = Client::connect(context.rpc).await?;
    let preview = client
        .placement_preview(&wetee_types::rpc::PlacementRequest::App(spec))
        .await?;
    let low = preview.min_deposit.filter(|minimum| deposit < *minimum);
    print(context.format, &preview, || {
        let mut text = match (
            &preview.worker,
            preview.price_per_epoch,
            &preview.waiting_reason,
        ) {
            _ if !preview.problems.is_empty() => {
                let problems: Vec<String> =
                    preview.problems.iter().map(|p| format!("  {p}")).collect();
                format!("the chain would refuse it:\n{}", problems.join("\n"))
            }
            (Some(worker), Some(price), _) => {
                format!("would land on worker {worker} at {price} per epoch")
            }
            (_, _, Some(reason)) => format!("would wait for a worker: {reason}"),
            _ => "the chain gave no answer".to_string(),
        };
        if let Some(minimum) = low {
            text.push_str(&format!(
                "\nthe deposit of {deposit} is below the least the chain takes, {minimum}: pass \
                 --deposit"
            ));
        }
        text
    });
    if !preview.problems.is_empty() || low.is_some() {
        bail!("the chain would refuse this deployment");
    }
    Ok(())
}

fn finish(format: Format, state: &AppState, reached: &str) -> Result<()> {
    let app = state.app_id;
    print(
        format,
        &json!({
            "app_id": app,
            "state": reached,
            "worker": state.worker,
            "url": state.url,
        }),
        || match (reached, &state.url) {
            ("serving", Some(url)) => format!("app {app} serves at {url}"),
            ("awaiting_secrets", _) => format!(
                "app {app} is placed on worker {}; it starts once its secrets are sealed: \
                 `wetee app secrets set {app} --file secrets.env --from <owner>`",
                state.worker.map_or_else(|| "?".into(), |w| w.to_string())
            ),
            _ => format!("app {app} created: {}", state.state_words()),
        },
    );
    Ok(())
}

/// Whether `error` means the node cannot be reached (it restarts, the network dropped).
fn is_disconnection(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<ClientError>(),
        Some(ClientError::Connection { .. })
    )
}

/// Follows app `app` until it serves or awaits its secrets, reconnecting to the node at `rpc`
/// whenever the connection drops.
async fn follow(
    rpc: &str,
    trust: Option<&Trust>,
    progress: &Progress,
    client: Client,
    owner: &Keypair,
    app: AppId,
    (deadline, timeout): (Instant, Duration),
) -> Result<Reached> {
    let waiting_since = Instant::now();
    let mut client = Some(client);
    let mut placed: Option<WorkerId> = None;
    let mut started = false;
    let mut last_words = "not read yet".to_string();
    loop {
        if Instant::now() >= deadline {
            bail!(
                "app {app} is not serving after {} s: {last_words}. It stays deployed: see \
                 `wetee app status {app}`",
                timeout.as_secs()
            );
        }
        let waited = waiting_since.elapsed().as_secs();
        let Some(connected) = &client else {
            match Client::connect(rpc).await {
                Ok(fresh) => {
                    progress.stage("reconnected to the node", json!({ "stage": "reconnected" }));
                    client = Some(fresh);
                }
                Err(e) => {
                    progress.waiting(
                        &format!("the node does not answer ({e}); retrying ({waited} s)"),
                        "the node does not answer; retrying",
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        };
        let mut state = match AppState::read(connected, app).await {
            Ok(Some(state)) => state,
            Ok(None) => bail!("there is no app {app}"),
            Err(e) => {
                let e = anyhow::Error::from(e);
                if is_disconnection(&e) {
                    client = None;
                    continue;
                }
                return Err(e);
            }
        };
        last_words = state.state_words();
        if placed != state.worker
            && let Some(worker) = state.worker
        {
            placed = Some(worker);
            started = false;
            progress.stage(
                &format!("placed on worker {worker}"),
                json!({ "stage": "placed", "worker": worker }),
            );
        }
        let failed = match (&state.status, &state.failure) {
            (AppStatus::Stopped { .. }, _) => true,
            (_, Some(failure)) => failure.version == state.version,
            _ => false,
        };
        if failed {
            // The log lines, from the record read with a proof.
            let light = match trust {
                Some(trust) => LightClient::connect(rpc, trust).await.ok(),
                None => None,
            };
            state.open_log(light.as_ref(), owner).await;
            bail!("app {app} {}", failure_words(&state));
        }
        match &state.status {
            AppStatus::Stopped { .. } => bail!("app {app} {}", failure_words(&state)),
            AppStatus::Pending => {
                progress.waiting(&format!("{last_words} ({waited} s)"), &last_words);
            }
            AppStatus::AwaitingSecrets => return Ok(Reached::AwaitingSecrets(state)),
            AppStatus::Running => {
                if let Some(worker) = state.worker
                    && !started
                    && instance_running(rpc, trust, worker, owner, app).await
                {
                    started = true;
                    progress.stage(
                        &format!("started on worker {worker}"),
                        json!({ "stage": "started", "worker": worker }),
                    );
                }
                if let Some(url) = &state.url
                    && http_status(url).await.is_some_and(|code| code < 500)
                {
                    if !started {
                        progress.stage(
                            &format!(
                                "started on worker {}",
                                state.worker.map_or_else(|| "?".into(), |w| w.to_string())
                            ),
                            json!({ "stage": "started", "worker": state.worker }),
                        );
                    }
                    progress.stage(
                        &format!("serving at {url}"),
                        json!({ "stage": "serving", "url": url }),
                    );
                    return Ok(Reached::Serving(state));
                }
                let doing = if started {
                    "started, waiting for it to answer"
                } else {
                    "starting"
                };
                last_words = format!("{last_words}, {doing}");
                progress.waiting(&format!("{last_words} ({waited} s)"), &last_words);
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why a stopped or failed app is not serving.
fn failure_words(state: &AppState) -> String {
    let mut text = state.state_words();
    if let Some(failure) = &state.failure {
        text.push_str(&format!(
            "; worker {} reported for version {}: {}",
            failure.worker,
            failure.version,
            failure.reason.as_str()
        ));
        match state.log_words() {
            Some(Ok("")) | None => {}
            Some(Ok(tail)) => text.push_str(&format!("\nits last log lines:\n{tail}")),
            Some(Err(why)) => text.push_str(&format!("\n{why}")),
        }
    }
    text
}

/// Whether `worker` says a container of `app` runs (its owner API, signed by the owner, the
/// worker's record proven through a light client of the chain the user trusts).
async fn instance_running(
    rpc: &str,
    trust: Option<&Trust>,
    worker: WorkerId,
    owner: &Keypair,
    app: AppId,
) -> bool {
    let Some(trust) = trust else {
        return false;
    };
    let target = format!("/_wetee/apps/{app}/status");
    let asked = async {
        let light = LightClient::connect(rpc, trust).await.ok()?;
        let response = crate::owner_api::get(&light, worker, owner, &target)
            .await
            .ok()?;
        crate::owner_api::json(response).await.ok()
    };
    let Ok(Some(status)) = tokio::time::timeout(Duration::from_secs(4), asked).await else {
        return false;
    };
    status["instances"]
        .as_array()
        .is_some_and(|instances| instances.iter().any(|i| i["state"] == "running"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_people_write_them() {
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 days").is_err());
    }
}
