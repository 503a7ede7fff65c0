//! JSON-RPC 2.0 over HTTP and WebSocket on one port, and Prometheus metrics on `/metrics` on a
//! listener of their own.
//!
//! Every method is documented in `docs/rpc.md`. Requests are untrusted: bad parameters get
//! `-32602` with the reason, rejected transactions get [`codes::TRANSACTION_REJECTED`] with
//! the mempool's reason, and nothing a request does can change stored state except admitting
//! a valid transaction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::middleware::rpc::{MethodResponse, RpcServiceBuilder};
use jsonrpsee::server::{
    BatchRequestConfig, PendingSubscriptionSink, PingConfig, RpcModule, Server, ServerConfig,
    ServerHandle, SubscriptionMessage,
};
use jsonrpsee::types::ErrorObjectOwned;
use serde::Serialize;
use wetee_rpc_api::WeteeApiServer;
use wetee_runtime::query;

pub mod limits;
mod positional;

/// The service an RPC middleware of ours wraps: jsonrpsee's, or another of ours, answering a
/// call, a batch and a notification alike with a [`MethodResponse`].
pub trait InnerService:
    jsonrpsee::server::middleware::rpc::RpcServiceT<
        MethodResponse = MethodResponse,
        BatchResponse = MethodResponse,
        NotificationResponse = MethodResponse,
    > + Send
    + Sync
    + Clone
    + 'static
{
}

impl<S> InnerService for S where
    S: jsonrpsee::server::middleware::rpc::RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static
{
}

pub use limits::RpcLimits;
use limits::{AddressLimiter, RateLimited, SlottedStream};
use positional::Positional;
use wetee_types::attestation::AttestationPolicy;
use wetee_types::records::{
    Account, App, AppFailure, AppSecrets, AppVersion, CollateralRecord, Task, TaskRun, TaskVersion,
    Worker,
};
use wetee_types::rpc::{
    AppEpoch, AppEpochs, BlockId, BlockInfo, BlockRef, EventFilter, EventHistory, EventRecord,
    FinalityProof, HeaderInfo, Health, Hex, HistoryPage, NonceConflict, Page, PageRequest,
    ParamsInfo, PendingPlacement, Phase, PlacementPreview, PlacementRequest, ProvenEntry,
    StateProof, TransactionInfo, TransactionParam, codes, event_records,
};
use wetee_types::spec::ChainSpec;
use wetee_types::transaction::WorkersCall;
use wetee_types::{
    AccountId, AppId, Block, Call, CallError, Event, FeeQuote, Hash, SignedTransaction, TaskId,
    TeeKind, TxError, WorkerId, Workload,
};

use crate::ledger::{Ledger, ProveError};
use crate::mempool::MempoolError;

/// Largest request body: a transaction carries at most a manifest and some proofs.
pub const MAX_REQUEST_BYTES: u32 = 4 << 20;
/// Largest response: a full block with its receipts.
pub const MAX_RESPONSE_BYTES: u32 = 64 << 20;
/// Connections served at once.
pub const MAX_CONNECTIONS: u32 = 1_024;
/// Requests one connection may have in flight at once: over HTTP/2 one socket could
/// otherwise carry a hundred.
pub const MAX_CALLS_IN_FLIGHT_PER_CONNECTION: u32 = 16;
/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 256;
/// Calls one JSON-RPC batch may hold: a batch of thousands of state queries would hold the
/// node's threads for one request. A larger batch is refused whole, with an error.
pub const MAX_BATCH_CALLS: u32 = 100;
/// How often a WebSocket client is pinged, and how long one that answers nothing (no pong, no
/// request) is kept: a client gone without closing its socket frees its connection slot and
/// its subscriptions.
pub const WS_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// See [`WS_PING_INTERVAL`].
pub const WS_INACTIVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(90);

/// Renders the node's metrics in the Prometheus text format.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// What the RPC methods work from.
pub struct RpcState<E: commonware_storage::Context + commonware_runtime::Spawner> {
    ledger: Ledger<E>,
    spec: Arc<ChainSpec>,
    is_validator: bool,
    /// Every method's name, known once the module is built (`rpc_methods`).
    methods: Arc<std::sync::OnceLock<Vec<String>>>,
}

impl<E: commonware_storage::Context + commonware_runtime::Spawner> std::fmt::Debug for RpcState<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcState")
            .field("chain", &self.spec.name)
            .field("is_validator", &self.is_validator)
            .finish()
    }
}

fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    error(codes::INTERNAL, e.to_string())
}

fn state_error(e: CallError) -> ErrorObjectOwned {
    internal(format!("state unreadable: {e}"))
}

fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    error(jsonrpsee::types::error::INVALID_PARAMS_CODE, message)
}

fn transaction_of(param: TransactionParam) -> Result<SignedTransaction, ErrorObjectOwned> {
    param.into_transaction().map_err(invalid_params)
}

fn not_found(what: impl std::fmt::Display) -> ErrorObjectOwned {
    error(codes::NOT_FOUND, format!("{what} not found"))
}

pub use crate::history::MAX_HISTORY_RECORDS;
/// Blocks one `events_history` or `apps_epochs` request reads at most; the answer's
/// `next_before` goes on from there.
pub const MAX_HISTORY_BLOCKS_READ: usize = 256;
/// Records `events_history` returns when the caller names no limit.
pub const DEFAULT_HISTORY_RECORDS: usize = 100;

/// A history page's start and its limit, within bounds.
fn history_page(page: Option<HistoryPage>) -> (Option<u64>, usize) {
    let page = page.unwrap_or_default();
    let limit = page
        .limit
        .map_or(DEFAULT_HISTORY_RECORDS, |l| l as usize)
        .clamp(1, MAX_HISTORY_RECORDS);
    (page.before, limit)
}

/// What a history request read: each block with its matching events, newest first, where
/// the next page starts, and how far back the answer is complete.
struct HistoryRead {
    blocks: Vec<(Arc<Block>, Vec<EventRecord>)>,
    next_before: Option<u64>,
    covered_from: Option<u64>,
}

/// Most keys one `state_getProof` proves: the node's commits wait while it proves.
pub const MAX_PROOF_KEYS: usize = 1_024;

/// `state_getProof`'s keys, within bounds.
fn proof_keys(keys: Vec<Hex>) -> Result<Vec<Vec<u8>>, ErrorObjectOwned> {
    if keys.len() > MAX_PROOF_KEYS {
        return Err(invalid_params(format!(
            "{} keys asked; at most {MAX_PROOF_KEYS} per request",
            keys.len()
        )));
    }
    if let Some(long) = keys
        .iter()
        .find(|key| key.0.len() > crate::store::MAX_KEY_BYTES)
    {
        return Err(invalid_params(format!(
            "a key of {} bytes; state keys have at most {}",
            long.0.len(),
            crate::store::MAX_KEY_BYTES
        )));
    }
    Ok(keys.into_iter().map(|key| key.0).collect())
}

fn header_info(block: &Block) -> HeaderInfo {
    HeaderInfo {
        hash: block.hash(),
        header: block.header,
    }
}

/// The next item, or `None` once the stream ends or the subscriber has gone away.
async fn next_or_closed<T>(
    stream: &mut (impl futures::Stream<Item = T> + Unpin),
    sink: &jsonrpsee::server::SubscriptionSink,
) -> Option<T> {
    let closed = sink.closed();
    futures::pin_mut!(closed);
    match futures::future::select(stream.next(), closed).await {
        futures::future::Either::Left((item, _)) => item,
        futures::future::Either::Right(_) => None,
    }
}

fn json_message(value: &impl Serialize) -> Result<SubscriptionMessage, ErrorObjectOwned> {
    serde_json::value::to_raw_value(value)
        .map(SubscriptionMessage::from)
        .map_err(internal)
}

impl<E> RpcState<E>
where
    E: commonware_storage::Context + commonware_runtime::Spawner + Send + Sync,
{
    /// Answers from the latest finalized state.
    fn read<R>(
        &self,
        query: impl FnOnce(&dyn wetee_runtime::State) -> Result<R, CallError>,
    ) -> RpcResult<R> {
        self.ledger.read(query).map_err(state_error)
    }

    async fn block(&self, id: Option<BlockId>) -> Result<Arc<Block>, ErrorObjectOwned> {
        let id = id.unwrap_or(BlockId::Height(self.ledger.status().head.header.height));
        self.ledger.block(id).await.ok_or_else(|| match id {
            BlockId::Height(height) => not_found(format!("finalized block {height}")),
            BlockId::Hash(hash) => not_found(format!("finalized block {hash}")),
        })
    }

    /// The blocks below `before` holding events that match `filter`, newest first, each with
    /// those events, until `counts` has accepted `limit` of them (ending at a block boundary)
    /// or [`MAX_HISTORY_BLOCKS_READ`] blocks were read. `events_history` and `apps_epochs` both
    /// read this way, so one request of either reads that many blocks at most.
    async fn read_history(
        &self,
        filter: &EventFilter,
        before: Option<u64>,
        limit: usize,
        counts: impl Fn(&EventRecord) -> bool,
    ) -> Result<HistoryRead, ErrorObjectOwned> {
        /// Blocks read from the index at a time.
        const CHUNK: usize = 64;
        let mut read = HistoryRead {
            blocks: Vec::new(),
            next_before: None,
            covered_from: None,
        };
        let mut before = before;
        let mut counted = 0;
        loop {
            let candidates = self.ledger.history().candidates(filter, before, CHUNK);
            read.covered_from = candidates.covered_from;
            let exhausted = candidates.blocks.len() < CHUNK;
            for height in candidates.blocks {
                // A filter whose subjects share blocks but never one event matches few records
                // in many blocks: one request reads a bounded number of them, and says where
                // the next one goes on.
                if read.blocks.len() >= MAX_HISTORY_BLOCKS_READ || counted >= limit {
                    read.next_before = before;
                    return Ok(read);
                }
                let block = self.block(Some(BlockId::Height(height))).await?;
                let outcome = self
                    .ledger
                    .outcome(&block)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| not_found(format!("the receipts of block {height}")))?;
                let at = BlockRef {
                    height,
                    hash: block.hash(),
                };
                let records = crate::history::matching(at, &outcome, filter);
                counted += records.iter().filter(|record| counts(record)).count();
                read.blocks.push((block, records));
                before = Some(height);
            }
            if exhausted {
                if counted >= limit {
                    read.next_before = before;
                }
                return Ok(read);
            }
        }
    }

    /// The events matching `filter` in blocks below `before`, newest first: at least `limit`
    /// when there are that many, ending at a block boundary.
    async fn event_history(
        &self,
        filter: &EventFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<EventHistory, ErrorObjectOwned> {
        let read = self.read_history(filter, before, limit, |_| true).await?;
        Ok(EventHistory {
            records: read
                .blocks
                .into_iter()
                .flat_map(|(_, records)| records)
                .collect(),
            next_before: read.next_before,
            covered_from: read.covered_from,
        })
    }

    /// `app`'s epochs paid in blocks below `before`, newest first, each with what its worker's
    /// report proved: its payments, joined with the report transactions of the same blocks
    /// that made them.
    async fn app_epochs(
        &self,
        app: AppId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<AppEpochs, ErrorObjectOwned> {
        let filter = EventFilter {
            app: Some(app),
            ..EventFilter::default()
        };
        let read = self
            .read_history(&filter, before, limit, |record| {
                matches!(record.event, Event::AppPaid { .. })
            })
            .await?;
        let mut epochs = Vec::new();
        for (block, records) in &read.blocks {
            for record in records {
                let (
                    Event::AppPaid {
                        worker,
                        epoch,
                        amount,
                        protocol_fee,
                        ..
                    },
                    Phase::Transaction { hash, .. },
                ) = (&record.event, record.phase)
                else {
                    continue;
                };
                let proof = block.transactions.iter().find_map(|tx| match &tx.tx.call {
                    Call::Workers(WorkersCall::SubmitWorkReport { report })
                        if tx.hash() == hash && report.report.epoch == *epoch =>
                    {
                        report.report.apps.iter().find(|proof| proof.app == app)
                    }
                    _ => None,
                });
                if let Some(proof) = proof {
                    epochs.push(AppEpoch {
                        epoch: *epoch,
                        worker: *worker,
                        uptime_bps: proof.uptime_bps,
                        usage: proof.usage,
                        paid: *amount,
                        protocol_fee: *protocol_fee,
                        block: record.block,
                    });
                }
            }
        }
        Ok(AppEpochs {
            epochs,
            next_before: read.next_before,
            covered_from: read.covered_from,
        })
    }

    /// Why the finalized block at `height` is final.
    async fn finality(&self, height: u64) -> Result<FinalityProof, ErrorObjectOwned> {
        if height > self.ledger.status().head.header.height {
            return Err(not_found(format!("finalized block {height}")));
        }
        self.ledger.finality(height).await.ok_or_else(|| {
            error(
                codes::UNAVAILABLE,
                format!("this node holds no finalization certificate for block {height} yet"),
            )
        })
    }

    /// A refused transaction as an RPC error: a nonce conflict gets its own code with what a
    /// client needs to sign again; anything else is [`codes::TRANSACTION_REJECTED`].
    fn rejection(&self, signer: &AccountId, e: MempoolError) -> ErrorObjectOwned {
        let conflict = |nonce, pending| NonceConflict {
            signer: *signer,
            nonce,
            pending,
            next: self.ledger.next_nonce(signer).unwrap_or(nonce),
        };
        let (code, data) = match &e {
            MempoolError::NonceTaken {
                nonce, existing, ..
            } => (codes::NONCE_TAKEN, Some(conflict(*nonce, Some(*existing)))),
            MempoolError::Invalid(TxError::StaleNonce { got, .. }) => {
                (codes::NONCE_USED, Some(conflict(*got, None)))
            }
            _ => (codes::TRANSACTION_REJECTED, None),
        };
        ErrorObjectOwned::owned(code, format!("transaction rejected: {e}"), data)
    }

    fn health(&self) -> Health {
        let status = self.ledger.status();
        Health {
            chain: self.spec.name.clone(),
            genesis_hash: self.spec.genesis_hash(),
            finalized: BlockRef {
                height: status.head.header.height,
                hash: status.head_hash,
            },
            finalized_timestamp_ms: status.head.header.timestamp_ms,
            network_finalized: status.tip,
            validators: self.spec.validators.len(),
            is_validator: self.is_validator,
            pending_transactions: self.ledger.pending_count(),
        }
    }
}

#[async_trait]
impl<E> WeteeApiServer for RpcState<E>
where
    E: commonware_storage::Context + commonware_runtime::Spawner + Send + Sync + 'static,
{
    fn health(&self) -> RpcResult<Health> {
        Ok(RpcState::health(self))
    }

    fn chain_spec(&self) -> RpcResult<ChainSpec> {
        Ok((*self.spec).clone())
    }

    fn account_next_index(&self, account: AccountId) -> RpcResult<u64> {
        self.ledger.next_nonce(&account).map_err(state_error)
    }

    fn methods(&self) -> RpcResult<Vec<String>> {
        Ok(self.methods.get().cloned().unwrap_or_default())
    }

    async fn header(&self, block: Option<BlockId>) -> RpcResult<HeaderInfo> {
        let block = self.block(block).await?;
        Ok(header_info(&block))
    }

    async fn block(&self, block: Option<BlockId>) -> RpcResult<BlockInfo> {
        let block = RpcState::block(self, block).await?;
        let outcome = self
            .ledger
            .outcome(&block)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("the block's receipts"))?;
        Ok(BlockInfo {
            header: header_info(&block),
            transactions: block
                .transactions
                .iter()
                .map(|tx| TransactionInfo {
                    hash: tx.hash(),
                    transaction: tx.clone(),
                })
                .collect(),
            receipts: outcome.receipts,
            begin_events: outcome.begin_events,
            end_events: outcome.end_events,
        })
    }

    async fn finality(&self, height: Option<u64>) -> RpcResult<FinalityProof> {
        let height = height.unwrap_or(self.ledger.status().head.header.height);
        RpcState::finality(self, height).await
    }

    async fn finalized_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut finalized = self.ledger.subscribe();
        let sink = pending.accept().await?;
        while let Some(block) = next_or_closed(&mut finalized, &sink).await {
            sink.send(json_message(&header_info(&block.block))?).await?;
        }
        Err("this node fell too far behind the chain to follow it".into())
    }

    async fn state_proof(&self, keys: Vec<Hex>, at: Option<u64>) -> RpcResult<StateProof> {
        let keys = proof_keys(keys)?;
        let (height, proven) = self.ledger.prove(&keys, at).await.map_err(|e| match e {
            ProveError::Moved { height } => ErrorObjectOwned::owned(
                codes::STATE_MOVED,
                e.to_string(),
                Some(serde_json::json!({ "height": height })),
            ),
            ProveError::Store(e) => internal(e),
        })?;
        let finality = RpcState::finality(self, height).await?;
        Ok(StateProof {
            finality,
            entries: proven
                .into_iter()
                .map(|entry| ProvenEntry {
                    key: Hex(entry.key),
                    value: entry.value.map(Hex),
                    proof: Hex(entry.proof.to_bytes()),
                })
                .collect(),
        })
    }

    fn account(&self, account: AccountId) -> RpcResult<Account> {
        self.read(|view| query::account(view, &account))
    }

    fn params(&self) -> RpcResult<ParamsInfo> {
        let missing = || internal("the state has no parameters");
        let (chain, params, root, treasury) = self.read(|view| {
            Ok((
                query::chain_config(view)?,
                query::params(view)?,
                query::root_key(view)?,
                query::treasury(view)?,
            ))
        })?;
        Ok(ParamsInfo {
            chain: chain.ok_or_else(missing)?,
            params: params.ok_or_else(missing)?,
            root: root.ok_or_else(missing)?,
            treasury: treasury.ok_or_else(missing)?,
        })
    }

    fn worker(&self, worker: WorkerId) -> RpcResult<Option<Worker>> {
        self.read(|view| query::worker(view, worker))
    }

    fn workers(&self, page: Option<PageRequest<WorkerId>>) -> RpcResult<Page<Worker, WorkerId>> {
        self.read(|view| query::workers_page(view, &page.unwrap_or_default()))
    }

    fn workloads(
        &self,
        worker: WorkerId,
        page: Option<PageRequest<Workload>>,
    ) -> RpcResult<Page<Workload, Workload>> {
        self.read(|view| query::workloads_page(view, worker, &page.unwrap_or_default()))
    }

    fn app(&self, app: AppId) -> RpcResult<Option<App>> {
        self.read(|view| query::app(view, app))
    }

    fn sealing_key(&self, account: AccountId) -> RpcResult<Option<String>> {
        self.read(|view| query::sealing_key(view, &account))
            .map(|key| key.map(hex::encode))
    }

    fn app_failure(&self, app: AppId) -> RpcResult<Option<AppFailure>> {
        self.read(|view| query::app_failure(view, app))
    }

    fn app_secrets(&self, app: AppId) -> RpcResult<Option<AppSecrets>> {
        self.read(|view| query::app_secrets(view, app))
    }

    fn attestation_policy(&self) -> RpcResult<AttestationPolicy> {
        self.read(query::attestation_policy)
    }

    fn collateral(
        &self,
        kind: TeeKind,
        fmspc: String,
        pck_ca: String,
    ) -> RpcResult<Option<CollateralRecord>> {
        let fmspc = wetee_types::attestation::hex_array::parse::<6>(&fmspc)
            .map_err(|e| invalid_params(format!("fmspc: {e}")))?;
        self.read(|view| query::collateral(view, kind, &fmspc, &pck_ca))
    }

    fn app_versions(
        &self,
        app: AppId,
        page: Option<PageRequest<u32>>,
    ) -> RpcResult<Page<AppVersion, u32>> {
        self.read(|view| query::app_versions_page(view, app, &page.unwrap_or_default()))
    }

    fn apps(
        &self,
        owner: Option<AccountId>,
        page: Option<PageRequest<AppId>>,
    ) -> RpcResult<Page<App, AppId>> {
        self.read(|view| query::apps_page(view, owner.as_ref(), &page.unwrap_or_default()))
    }

    fn task(&self, task: TaskId) -> RpcResult<Option<Task>> {
        self.read(|view| query::task(view, task))
    }

    fn task_versions(
        &self,
        task: TaskId,
        page: Option<PageRequest<u32>>,
    ) -> RpcResult<Page<TaskVersion, u32>> {
        self.read(|view| query::task_versions_page(view, task, &page.unwrap_or_default()))
    }

    fn task_runs(
        &self,
        task: TaskId,
        page: Option<PageRequest<u32>>,
    ) -> RpcResult<Page<TaskRun, u32>> {
        self.read(|view| query::task_runs_page(view, task, &page.unwrap_or_default()))
    }

    fn tasks(
        &self,
        owner: Option<AccountId>,
        page: Option<PageRequest<TaskId>>,
    ) -> RpcResult<Page<Task, TaskId>> {
        self.read(|view| query::tasks_page(view, owner.as_ref(), &page.unwrap_or_default()))
    }

    fn pending_placements(
        &self,
        page: Option<PageRequest<u64>>,
    ) -> RpcResult<Page<PendingPlacement, u64>> {
        self.read(|view| query::pending_page(view, &page.unwrap_or_default()))
    }

    fn placement_preview(&self, request: PlacementRequest) -> RpcResult<PlacementPreview> {
        self.read(|view| query::placement_preview(view, &request))
    }

    fn pending_reason(&self, workload: Workload) -> RpcResult<Option<String>> {
        self.read(|view| query::pending_reason(view, &workload))
    }

    fn query_fee(&self, transaction: TransactionParam) -> RpcResult<FeeQuote> {
        let tx = transaction_of(transaction)?;
        self.ledger.fee_quote(&tx).map_err(|e| match e {
            TxError::State(_) => internal(e),
            other => error(
                codes::TRANSACTION_REJECTED,
                format!("transaction rejected: {other}"),
            ),
        })
    }

    fn submit_transaction(&self, transaction: TransactionParam) -> RpcResult<Hash> {
        let tx = transaction_of(transaction)?;
        let hash = tx.hash();
        let signer = tx.tx.signer;
        match self.ledger.submit(tx, true) {
            Ok(hash) => Ok(hash),
            // Submitting again what is pending is harmless: same answer as the first time.
            Err(MempoolError::AlreadyKnown(_)) => Ok(hash),
            Err(e) => Err(self.rejection(&signer, e)),
        }
    }

    async fn submit_and_watch(
        &self,
        pending: PendingSubscriptionSink,
        transaction: TransactionParam,
    ) -> SubscriptionResult {
        let tx = match transaction_of(transaction) {
            Ok(tx) => tx,
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        };
        // Watch before admitting, so a block finalized in between is not missed.
        let hash = tx.hash();
        let Some(mut statuses) = self.ledger.watch(hash) else {
            pending
                .reject(error(
                    codes::UNAVAILABLE,
                    "too many transactions are being watched; submit without watching",
                ))
                .await;
            return Ok(());
        };
        let signer = tx.tx.signer;
        match self.ledger.submit(tx, true) {
            // Already pending (sent again after a lost connection): follow it.
            Ok(_) | Err(MempoolError::AlreadyKnown(_)) => {}
            Err(e) => {
                drop(statuses);
                self.ledger.unwatch(&hash);
                pending.reject(self.rejection(&signer, e)).await;
                return Ok(());
            }
        }
        let sink = match pending.accept().await {
            Ok(sink) => sink,
            Err(e) => {
                drop(statuses);
                self.ledger.unwatch(&hash);
                return Err(e.into());
            }
        };
        loop {
            let Some(status) = next_or_closed(&mut statuses, &sink).await else {
                break;
            };
            let last = status.is_final();
            sink.send(json_message(&status)?).await?;
            if last {
                return Ok(());
            }
        }
        drop(statuses);
        self.ledger.unwatch(&hash);
        Err("the node stopped following this transaction".into())
    }

    async fn events(
        &self,
        pending: PendingSubscriptionSink,
        filter: Option<EventFilter>,
    ) -> SubscriptionResult {
        let filter = filter.unwrap_or_default();
        let mut finalized = self.ledger.subscribe();
        let sink = pending.accept().await?;
        while let Some(block) = next_or_closed(&mut finalized, &sink).await {
            let at = BlockRef {
                height: block.block.header.height,
                hash: block.hash,
            };
            let outcome = &block.outcome;
            let records = event_records(
                at,
                &outcome.begin_events,
                &outcome.receipts,
                &outcome.end_events,
            );
            for (record, signer) in records {
                if filter.matches(&record, signer.as_ref()) {
                    sink.send(json_message(&record)?).await?;
                }
            }
        }
        Err("this node fell too far behind the chain to follow it".into())
    }

    async fn event_history(
        &self,
        filter: EventFilter,
        page: Option<HistoryPage>,
    ) -> RpcResult<EventHistory> {
        if filter.is_empty() {
            return Err(invalid_params(
                "name an account, worker, app or task: the whole chain's history is read \
                 block by block with chain_getBlock",
            ));
        }
        let (before, limit) = history_page(page);
        RpcState::event_history(self, &filter, before, limit).await
    }

    async fn app_epochs(&self, app: AppId, page: Option<HistoryPage>) -> RpcResult<AppEpochs> {
        let (before, limit) = history_page(page);
        RpcState::app_epochs(self, app, before, limit).await
    }
}

/// Every RPC method, over `ledger`.
pub fn module<E>(
    ledger: Ledger<E>,
    spec: Arc<ChainSpec>,
    is_validator: bool,
) -> RpcModule<RpcState<E>>
where
    E: commonware_storage::Context + commonware_runtime::Spawner + Send + Sync + 'static,
{
    let methods = Arc::new(std::sync::OnceLock::new());
    let module = RpcState {
        ledger,
        spec,
        is_validator,
        methods: Arc::clone(&methods),
    }
    .into_rpc();
    let mut names: Vec<String> = module.method_names().map(str::to_string).collect();
    names.sort_unstable();
    let _ = methods.set(names);
    module
}

/// Serves `module` on `address` (HTTP and WebSocket), each address within `limits`.
pub async fn serve<E>(
    address: SocketAddr,
    module: RpcModule<RpcState<E>>,
    limits: RpcLimits,
) -> std::io::Result<(SocketAddr, ServerHandle)>
where
    E: commonware_storage::Context + commonware_runtime::Spawner + Send + Sync,
{
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let methods: jsonrpsee::Methods = module.into();
    let limiter = AddressLimiter::new(limits);
    // Each connection gets a service of its own (it must know its address): the cap on all
    // connections is the limiter's.
    let per_connection = ServerConfig::builder()
        // Requests one connection may have in flight at once (HTTP/2 multiplexes them).
        .max_connections(MAX_CALLS_IN_FLIGHT_PER_CONNECTION)
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(MAX_RESPONSE_BYTES)
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH_CALLS))
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(WS_PING_INTERVAL)
                .inactive_limit(WS_INACTIVE_LIMIT)
                .max_failures(2),
        )
        .build();
    // The server's own accept loop cannot say who connects: this one does, so that each
    // address keeps to its share of connections and calls.
    tokio::spawn(async move {
        loop {
            let (socket, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, most likely: give closing ones a moment.
                        tracing::debug!(error = %e, "cannot accept an RPC connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.clone().shutdown() => break,
            };
            let Some(slot) = limiter.connect(remote.ip()) else {
                tracing::debug!(ip = %remote.ip(), "refused an RPC connection: all slots, or the address's share, are taken");
                drop(socket);
                continue;
            };
            let ip = remote.ip();
            let per_call = Arc::clone(&limiter);
            let builder = Server::builder()
                .set_config(per_connection.clone())
                .set_rpc_middleware(
                    RpcServiceBuilder::new()
                        .layer_fn(move |service| {
                            RateLimited::new(service, ip, Arc::clone(&per_call))
                        })
                        .layer_fn(Positional::new),
                )
                .to_service_builder();
            let methods = methods.clone();
            let stop = stop.clone();
            // The socket carries its slot: a WebSocket keeps it after the upgrade.
            let socket = SlottedStream::new(socket, slot);
            tokio::spawn(async move {
                let service = builder.build(methods, stop.clone());
                let served = jsonrpsee::server::serve_with_graceful_shutdown(
                    socket,
                    service,
                    stop.shutdown(),
                )
                .await;
                if let Err(e) = served {
                    tracing::trace!(error = %e, "an RPC connection ended");
                }
            });
        }
    });
    Ok((bound, handle))
}

/// Serves `metrics` in the Prometheus text format on `GET /metrics` at `address`, a listener
/// of its own; returns where it is bound. It serves until the runtime it runs on stops.
pub async fn serve_metrics(
    address: SocketAddr,
    metrics: MetricsSource,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(bound)
}
