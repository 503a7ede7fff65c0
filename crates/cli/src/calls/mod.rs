//! Commands that talk to a node: accounts, the chain, and one subcommand per runtime call for
//! workers, apps, tasks and the root key. Every transaction is signed, submitted, and followed
//! to finality, and its events or its error are printed.
//!
//! One file per command group (`account`, `chain`, `worker`, `app`, `secrets`, `task`,
//! `root`) parses its arguments, builds the call and sends it; this file holds what they
//! share: the signer and the session, reading manifests, sending and printing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wetee_client::keys::{KeySource, Keystore};
use wetee_client::rpc::{Client, ClientError, Finalized};
use wetee_client::secrets::SealOptions;
use wetee_client::secrets::SecretValue;
use wetee_types::attestation::AttestationPolicy;
use wetee_types::manifest::{AppSpec, TaskExecution, TaskSpec};
use wetee_types::records::{AppSettings, Attestation, WorkerProfile};
use wetee_types::report::SignedWorkReport;
use wetee_types::rpc::{BlockId, EventFilter, TransactionStatus};
use wetee_types::transaction::{
    AppsCall, AttestationCall, BalancesCall, RootCall, TasksCall, WorkersCall,
};
use wetee_types::{
    AccountId, AppId, Balance, Call, ComplaintId, Hash, KeyScheme, Params, TaskId, WorkerId,
};

mod account;
mod app;
mod chain;
mod root;
mod secrets;
mod task;
mod worker;

pub use account::{AccountCommand, account};
pub use app::{AppCommand, app};
pub use chain::{ChainQuery, chain};
pub use root::{RootCommand, root};
pub use secrets::SecretsCommand;
pub use task::{TaskCommand, task};
pub use worker::{WorkerCommand, worker};

use crate::output::{Format, print};
use crate::task_state::TaskState;
use wetee_client::app_overview::AppOverview as AppState;

/// Where the node is and who signs.
#[derive(Debug, Args)]
pub struct Signer {
    /// The signing key: a dev URI (//Alice), a keystore name, or a file with a mnemonic.
    #[arg(long)]
    from: String,
}

/// What every command talking to a node shares.
#[derive(Debug)]
pub struct Session<'a> {
    /// The node's RPC URL.
    pub rpc: &'a str,
    /// The chain to trust where answers are verified.
    pub trust: TrustArgs,
    /// Key scheme for URIs and mnemonics.
    pub scheme: KeyScheme,
    /// The keystore.
    pub keystore: &'a Keystore,
    /// Output format.
    pub format: Format,
}

impl Session<'_> {
    /// The key `from` names (a dev URI, a keystore name or a key file; a mnemonic typed inline
    /// only on a development chain), for this session's chain.
    pub(crate) fn signing_key(&self, from: &str) -> Result<wetee_types::Keypair> {
        let source = KeySource::parse_for_chain(from, self.trust.is_development_chain())?;
        source
            .keypair(self.scheme, self.keystore)
            .with_context(|| format!("reading {source}"))
    }
}

/// Whether `trust` names a development chain: its spec says so, or its genesis hash is that of
/// the development chain `wetee dev` made here.
pub(crate) fn trusts_development_chain(trust: &wetee_client::light::Trust) -> bool {
    use wetee_client::light::Trust;
    match trust {
        Trust::Spec(spec) => spec.is_development(),
        Trust::GenesisHash(hash) => TrustArgs::default().trust().is_ok_and(|trust| match trust {
            Trust::Spec(dev) => dev.genesis_hash() == *hash && dev.is_development(),
            Trust::GenesisHash(_) => false,
        }),
    }
}

/// How the user named the chain to trust.
#[derive(Debug, Clone, Default)]
pub struct TrustArgs {
    /// By its spec's genesis hash.
    pub genesis_hash: Option<wetee_types::Hash>,
    /// By its spec file.
    pub chain_spec: Option<PathBuf>,
}

impl TrustArgs {
    /// Whether the chain named (or, by default, the one `wetee dev` made here) is a
    /// development chain; judged from the spec on this machine, never from a node's word.
    pub(crate) fn is_development_chain(&self) -> bool {
        self.trust()
            .is_ok_and(|trust| trusts_development_chain(&trust))
    }

    /// What the light client trusts: the chain named, or else the one `wetee dev` created here.
    pub(crate) fn trust(&self) -> Result<wetee_client::light::Trust> {
        use wetee_client::light::Trust;
        if let Some(hash) = self.genesis_hash {
            return Ok(Trust::GenesisHash(hash));
        }
        let dev_spec = wetee_client::keys::wetee_home()
            .join("dev")
            .join("chain.json");
        let path = match &self.chain_spec {
            Some(path) => path.clone(),
            None if dev_spec.exists() => dev_spec,
            None => anyhow::bail!(
                "name the chain to trust: --genesis-hash (from `wetee chain spec` or the chain's \
                 operators) or --chain-spec FILE; answers of the node are verified against it"
            ),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the chain spec {}", path.display()))?;
        let spec = wetee_types::ChainSpec::from_json(&text)
            .map_err(|e| anyhow::anyhow!("the chain spec {}: {e}", path.display()))?;
        Ok(Trust::Spec(Box::new(spec)))
    }
}

/// A light client of the node, trusting the chain the user named.
pub(crate) async fn connect_light(
    context: &Session<'_>,
) -> Result<wetee_client::light::LightClient> {
    let trust = context.trust.trust()?;
    wetee_client::light::LightClient::connect(context.rpc, &trust)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn read_document<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    if is_toml {
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    } else {
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
    }
}

/// A manifest: `wetee.toml` (the human form, any `.toml`) or the on-chain JSON form.
/// A manifest's problems, each on its own line naming its field.
fn refuse(path: &Path, problems: &[wetee_types::manifest::ManifestError]) -> anyhow::Error {
    match problems {
        [one] => anyhow::anyhow!("{}: {one}", path.display()),
        many => anyhow::anyhow!(
            "{}: {} problems:\n  {}",
            path.display(),
            many.len(),
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ),
    }
}

fn read_manifest(path: &Path) -> Result<Option<wetee_types::manifest::Manifest>> {
    if path.extension().is_some_and(|e| e == "toml") {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return match wetee_types::manifest::Manifest::from_toml(&text) {
            Ok(manifest) => Ok(Some(manifest)),
            Err(errors) => Err(refuse(path, &errors.0)),
        };
    }
    Ok(None)
}

pub(crate) fn read_app_spec(path: &Path) -> Result<AppSpec> {
    match read_manifest(path)? {
        Some(wetee_types::manifest::Manifest::App(spec)) => return Ok(spec),
        Some(wetee_types::manifest::Manifest::Task(_)) => {
            bail!(
                "{} describes a task (kind = \"task\"), not an app",
                path.display()
            )
        }
        None => {}
    }
    let spec: AppSpec = read_document(path)?;
    match spec.problems().as_slice() {
        [] => Ok(spec),
        problems => Err(refuse(path, problems)),
    }
}

fn read_task_spec(path: &Path) -> Result<TaskSpec> {
    match read_manifest(path)? {
        Some(wetee_types::manifest::Manifest::Task(spec)) => return Ok(spec),
        Some(wetee_types::manifest::Manifest::App(_)) => {
            bail!(
                "{} describes an app (kind = \"app\"), not a task",
                path.display()
            )
        }
        None => {}
    }
    let spec: TaskSpec = read_document(path)?;
    match spec.problems().as_slice() {
        [] => Ok(spec),
        problems => Err(refuse(path, problems)),
    }
}

async fn connect(context: &Session<'_>) -> Result<Client> {
    Ok(Client::connect(context.rpc).await?)
}

#[derive(Serialize)]
struct TransactionResult<'a> {
    hash: Hash,
    block: wetee_types::rpc::BlockRef,
    success: bool,
    fee: Balance,
    events: &'a [wetee_types::Event],
}

/// Publishes the signer's sealing key before its first app or task: workers keep a workload's
/// output only sealed to it, and seal a failing app's last lines to it. Not fatal: the workload
/// is created either way.
async fn publish_sealing_key(context: &Session<'_>, signer: &Signer) {
    let published = async {
        let key = context.signing_key(&signer.from)?;
        let client = connect(context).await?;
        anyhow::Ok(wetee_client::owner_key::publish(&client, &key).await?)
    };
    match published.await {
        Ok(true) => eprintln!("publishing your sealing key (once per account)"),
        Ok(false) => {}
        Err(e) => eprintln!(
            "could not publish your sealing key ({e:#}): until it is, workers keep none of \
             your workloads' output (they keep it only sealed to that key)"
        ),
    }
}

/// Signs `call`, submits it, shows progress on stderr, and prints the outcome.
async fn send(context: &Session<'_>, signer: &Signer, call: Call) -> Result<()> {
    let key = context.signing_key(&signer.from)?;
    let client = connect(context).await?;
    let text = context.format == Format::Text;
    let result = client
        .send(&key, call, |status| {
            if text {
                match status {
                    TransactionStatus::Ready { hash } => eprintln!("submitted {hash}"),
                    TransactionStatus::Included { block } => {
                        eprintln!("included in block #{}, waiting for finality", block.height)
                    }
                    TransactionStatus::Finalized { .. } | TransactionStatus::Dropped { .. } => {}
                }
            }
        })
        .await;
    match result {
        Ok(Finalized {
            hash,
            block,
            receipt,
        }) => {
            let events = receipt.events.iter().cloned().collect::<Vec<_>>();
            let result = TransactionResult {
                hash,
                block,
                success: true,
                fee: receipt.fee,
                events: &events,
            };
            print(context.format, &result, || {
                let mut out = format!(
                    "finalized in block #{} ({}), fee {}",
                    block.height, block.hash, receipt.fee
                );
                for event in &events {
                    out.push_str(&format!("\n  {}", crate::output::event_words(event)));
                }
                out
            });
            Ok(())
        }
        Err(ClientError::Failed {
            hash,
            block,
            receipt,
            error,
        }) => {
            if context.format == Format::Json {
                println!(
                    "{}",
                    serde_json::json!({
                        "hash": hash, "block": block, "success": false,
                        "fee": receipt.fee, "error": error,
                    })
                );
                std::process::exit(1);
            }
            bail!(
                "transaction {hash} failed in block #{} (fee {} taken): {error}",
                block.height,
                receipt.fee
            )
        }
        Err(other) => Err(other.into()),
    }
}

fn show<T: Serialize>(format: Format, value: &T) {
    print(format, value, || {
        crate::output::outline(&serde_json::to_value(value).unwrap_or_default())
    });
}

/// The HTTP status of `GET url` (`http://host:port/path` only), or `None` if nothing answers.
pub(crate) async fn http_status(url: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
}

/// A signed `GET` to the owner API of the worker running `app`.
async fn owner_request(
    context: &Session<'_>,
    app: AppId,
    from: &str,
    target: &str,
    logs: Option<wetee_types::Workload>,
) -> Result<()> {
    let client = connect(context).await?;
    let state = AppState::read(&client, app)
        .await?
        .with_context(|| format!("there is no app {app}"))?;
    let worker = state.worker.with_context(|| {
        format!(
            "app {app} is not placed on a worker: {}",
            state.state_words()
        )
    })?;
    owner_get(context, worker, from, target, logs).await
}

/// A signed `GET target` to `worker`'s owner API: a workload's logs are opened with the
/// owner's key and go to stdout as they arrive; anything else is shown as a document (status
/// and metrics).
async fn owner_get(
    context: &Session<'_>,
    worker: WorkerId,
    from: &str,
    target: &str,
    logs: Option<wetee_types::Workload>,
) -> Result<()> {
    let key = context.signing_key(from)?;
    let light = connect_light(context).await?;
    let response = crate::owner_api::get(&light, worker, &key, target).await?;
    if let Some(workload) = logs
        && response.status == 200
    {
        // Records open only if the worker's attested sealing key sealed them.
        let record = light
            .snapshot()
            .worker(worker)
            .await
            .map_err(|e| anyhow::anyhow!("reading worker {worker}: {e}"))?
            .with_context(|| format!("there is no worker {worker}"))?;
        let opener = wetee_client::owner_logs::LogOpener::new(
            &key,
            light.genesis_hash(),
            worker,
            record.keys.sealing,
            workload,
        );
        return crate::owner_api::open_to_stdout(response, opener).await;
    }
    show(context.format, &crate::owner_api::json(response).await?);
    Ok(())
}
