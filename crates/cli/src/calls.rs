//! Commands that talk to a node: accounts, the chain, and one subcommand per runtime call for
//! workers, apps, tasks and the root key. Every transaction is signed, submitted, and followed
//! to finality, and its events or its error are printed.

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

/// `wetee account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Shows an account's balances and nonce.
    Balance {
        /// The account (address or 0x public key); or give --from.
        account: Option<AccountId>,
        /// Whose account, as a key.
        #[arg(long, conflicts_with = "account")]
        from: Option<String>,
    },
    /// Sends tokens.
    Transfer {
        #[command(flatten)]
        signer: Signer,
        /// The recipient.
        #[arg(long)]
        to: AccountId,
        /// How much, in WTE (for example 1.5).
        #[arg(long)]
        amount: Balance,
    },
    /// Publishes the account's sealing key (derived from the account key), to which workers
    /// seal a failed app's log lines. `wetee app deploy` does it before an account's first app.
    SetSealingKey {
        #[command(flatten)]
        signer: Signer,
    },
}

/// `wetee chain status|block|events` (`chain spec` is handled with the local commands).
#[derive(Debug, Subcommand)]
pub enum ChainQuery {
    /// The node's view of the chain.
    Status,
    /// A finalized block with its transactions, receipts and events.
    Block {
        /// A height or a 0x block hash (default: the latest finalized).
        block: Option<String>,
    },
    /// Events of finalized blocks, optionally filtered.
    Events {
        /// Keep printing events as blocks are finalized.
        #[arg(long)]
        follow: bool,
        /// Only events about this account.
        #[arg(long)]
        account: Option<AccountId>,
        /// Only events about this worker.
        #[arg(long)]
        worker: Option<WorkerId>,
        /// Only events about this app.
        #[arg(long)]
        app: Option<AppId>,
        /// Only events about this task.
        #[arg(long)]
        task: Option<TaskId>,
        /// Without --follow: how many recent blocks to read.
        #[arg(long, default_value_t = 20)]
        blocks: u64,
    },
}

/// `wetee worker ...`: worker clusters.
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Runs the worker agent: registers the cluster if needed, then runs what the chain
    /// assigns to it.
    Run(crate::worker::RunArgs),
    /// What this machine's TEE attests for the running build, and the rule admitting exactly
    /// it.
    Measurements(crate::worker::MeasurementsArgs),
    /// Every registered worker.
    List,
    /// One worker.
    Show {
        /// The worker.
        worker: WorkerId,
    },
    /// Registers a cluster operated by the signer.
    Register {
        #[command(flatten)]
        signer: Signer,
        /// The offer (JSON or TOML): capacity, prices, region, endpoint.
        #[arg(long)]
        profile: PathBuf,
        /// The TEE-bound keys and their evidence (JSON).
        #[arg(long)]
        attestation: PathBuf,
    },
    /// Replaces the offer, and optionally the attested keys.
    Update {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// The new offer (JSON or TOML).
        #[arg(long)]
        profile: PathBuf,
        /// New keys and evidence (JSON).
        #[arg(long)]
        attestation: Option<PathBuf>,
    },
    /// Bonds more stake.
    Stake {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// How much.
        amount: Balance,
    },
    /// Starts unbonding stake.
    Unstake {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// How much.
        amount: Balance,
    },
    /// Accepts placements.
    Start {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
    },
    /// Stops accepting placements and drains.
    Stop {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
    },
    /// Uploads a signed work report (JSON).
    SubmitReport {
        #[command(flatten)]
        signer: Signer,
        /// The report.
        #[arg(long)]
        report: PathBuf,
    },
    /// Moves earnings and unlocked stake to the operator.
    Withdraw {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
    },
    /// Complains about a worker, locking a bond.
    Complain {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// Hash of the evidence.
        #[arg(long)]
        evidence_hash: Hash,
        /// The bond.
        #[arg(long)]
        bond: Balance,
    },
    /// Root only: slashes a worker's stake.
    Slash {
        #[command(flatten)]
        signer: Signer,
        /// The worker.
        worker: WorkerId,
        /// How much.
        amount: Balance,
        /// The complaint this upholds.
        #[arg(long)]
        complaint: Option<ComplaintId>,
    },
    /// Root only: dismisses a complaint.
    DismissComplaint {
        #[command(flatten)]
        signer: Signer,
        /// The complaint.
        complaint: ComplaintId,
    },
    /// Posts Intel's collateral (JSON in dcap-qvl's QuoteCollateralV3 layout) for a platform
    /// family; anyone may. The chain stores it only if Intel signed it, it is current, and it
    /// is newer than what the chain has.
    PostCollateral {
        #[command(flatten)]
        signer: Signer,
        /// The collateral file.
        collateral: PathBuf,
    },
}

/// `wetee app secrets ...`: secrets sealed to the TEE of the worker the app runs on.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seals secrets to the app's worker, after verifying its attestation here; the others
    /// are kept (or resealed if the app moved). Values never leave this machine in the clear.
    Set {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// A file of `NAME=VALUE` lines (`#` comments and blank lines ignored), or `-` for
        /// standard input. Values are never taken from the command line, which shell history
        /// and the process list keep.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Names to forget.
        #[arg(long)]
        remove: Vec<String>,
        /// An image digest (`sha256:<hex>`) allowed to receive the secrets, repeatable (default:
        /// the images allowed so far, or else the app's current image).
        #[arg(long = "allow-image", value_parser = parse_image_digest)]
        allow_images: Vec<wetee_types::Hash>,
        /// A worker build you trust, as a measurement rule in JSON (for example
        /// `{"kind":"tdx","mr_td":"<hex>"}`, as `wetee worker measurements` prints), repeatable: the
        /// worker must run one of them, besides what the chain's policy allows.
        #[arg(long = "expect-measurement", value_parser = parse_measurement_rule)]
        expect_measurements: Vec<wetee_types::attestation::MeasurementRule>,
        /// Seal even to a worker running the simulated TEE (development chains only: it
        /// protects nothing).
        #[arg(long)]
        allow_simulated_tee: bool,
    },
    /// Reseals every secret to the worker the app now runs on (after it moved), from the
    /// owner's own sealed copies: nothing to type again.
    Reseal {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// A worker build you trust (see `secrets set`), repeatable.
        #[arg(long = "expect-measurement", value_parser = parse_measurement_rule)]
        expect_measurements: Vec<wetee_types::attestation::MeasurementRule>,
        /// Seal even to a worker running the simulated TEE (development chains only).
        #[arg(long)]
        allow_simulated_tee: bool,
    },
    /// The app's secrets: names, revisions, and the worker they are sealed to (never values).
    List {
        /// The app.
        app: AppId,
    },
}

/// `wetee app ...`: long-running apps.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Deploys an app from its manifest and (with --wait) follows it until it serves.
    Deploy(crate::deploy::DeployArgs),
    /// An app's state, where it runs, and its URL.
    Status {
        /// The app.
        app: AppId,
        /// The owner's key: opens the failure report's log lines, which are sealed to it.
        #[arg(long)]
        from: Option<String>,
    },
    /// The app's logs, from its worker (owner only).
    Logs {
        /// The app.
        app: AppId,
        /// The owner's key.
        #[arg(long, default_value = "//Alice")]
        from: String,
        /// Keep printing new lines.
        #[arg(long)]
        follow: bool,
    },
    /// The app's containers, uptime and resource use per epoch, from its worker (owner only).
    Metrics {
        /// The app.
        app: AppId,
        /// The owner's key.
        #[arg(long, default_value = "//Alice")]
        from: String,
    },
    /// Apps, all or the owner's.
    List {
        /// Only this owner's.
        #[arg(long)]
        owner: Option<AccountId>,
    },
    /// One app with its versions.
    Show {
        /// The app.
        app: AppId,
    },
    /// Creates an app from its specification, reserving a deposit.
    Create {
        #[command(flatten)]
        signer: Signer,
        /// The app's manifest (`wetee.toml`) or on-chain specification (JSON).
        #[arg(long, short = 'f')]
        spec: PathBuf,
        /// The prepaid deposit.
        #[arg(long)]
        deposit: Balance,
    },
    /// Deploys a new version.
    Update {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// The new specification (JSON or TOML).
        #[arg(long, short = 'f')]
        spec: PathBuf,
    },
    /// Changes env, secret names or replicas (JSON or TOML settings).
    SetSettings {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// The settings.
        #[arg(long)]
        settings: PathBuf,
    },
    /// Adds to the deposit.
    Recharge {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
        /// How much.
        amount: Balance,
    },
    /// Restarts the app's containers.
    Restart {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
    },
    /// Stops the app and refunds the unused deposit.
    Stop {
        #[command(flatten)]
        signer: Signer,
        /// The app.
        app: AppId,
    },
    /// Secrets sealed to the TEE of the app's worker.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

/// `wetee task ...`: one-off and periodic tasks.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Tasks, all or the owner's.
    List {
        /// Only this owner's.
        #[arg(long)]
        owner: Option<AccountId>,
    },
    /// One task with its versions.
    Show {
        /// The task.
        task: TaskId,
    },
    /// A task's runs and their results.
    Runs {
        /// The task.
        task: TaskId,
    },
    /// A run's output and logs, from the worker that ran it (owner only).
    Logs {
        /// The task.
        task: TaskId,
        /// The run's number.
        run: u32,
        /// The owner's key.
        #[arg(long, default_value = "//Alice")]
        from: String,
    },
    /// Creates a task from its specification, reserving a deposit.
    Create {
        #[command(flatten)]
        signer: Signer,
        /// The task's specification (JSON or TOML).
        #[arg(long, short = 'f')]
        spec: PathBuf,
        /// The prepaid deposit.
        #[arg(long)]
        deposit: Balance,
    },
    /// Replaces the specification.
    Update {
        #[command(flatten)]
        signer: Signer,
        /// The task.
        task: TaskId,
        /// The new specification (JSON or TOML).
        #[arg(long, short = 'f')]
        spec: PathBuf,
    },
    /// Changes the schedule, timeout or run limit (JSON or TOML).
    SetExecution {
        #[command(flatten)]
        signer: Signer,
        /// The task.
        task: TaskId,
        /// The execution settings.
        #[arg(long)]
        execution: PathBuf,
    },
    /// Adds to the deposit.
    Recharge {
        #[command(flatten)]
        signer: Signer,
        /// The task.
        task: TaskId,
        /// How much.
        amount: Balance,
    },
    /// Stops scheduling runs and refunds what no run holds.
    Stop {
        #[command(flatten)]
        signer: Signer,
        /// The task.
        task: TaskId,
    },
}

/// `wetee root ...`: calls only the root key may make.
#[derive(Debug, Subcommand)]
// The subcommands are named after the runtime's root calls, which all set something.
#[allow(clippy::enum_variant_names)]
pub enum RootCommand {
    /// Replaces the chain parameters (JSON or TOML).
    SetParams {
        #[command(flatten)]
        signer: Signer,
        /// The new parameters.
        #[arg(long)]
        params: PathBuf,
    },
    /// Hands the root key to another account.
    SetRootKey {
        #[command(flatten)]
        signer: Signer,
        /// The new root.
        root: AccountId,
    },
    /// Replaces the attestation policy (JSON or TOML): allowed TCB statuses, allowed worker
    /// measurements, whether the simulated TEE is accepted, the maximum evidence age.
    SetAttestationPolicy {
        #[command(flatten)]
        signer: Signer,
        /// The new policy.
        #[arg(long)]
        policy: PathBuf,
    },
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

/// `wetee account ...`.
pub async fn account(command: AccountCommand, context: &Session<'_>) -> Result<()> {
    match command {
        AccountCommand::Balance { account, from } => {
            let account = match (account, from) {
                (Some(account), _) => account,
                (None, Some(from)) => context.signing_key(&from)?.account_id(),
                (None, None) => bail!("say whose balance: an ACCOUNT or --from KEY"),
            };
            let client = connect(context).await?;
            let state = client.account(&account).await?;
            let json = serde_json::json!({
                "account": account, "free": state.free, "reserved": state.reserved,
                "nonce": state.nonce,
            });
            print(context.format, &json, || {
                format!(
                    "{account}\n  free      {}\n  reserved  {}\n  nonce     {}",
                    state.free, state.reserved, state.nonce
                )
            });
            Ok(())
        }
        AccountCommand::Transfer { signer, to, amount } => {
            let call = Call::Balances(BalancesCall::Transfer { to, amount });
            send(context, &signer, call).await
        }
        AccountCommand::SetSealingKey { signer } => {
            let key = context.signing_key(&signer.from)?;
            let key = wetee_client::owner_key::sealing_key(&key);
            send(
                context,
                &signer,
                Call::Balances(BalancesCall::SetSealingKey { key }),
            )
            .await
        }
    }
}

fn parse_block_id(text: &str) -> Result<BlockId> {
    if text.starts_with("0x") {
        return Ok(BlockId::Hash(
            text.parse().map_err(|e| anyhow::anyhow!("{text}: {e}"))?,
        ));
    }
    Ok(BlockId::Height(text.parse().with_context(|| {
        format!("{text} is neither a height nor a 0x block hash")
    })?))
}

/// `wetee chain status|block|events`.
pub async fn chain(command: ChainQuery, context: &Session<'_>) -> Result<()> {
    let client = connect(context).await?;
    match command {
        ChainQuery::Status => {
            let health = client.health().await?;
            print(context.format, &health, || {
                format!(
                    "{} (genesis {})\n  finalized  #{} {}\n  network    #{}\n  validators {}{}\n  pending    {} transactions",
                    health.chain,
                    health.genesis_hash,
                    health.finalized.height,
                    health.finalized.hash,
                    health.network_finalized,
                    health.validators,
                    if health.is_validator {
                        " (this node is one)"
                    } else {
                        ""
                    },
                    health.pending_transactions
                )
            });
        }
        ChainQuery::Block { block } => {
            let id = block.as_deref().map(parse_block_id).transpose()?;
            let block = client.block(id).await?;
            show(context.format, &block);
        }
        ChainQuery::Events {
            follow,
            account,
            worker,
            app,
            task,
            blocks,
        } => {
            let filter = EventFilter {
                account,
                worker,
                app,
                task,
            };
            let print_record = |record: &wetee_types::rpc::EventRecord| match context.format {
                Format::Json => println!("{}", serde_json::to_string(record).unwrap_or_default()),
                Format::Text => println!(
                    "#{:<8} {}",
                    record.block.height,
                    crate::output::event_words(&record.event)
                ),
            };
            if follow {
                let mut events = client.events(&filter).await?;
                while let Some(record) = events.next().await {
                    print_record(&record.context("reading an event")?);
                }
                bail!("the node closed the event stream");
            }
            let head = client.header(None).await?.header.height;
            for height in head.saturating_sub(blocks.saturating_sub(1))..=head {
                let block = client.block(Some(BlockId::Height(height))).await?;
                let at = wetee_types::rpc::BlockRef {
                    height: block.header.header.height,
                    hash: block.header.hash,
                };
                let records = wetee_types::rpc::event_records(
                    at,
                    &block.begin_events,
                    &block.receipts,
                    &block.end_events,
                );
                for (record, signer) in records {
                    if filter.matches(&record, signer.as_ref()) {
                        print_record(&record);
                    }
                }
            }
        }
    }
    Ok(())
}

/// `wetee worker ...`.
pub async fn worker(command: WorkerCommand, context: &Session<'_>) -> Result<()> {
    let (signer, call) = match command {
        WorkerCommand::Run(_) => bail!("`wetee worker run` is not a transaction"),
        WorkerCommand::Measurements(_) => {
            bail!("`wetee worker measurements` is not a transaction")
        }
        WorkerCommand::List => {
            show(context.format, &connect(context).await?.workers().await?);
            return Ok(());
        }
        WorkerCommand::Show { worker } => {
            let client = connect(context).await?;
            let found = client
                .worker(worker)
                .await?
                .with_context(|| format!("no worker {worker}"))?;
            let workloads = client.workloads(worker).await?;
            show(
                context.format,
                &serde_json::json!({ "worker": found, "workloads": workloads }),
            );
            return Ok(());
        }
        WorkerCommand::Register {
            signer,
            profile,
            attestation,
        } => {
            let profile: WorkerProfile = read_document(&profile)?;
            let attestation: Attestation = read_document(&attestation)?;
            (
                signer,
                WorkersCall::Register {
                    profile,
                    attestation,
                },
            )
        }
        WorkerCommand::Update {
            signer,
            worker,
            profile,
            attestation,
        } => {
            let profile: WorkerProfile = read_document(&profile)?;
            let attestation: Option<Attestation> =
                attestation.as_deref().map(read_document).transpose()?;
            (
                signer,
                WorkersCall::Update {
                    worker,
                    profile,
                    attestation,
                },
            )
        }
        WorkerCommand::Stake {
            signer,
            worker,
            amount,
        } => (signer, WorkersCall::Stake { worker, amount }),
        WorkerCommand::Unstake {
            signer,
            worker,
            amount,
        } => (signer, WorkersCall::Unstake { worker, amount }),
        WorkerCommand::Start { signer, worker } => (signer, WorkersCall::Start { worker }),
        WorkerCommand::Stop { signer, worker } => (signer, WorkersCall::Stop { worker }),
        WorkerCommand::SubmitReport { signer, report } => {
            let report: SignedWorkReport = read_document(&report)?;
            (signer, WorkersCall::SubmitWorkReport { report })
        }
        WorkerCommand::Withdraw { signer, worker } => (signer, WorkersCall::Withdraw { worker }),
        WorkerCommand::Complain {
            signer,
            worker,
            evidence_hash,
            bond,
        } => (
            signer,
            WorkersCall::FileComplaint {
                worker,
                evidence_hash,
                bond,
            },
        ),
        WorkerCommand::Slash {
            signer,
            worker,
            amount,
            complaint,
        } => (
            signer,
            WorkersCall::Slash {
                worker,
                amount,
                complaint,
            },
        ),
        WorkerCommand::DismissComplaint { signer, complaint } => {
            (signer, WorkersCall::DismissComplaint { complaint })
        }
        WorkerCommand::PostCollateral { signer, collateral } => {
            let bytes = std::fs::read(&collateral)
                .with_context(|| format!("reading {}", collateral.display()))?;
            let len = bytes.len();
            let collateral = bytes.try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{len} bytes: the chain stores at most {}",
                    wetee_types::records::MAX_COLLATERAL_BYTES
                )
            })?;
            let call = Call::Attestation(AttestationCall::PostCollateral { collateral });
            return send(context, &signer, call).await;
        }
    };
    send(context, &signer, Call::Workers(call)).await
}

/// `wetee app ...`.
pub async fn app(command: AppCommand, context: &Session<'_>) -> Result<()> {
    let (signer, call) = match command {
        AppCommand::Deploy(args) => return crate::deploy::deploy(context, args).await,
        AppCommand::Status { app, from } => {
            let client = connect(context).await?;
            let mut state = AppState::read(&client, app)
                .await?
                .with_context(|| format!("there is no app {app}"))?;
            if let Some(from) = from {
                let owner = context.signing_key(&from)?;
                match connect_light(context).await {
                    Ok(light) => state.open_log(Some(&light), &owner).await,
                    Err(e) if state.failure.is_some() => {
                        state.failure_log_error = Some(format!("{e:#}"));
                    }
                    Err(_) => {}
                }
            }
            print(context.format, &state, || state.to_text());
            return Ok(());
        }
        AppCommand::Logs { app, from, follow } => {
            let query = if follow { "?follow=1" } else { "" };
            let target = format!("/_wetee/apps/{app}/logs{query}");
            let logs = Some(wetee_types::Workload::App { app });
            return owner_request(context, app, &from, &target, logs).await;
        }
        AppCommand::Metrics { app, from } => {
            let target = format!("/_wetee/apps/{app}/status");
            return owner_request(context, app, &from, &target, None).await;
        }
        AppCommand::List { owner } => {
            show(
                context.format,
                &connect(context).await?.apps(owner.as_ref()).await?,
            );
            return Ok(());
        }
        AppCommand::Show { app } => {
            let client = connect(context).await?;
            let found = client
                .app(app)
                .await?
                .with_context(|| format!("no app {app}"))?;
            let versions = client.app_versions(app).await?;
            show(
                context.format,
                &serde_json::json!({ "app": found, "versions": versions }),
            );
            return Ok(());
        }
        AppCommand::Create {
            signer,
            spec,
            deposit,
        } => {
            let spec = read_app_spec(&spec)?;
            publish_sealing_key(context, &signer).await;
            (signer, AppsCall::Create { spec, deposit })
        }
        AppCommand::Update { signer, app, spec } => {
            let spec = read_app_spec(&spec)?;
            let secrets_grant = secrets_grant(context, &signer, app, &spec).await?;
            (
                signer,
                AppsCall::Update {
                    app,
                    spec,
                    secrets_grant,
                },
            )
        }
        AppCommand::SetSettings {
            signer,
            app,
            settings,
        } => {
            let settings: AppSettings = read_document(&settings)?;
            (signer, AppsCall::SetSettings { app, settings })
        }
        AppCommand::Recharge {
            signer,
            app,
            amount,
        } => (signer, AppsCall::Recharge { app, amount }),
        AppCommand::Restart { signer, app } => (signer, AppsCall::Restart { app }),
        AppCommand::Stop { signer, app } => (signer, AppsCall::Stop { app }),
        AppCommand::Secrets(command) => return secrets(command, context).await,
    };
    send(context, &signer, Call::Apps(call)).await
}

/// Reads `NAME=VALUE` pairs: from the command line, then from a file.
fn secret_values(file: &Path) -> Result<Vec<SecretValue>> {
    let from_stdin = file == Path::new("-");
    let place = |line: usize| match from_stdin {
        true => format!("standard input:{line}"),
        false => format!("{}:{line}", file.display()),
    };
    let text = zeroize::Zeroizing::new(if from_stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading standard input")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    });
    let mut values: Vec<SecretValue> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The messages name the line, never its text: it may be a value.
        let Some((name, value)) = line.split_once('=') else {
            bail!("{}: expected NAME=VALUE", place(i + 1));
        };
        let name = name.trim();
        if values.iter().any(|v| v.name == name) {
            bail!("{}: `{name}` is given twice", place(i + 1));
        }
        values.push(SecretValue {
            name: name.to_string(),
            value: zeroize::Zeroizing::new(value.as_bytes().to_vec()),
        });
    }
    Ok(values)
}

/// `wetee app secrets ...`.
async fn secrets(command: SecretsCommand, context: &Session<'_>) -> Result<()> {
    let (signer, app, values, remove, options) = match command {
        SecretsCommand::List { app } => {
            let client = connect(context).await?;
            let stored = client.app_secrets(app).await?;
            let listed = stored.as_ref().map(|s| {
                serde_json::json!({
                    "app": app,
                    "worker": s.worker,
                    "revision": s.revision,
                    "secrets": s.secrets.iter().map(|secret| serde_json::json!({
                        "name": secret.name.as_str(),
                        "revision": secret.revision,
                    })).collect::<Vec<_>>(),
                })
            });
            print(context.format, &listed, || match &stored {
                None => format!("app {app} has no secrets on chain"),
                Some(s) => {
                    let mut text = format!(
                        "app {app}: secrets sealed to worker {} (revision {})",
                        s.worker, s.revision
                    );
                    for secret in s.secrets.iter() {
                        text.push_str(&format!(
                            "\n  {}  (revision {})",
                            secret.name.as_str(),
                            secret.revision
                        ));
                    }
                    text
                }
            });
            return Ok(());
        }
        SecretsCommand::Set {
            signer,
            app,
            file,
            remove,
            allow_images,
            expect_measurements,
            allow_simulated_tee,
        } => (
            signer,
            app,
            match &file {
                Some(file) => secret_values(file)?,
                None if remove.is_empty() => bail!(
                    "give the values with --file FILE (NAME=VALUE lines), or --file - to read \
                     them from standard input"
                ),
                None => Vec::new(),
            },
            remove,
            SealOptions {
                allowed_images: allow_images,
                expected_measurements: expect_measurements,
                allow_simulated: allow_simulated_tee,
            },
        ),
        SecretsCommand::Reseal {
            signer,
            app,
            expect_measurements,
            allow_simulated_tee,
        } => (
            signer,
            app,
            Vec::new(),
            Vec::new(),
            SealOptions {
                allowed_images: Vec::new(),
                expected_measurements: expect_measurements,
                allow_simulated: allow_simulated_tee,
            },
        ),
    };
    let key = context.signing_key(&signer.from)?;
    let light = connect_light(context).await?;
    let (call, worker) = wetee_client::secrets::seal(&light, &key, app, &values, &remove, &options)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if context.format == Format::Text {
        eprintln!(
            "worker {}'s attestation verified here ({}); sealing to its key",
            worker.id, worker.evidence.kind
        );
    }
    send(context, &signer, call).await
}

/// When the app has secrets and `spec`'s image may not receive them yet: the owner's consent,
/// which lets the new image (and only it) receive them, signed over the stored record.
async fn secrets_grant(
    context: &Session<'_>,
    signer: &Signer,
    app: AppId,
    spec: &wetee_types::manifest::AppSpec,
) -> Result<Option<wetee_types::transaction::SecretsGrant>> {
    // Whether a grant is needed at all: a node lying here only gets the update refused.
    let image = &spec.container.image.digest;
    let client = connect(context).await?;
    if client
        .app_secrets(app)
        .await?
        .is_none_or(|record| record.allows_image(image))
    {
        return Ok(None);
    }
    // What the owner signs is read and verified through the light client.
    let light = connect_light(context).await?;
    let Some(mut record) = light
        .snapshot()
        .app_secrets(app)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        return Ok(None);
    };
    if record.allows_image(image) {
        return Ok(None);
    }
    let key = context.signing_key(&signer.from)?;
    // The chain stores a grant as the next revision of the record.
    record.revision = record
        .revision
        .checked_add(1)
        .ok_or_else(|| anyhow::anyhow!("the secrets revision overflows"))?;
    record.allowed_images =
        wetee_types::codec::BoundedVec::try_new(vec![wetee_types::Hash(*image)])
            .map_err(|_| anyhow::anyhow!("one image always fits"))?;
    let signature = key.sign(&record.signing_payload(&light.genesis_hash(), app));
    if context.format == Format::Text {
        eprintln!(
            "the app's secrets will be given to the new image {image_hex} only",
            image_hex = hex::encode(image)
        );
    }
    Ok(Some(wetee_types::transaction::SecretsGrant {
        allowed_images: record.allowed_images,
        signature,
    }))
}

/// A measurement rule in JSON.
fn parse_measurement_rule(text: &str) -> Result<wetee_types::attestation::MeasurementRule, String> {
    let rule: wetee_types::attestation::MeasurementRule =
        serde_json::from_str(text).map_err(|e| format!("not a measurement rule: {e}"))?;
    if !rule.is_pinned() {
        return Err("the rule pins no measurement and would match any worker".into());
    }
    Ok(rule)
}

/// `sha256:<64 hex>` (or the bare hex) as an image digest.
fn parse_image_digest(text: &str) -> Result<wetee_types::Hash, String> {
    let digits = text.strip_prefix("sha256:").unwrap_or(text);
    hex::decode(digits)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(wetee_types::Hash)
        .ok_or_else(|| format!("`{text}` is not sha256:<64 hex digits>"))
}

/// `wetee task ...`.
pub async fn task(command: TaskCommand, context: &Session<'_>) -> Result<()> {
    let (signer, call) = match command {
        TaskCommand::List { owner } => {
            show(
                context.format,
                &connect(context).await?.tasks(owner.as_ref()).await?,
            );
            return Ok(());
        }
        TaskCommand::Show { task } => {
            let client = connect(context).await?;
            let state = TaskState::read(&client, task).await?;
            print(context.format, &state, || state.to_text());
            return Ok(());
        }
        TaskCommand::Logs { task, run, from } => {
            let client = connect(context).await?;
            let runs = client.task_runs(task).await?;
            let record = runs
                .iter()
                .find(|r| r.run == run)
                .with_context(|| format!("task {task} has no run {run}"))?;
            let worker = record
                .worker
                .with_context(|| format!("run {run} of task {task} was never assigned"))?;
            let path = format!("/_wetee/tasks/{task}/runs/{run}/logs");
            let logs = Some(wetee_types::Workload::TaskRun { task, run });
            return owner_get(context, worker, &from, &path, logs).await;
        }
        TaskCommand::Runs { task } => {
            let runs = connect(context).await?.task_runs(task).await?;
            print(context.format, &runs, || {
                if runs.is_empty() {
                    return format!("task {task} has no runs yet");
                }
                runs.iter()
                    .map(crate::task_state::run_words)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(());
        }
        TaskCommand::Create {
            signer,
            spec,
            deposit,
        } => {
            let spec = read_task_spec(&spec)?;
            publish_sealing_key(context, &signer).await;
            (signer, TasksCall::Create { spec, deposit })
        }
        TaskCommand::Update { signer, task, spec } => {
            let spec = read_task_spec(&spec)?;
            (signer, TasksCall::Update { task, spec })
        }
        TaskCommand::SetExecution {
            signer,
            task,
            execution,
        } => {
            let execution: TaskExecution = read_document(&execution)?;
            (signer, TasksCall::SetExecution { task, execution })
        }
        TaskCommand::Recharge {
            signer,
            task,
            amount,
        } => (signer, TasksCall::Recharge { task, amount }),
        TaskCommand::Stop { signer, task } => (signer, TasksCall::Stop { task }),
    };
    send(context, &signer, Call::Tasks(call)).await
}

/// `wetee root ...`.
pub async fn root(command: RootCommand, context: &Session<'_>) -> Result<()> {
    let (signer, call) = match command {
        RootCommand::SetParams { signer, params } => {
            let params: Params = read_document(&params)?;
            (signer, RootCall::SetParams { params })
        }
        RootCommand::SetRootKey { signer, root } => (signer, RootCall::SetRootKey { root }),
        RootCommand::SetAttestationPolicy { signer, policy } => {
            let policy: AttestationPolicy = read_document(&policy)?;
            (signer, RootCall::SetAttestationPolicy { policy })
        }
    };
    send(context, &signer, Call::Root(call)).await
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
