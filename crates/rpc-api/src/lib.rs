//! The node's JSON-RPC surface, declared once.
//!
//! [`WeteeApi`] names every method, its parameters and its answer. The node implements the
//! generated [`WeteeApiServer`]; the SDK calls through the generated `WeteeApiClient` (feature
//! `client`), so a method's name and shape live in one place and neither side can drift. A node
//! lists what it serves (`rpc_methods`), and the CLI's `rpc_bad_input` test checks `docs/rpc.md`
//! against that list: every method is documented, and nothing that is not a method is.
//!
//! What each method does, its limits and its errors are in `docs/rpc.md`.
//!
//! Must not: hold behaviour (that is the node's), or types of its own (they are
//! `wetee_types`', so that programs that only read answers need not depend on jsonrpsee).

#![forbid(unsafe_code)]

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use wetee_types::attestation::AttestationPolicy;
use wetee_types::records::{
    Account, App, AppFailure, AppSecrets, AppVersion, CollateralRecord, Task, TaskRun, TaskVersion,
    Worker,
};
use wetee_types::rpc::{
    AppEpochs, BlockId, BlockInfo, EventFilter, EventHistory, FinalityProof, HeaderInfo, Health,
    Hex, HistoryPage, Page, PageRequest, ParamsInfo, PendingPlacement, PlacementPreview,
    PlacementRequest, StateProof, TransactionParam,
};
use wetee_types::spec::ChainSpec;
use wetee_types::{AccountId, AppId, FeeQuote, Hash, TaskId, TeeKind, WorkerId, Workload};

/// Every method of a WeteeChain node's RPC.
#[cfg_attr(not(feature = "client"), rpc(server))]
#[cfg_attr(feature = "client", rpc(server, client))]
pub trait WeteeApi {
    /// Where the node stands: its chain, its finalized head, the network's, its pool.
    #[method(name = "system_health")]
    fn health(&self) -> RpcResult<Health>;

    /// The chain spec the node runs.
    #[method(name = "system_chainSpec")]
    fn chain_spec(&self) -> RpcResult<ChainSpec>;

    /// The name of every method this node serves, sorted.
    #[method(name = "rpc_methods")]
    fn methods(&self) -> RpcResult<Vec<String>>;

    /// The account's next free nonce, counting its pending transactions.
    #[method(name = "system_accountNextIndex")]
    fn account_next_index(&self, account: AccountId) -> RpcResult<u64>;

    /// A finalized block's header (the latest when `block` is absent).
    #[method(name = "chain_getHeader")]
    async fn header(&self, block: Option<BlockId>) -> RpcResult<HeaderInfo>;

    /// A finalized block with its transactions and receipts (the latest when `block` is absent).
    #[method(name = "chain_getBlock")]
    async fn block(&self, block: Option<BlockId>) -> RpcResult<BlockInfo>;

    /// Why the finalized block at `height` is final (the latest when absent).
    #[method(name = "chain_getFinality")]
    async fn finality(&self, height: Option<u64>) -> RpcResult<FinalityProof>;

    /// Each finalized header, as it is finalized.
    #[subscription(
        name = "chain_subscribeFinalizedHeads" => "chain_finalizedHead",
        unsubscribe = "chain_unsubscribeFinalizedHeads",
        item = HeaderInfo
    )]
    async fn finalized_heads(&self) -> SubscriptionResult;

    /// State keys with their values and proofs against the latest finalized header (at `at`
    /// only if the state is still there).
    #[method(name = "state_getProof")]
    async fn state_proof(&self, keys: Vec<Hex>, at: Option<u64>) -> RpcResult<StateProof>;

    /// An account (empty if never used).
    #[method(name = "state_account")]
    fn account(&self, account: AccountId) -> RpcResult<Account>;

    /// The chain's configuration, parameters, root key and treasury.
    #[method(name = "state_params")]
    fn params(&self) -> RpcResult<ParamsInfo>;

    /// A worker.
    #[method(name = "state_worker")]
    fn worker(&self, worker: WorkerId) -> RpcResult<Option<Worker>>;

    /// A page of the workers, by id.
    #[method(name = "state_workers", blocking)]
    fn workers(&self, page: Option<PageRequest<WorkerId>>) -> RpcResult<Page<Worker, WorkerId>>;

    /// A page of what is placed on a worker, in workload order.
    #[method(name = "state_workloads", blocking)]
    fn workloads(
        &self,
        worker: WorkerId,
        page: Option<PageRequest<Workload>>,
    ) -> RpcResult<Page<Workload, Workload>>;

    /// An app.
    #[method(name = "state_app")]
    fn app(&self, app: AppId) -> RpcResult<Option<App>>;

    /// The X25519 key (hex) an account published for sealing to it.
    #[method(name = "state_sealingKey")]
    fn sealing_key(&self, account: AccountId) -> RpcResult<Option<String>>;

    /// Why an app's worker could not run it, if it reported so.
    #[method(name = "state_appFailure")]
    fn app_failure(&self, app: AppId) -> RpcResult<Option<AppFailure>>;

    /// An app's sealed secrets, if its owner set any.
    #[method(name = "state_appSecrets")]
    fn app_secrets(&self, app: AppId) -> RpcResult<Option<AppSecrets>>;

    /// Which TEEs the chain accepts for workers.
    #[method(name = "state_attestationPolicy")]
    fn attestation_policy(&self) -> RpcResult<AttestationPolicy>;

    /// The Intel collateral posted for a platform family (`fmspc`, hex) and PCK CA.
    #[method(name = "state_collateral")]
    fn collateral(
        &self,
        kind: TeeKind,
        fmspc: String,
        pck_ca: String,
    ) -> RpcResult<Option<CollateralRecord>>;

    /// A page of an app's versions, oldest first.
    #[method(name = "state_appVersions", blocking)]
    fn app_versions(
        &self,
        app: AppId,
        page: Option<PageRequest<u32>>,
    ) -> RpcResult<Page<AppVersion, u32>>;

    /// A page of the apps, or of `owner`'s, by id.
    #[method(name = "state_apps", blocking)]
    fn apps(
        &self,
        owner: Option<AccountId>,
        page: Option<PageRequest<AppId>>,
    ) -> RpcResult<Page<App, AppId>>;

    /// A task.
    #[method(name = "state_task")]
    fn task(&self, task: TaskId) -> RpcResult<Option<Task>>;

    /// A page of a task's versions, oldest first.
    #[method(name = "state_taskVersions", blocking)]
    fn task_versions(
        &self,
        task: TaskId,
        page: Option<PageRequest<u32>>,
    ) -> RpcResult<Page<TaskVersion, u32>>;

    /// A page of a task's runs, first first.
    #[method(name = "state_taskRuns", blocking)]
    fn task_runs(
        &self,
        task: TaskId,
        page: Option<PageRequest<u32>>,
    ) -> RpcResult<Page<TaskRun, u32>>;

    /// A page of the tasks, or of `owner`'s, by id.
    #[method(name = "state_tasks", blocking)]
    fn tasks(
        &self,
        owner: Option<AccountId>,
        page: Option<PageRequest<TaskId>>,
    ) -> RpcResult<Page<Task, TaskId>>;

    /// A page of the workloads waiting for a worker, front first, each with why it waits.
    #[method(name = "state_pendingPlacements", blocking)]
    fn pending_placements(
        &self,
        page: Option<PageRequest<u64>>,
    ) -> RpcResult<Page<PendingPlacement, u64>>;

    /// What creating `request` now would do, writing nothing.
    #[method(name = "state_placementPreview", blocking)]
    fn placement_preview(&self, request: PlacementRequest) -> RpcResult<PlacementPreview>;

    /// Why a workload waits for a worker, in words, if it waits.
    #[method(name = "state_pendingReason", blocking)]
    fn pending_reason(&self, workload: Workload) -> RpcResult<Option<String>>;

    /// What a transaction would pay, and for what.
    #[method(name = "payment_queryFee")]
    fn query_fee(&self, transaction: TransactionParam) -> RpcResult<FeeQuote>;

    /// Admits a transaction to the pool; its hash.
    #[method(name = "author_submitTransaction")]
    fn submit_transaction(&self, transaction: TransactionParam) -> RpcResult<Hash>;

    /// Admits a transaction and follows it until it is final or dropped.
    #[subscription(
        name = "author_submitAndWatch" => "author_transactionStatus",
        unsubscribe = "author_unwatch",
        item = wetee_types::rpc::TransactionStatus
    )]
    async fn submit_and_watch(&self, transaction: TransactionParam) -> SubscriptionResult;

    /// Each finalized event matching `filter` (every event when absent).
    #[subscription(
        name = "events_subscribe" => "events_event",
        unsubscribe = "events_unsubscribe",
        item = wetee_types::rpc::EventRecord
    )]
    async fn events(&self, filter: Option<EventFilter>) -> SubscriptionResult;

    /// Past events matching `filter`, newest first, a page at a time.
    #[method(name = "events_history")]
    async fn event_history(
        &self,
        filter: EventFilter,
        page: Option<HistoryPage>,
    ) -> RpcResult<EventHistory>;

    /// An app's proven and paid epochs, newest first, a page at a time.
    #[method(name = "apps_epochs")]
    async fn app_epochs(&self, app: AppId, page: Option<HistoryPage>) -> RpcResult<AppEpochs>;
}
