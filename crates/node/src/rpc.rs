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
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{
    BatchRequestConfig, PendingSubscriptionSink, PingConfig, RpcModule, Server, ServerConfig,
    ServerHandle, SubscriptionMessage,
};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::Deserialize;
use serde::Serialize;
use wetee_runtime::query;

pub mod limits;

pub use limits::RpcLimits;
use limits::{AddressLimiter, RateLimited};
use wetee_types::codec::decode;
use wetee_types::rpc::{
    AppEpoch, AppEpochs, BlockId, BlockInfo, BlockRef, EventFilter, EventHistory, EventRecord,
    FinalityProof, HeaderInfo, Health, Hex, HistoryPage, NonceConflict, PageRequest, ParamsInfo,
    Phase, ProvenEntry, StateProof, TransactionInfo, codes, event_records,
};
use wetee_types::spec::ChainSpec;
use wetee_types::transaction::WorkersCall;
use wetee_types::{
    AccountId, AppId, Block, Call, CallError, Event, SignedTransaction, TaskId, TxError, WorkerId,
    Workload,
};

use crate::ledger::{Ledger, ProveError};
use crate::mempool::MempoolError;

/// Largest request body: a transaction carries at most a manifest and some proofs.
pub const MAX_REQUEST_BYTES: u32 = 4 << 20;
/// Largest response: a full block with its receipts.
pub const MAX_RESPONSE_BYTES: u32 = 64 << 20;
/// Connections served at once.
pub const MAX_CONNECTIONS: u32 = 1_024;
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

fn not_found(what: impl std::fmt::Display) -> ErrorObjectOwned {
    error(codes::NOT_FOUND, format!("{what} not found"))
}

/// A transaction as a request carries it: the hex of its canonical encoding, or its JSON.
#[derive(Deserialize)]
#[serde(untagged)]
enum TransactionParam {
    Encoded(String),
    Json(Box<SignedTransaction>),
}

impl TransactionParam {
    fn into_transaction(self) -> Result<SignedTransaction, ErrorObjectOwned> {
        match self {
            TransactionParam::Json(tx) => Ok(*tx),
            TransactionParam::Encoded(text) => {
                let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(&text)).map_err(|e| {
                    error(
                        jsonrpsee::types::error::INVALID_PARAMS_CODE,
                        format!("transaction is not hex: {e}"),
                    )
                })?;
                decode::<SignedTransaction>(&bytes).map_err(|e| {
                    error(
                        jsonrpsee::types::error::INVALID_PARAMS_CODE,
                        format!("transaction does not decode: {e}"),
                    )
                })
            }
        }
    }
}

fn transaction_param(params: &Params<'_>) -> Result<SignedTransaction, ErrorObjectOwned> {
    let mut sequence = params.sequence();
    let tx: TransactionParam = sequence.next()?;
    tx.into_transaction()
}

fn optional<T: for<'a> Deserialize<'a> + Send>(
    params: &Params<'_>,
) -> Result<Option<T>, ErrorObjectOwned> {
    if params.is_object() {
        return Err(error(
            jsonrpsee::types::error::INVALID_PARAMS_CODE,
            "parameters are positional: pass an array",
        ));
    }
    params.sequence().optional_next()
}

fn required<T: for<'a> Deserialize<'a> + Send>(params: &Params<'_>) -> Result<T, ErrorObjectOwned> {
    if params.is_object() {
        return Err(error(
            jsonrpsee::types::error::INVALID_PARAMS_CODE,
            "parameters are positional: pass an array",
        ));
    }
    params.sequence().next()
}

/// A list method's parameters when it lists everything: `[page?]`.
fn page_of<C: for<'a> Deserialize<'a> + Send>(
    params: &Params<'_>,
) -> Result<PageRequest<C>, ErrorObjectOwned> {
    Ok(optional(params)?.unwrap_or_default())
}

/// A list method's parameters when it lists what belongs to something: `[subject, page?]`.
fn subject_and_page<S, C>(params: &Params<'_>) -> Result<(S, PageRequest<C>), ErrorObjectOwned>
where
    S: for<'a> Deserialize<'a> + Send,
    C: for<'a> Deserialize<'a> + Send,
{
    let subject = required(params)?;
    let mut sequence = params.sequence();
    sequence.next::<serde_json::Value>()?;
    Ok((subject, sequence.optional_next()?.unwrap_or_default()))
}

/// A list method's parameters when it may list only an owner's: `[owner?, page?]`.
fn owner_and_page<C: for<'a> Deserialize<'a> + Send>(
    params: &Params<'_>,
) -> Result<(Option<AccountId>, PageRequest<C>), ErrorObjectOwned> {
    let owner = optional(params)?;
    let mut sequence = params.sequence();
    let _: Option<serde_json::Value> = sequence.optional_next()?;
    Ok((owner, sequence.optional_next()?.unwrap_or_default()))
}

pub use crate::history::MAX_HISTORY_RECORDS;
/// Blocks one `events_history` or `apps_epochs` request reads at most; the answer's
/// `next_before` goes on from there.
pub const MAX_HISTORY_BLOCKS_READ: usize = 256;
/// Records `events_history` returns when the caller names no limit.
pub const DEFAULT_HISTORY_RECORDS: usize = 100;

/// A paged history request's parameters: what it is about, then an optional
/// [`HistoryPage`]; the page's start and its limit, within bounds.
fn paged<T: for<'a> Deserialize<'a> + Send>(
    params: &Params<'_>,
) -> Result<(T, Option<u64>, usize), ErrorObjectOwned> {
    if params.is_object() {
        return Err(error(
            jsonrpsee::types::error::INVALID_PARAMS_CODE,
            "parameters are positional: pass an array",
        ));
    }
    let mut sequence = params.sequence();
    let subject: T = sequence.next()?;
    let page: HistoryPage = sequence.optional_next()?.unwrap_or_default();
    let limit = page
        .limit
        .map_or(DEFAULT_HISTORY_RECORDS, |l| l as usize)
        .clamp(1, MAX_HISTORY_RECORDS);
    Ok((subject, page.before, limit))
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

/// `state_getProof`'s parameters: the runtime keys (hex) and, optionally, the height the
/// caller's earlier proofs were at.
fn proof_params(params: &Params<'_>) -> Result<(Vec<Vec<u8>>, Option<u64>), ErrorObjectOwned> {
    if params.is_object() {
        return Err(error(
            jsonrpsee::types::error::INVALID_PARAMS_CODE,
            "parameters are positional: pass an array",
        ));
    }
    let mut sequence = params.sequence();
    let keys: Vec<Hex> = sequence.next()?;
    let at: Option<u64> = sequence.optional_next()?;
    if keys.len() > MAX_PROOF_KEYS {
        return Err(error(
            jsonrpsee::types::error::INVALID_PARAMS_CODE,
            format!(
                "{} keys asked; at most {MAX_PROOF_KEYS} per request",
                keys.len()
            ),
        ));
    }
    if let Some(long) = keys
        .iter()
        .find(|key| key.0.len() > crate::store::MAX_KEY_BYTES)
    {
        return Err(error(
            jsonrpsee::types::error::INVALID_PARAMS_CODE,
            format!(
                "a key of {} bytes; state keys have at most {}",
                long.0.len(),
                crate::store::MAX_KEY_BYTES
            ),
        ));
    }
    Ok((keys.into_iter().map(|key| key.0).collect(), at))
}

fn triple<A, B, C>(params: &Params<'_>) -> Result<(A, B, C), ErrorObjectOwned>
where
    A: for<'a> Deserialize<'a> + Send,
    B: for<'a> Deserialize<'a> + Send,
    C: for<'a> Deserialize<'a> + Send,
{
    if params.is_object() {
        return Err(error(
            jsonrpsee::types::error::INVALID_PARAMS_CODE,
            "parameters are positional: pass an array",
        ));
    }
    let mut sequence = params.sequence();
    Ok((sequence.next()?, sequence.next()?, sequence.next()?))
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

/// Registers a method answering from the finalized state.
fn state_method<E, T, R>(
    module: &mut RpcModule<RpcState<E>>,
    name: &'static str,
    query: impl Fn(&dyn wetee_runtime::State, T) -> Result<R, ErrorObjectOwned> + Send + Sync + 'static,
    parse: fn(&Params<'_>) -> Result<T, ErrorObjectOwned>,
) where
    E: commonware_storage::Context + commonware_runtime::Spawner + Send + Sync,
    T: 'static,
    R: Serialize + Clone + 'static,
{
    module
        .register_method(name, move |params, state, _| {
            let argument = parse(&params)?;
            state.ledger.read(|view| query(view, argument))
        })
        .expect("method names are unique");
}

/// Every RPC method, over `ledger`.
pub fn module<E>(
    ledger: Ledger<E>,
    spec: Arc<ChainSpec>,
    is_validator: bool,
) -> RpcModule<RpcState<E>>
where
    E: commonware_storage::Context + commonware_runtime::Spawner + Send + Sync,
{
    let mut module = RpcModule::new(RpcState {
        ledger,
        spec,
        is_validator,
    });
    let unique = "method names are unique";

    module
        .register_method("system_health", |_, state, _| {
            Ok::<_, ErrorObjectOwned>(state.health())
        })
        .expect(unique);
    module
        .register_method("system_chainSpec", |_, state, _| {
            Ok::<_, ErrorObjectOwned>((*state.spec).clone())
        })
        .expect(unique);

    module
        .register_async_method("chain_getHeader", |params, state, _| async move {
            let id: Option<BlockId> = optional(&params)?;
            let block = state.block(id).await?;
            Ok::<_, ErrorObjectOwned>(header_info(&block))
        })
        .expect(unique);
    module
        .register_async_method("chain_getBlock", |params, state, _| async move {
            let id: Option<BlockId> = optional(&params)?;
            let block = state.block(id).await?;
            let outcome = state
                .ledger
                .outcome(&block)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found("the block's receipts"))?;
            Ok::<_, ErrorObjectOwned>(BlockInfo {
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
        })
        .expect(unique);
    module
        .register_subscription(
            "chain_subscribeFinalizedHeads",
            "chain_finalizedHead",
            "chain_unsubscribeFinalizedHeads",
            |_, pending: PendingSubscriptionSink, state, _| async move {
                let mut finalized = state.ledger.subscribe();
                let sink = pending.accept().await?;
                while let Some(block) = next_or_closed(&mut finalized, &sink).await {
                    sink.send(json_message(&header_info(&block.block))?).await?;
                }
                Err("this node fell too far behind the chain to follow it".into())
            },
        )
        .expect(unique);

    module
        .register_async_method("chain_getFinality", |params, state, _| async move {
            let height: Option<u64> = optional(&params)?;
            let height = height.unwrap_or(state.ledger.status().head.header.height);
            state.finality(height).await
        })
        .expect(unique);
    module
        .register_async_method("state_getProof", |params, state, _| async move {
            let (keys, at) = proof_params(&params)?;
            let (height, proven) = state.ledger.prove(&keys, at).await.map_err(|e| match e {
                ProveError::Moved { height } => ErrorObjectOwned::owned(
                    codes::STATE_MOVED,
                    e.to_string(),
                    Some(serde_json::json!({ "height": height })),
                ),
                ProveError::Store(e) => internal(e),
            })?;
            let finality = state.finality(height).await?;
            Ok::<_, ErrorObjectOwned>(StateProof {
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
        })
        .expect(unique);

    module
        .register_method("system_accountNextIndex", |params, state, _| {
            let account: AccountId = required(&params)?;
            state.ledger.next_nonce(&account).map_err(state_error)
        })
        .expect(unique);
    module
        .register_method("payment_queryFee", |params, state, _| {
            let tx = transaction_param(&params)?;
            state.ledger.fee_quote(&tx).map_err(|e| match e {
                TxError::State(_) => internal(e),
                other => error(
                    codes::TRANSACTION_REJECTED,
                    format!("transaction rejected: {other}"),
                ),
            })
        })
        .expect(unique);
    module
        .register_method("author_submitTransaction", |params, state, _| {
            let tx = transaction_param(&params)?;
            let hash = tx.hash();
            let signer = tx.tx.signer;
            match state.ledger.submit(tx, true) {
                Ok(hash) => Ok(hash),
                // Submitting again what is pending is harmless: same answer as the first time.
                Err(MempoolError::AlreadyKnown(_)) => Ok(hash),
                Err(e) => Err(state.rejection(&signer, e)),
            }
        })
        .expect(unique);
    module
        .register_subscription(
            "author_submitAndWatch",
            "author_transactionStatus",
            "author_unwatch",
            |params, pending: PendingSubscriptionSink, state, _| async move {
                let tx = match transaction_param(&params) {
                    Ok(tx) => tx,
                    Err(e) => {
                        pending.reject(e).await;
                        return Ok(());
                    }
                };
                // Watch before admitting, so a block finalized in between is not missed.
                let hash = tx.hash();
                let Some(mut statuses) = state.ledger.watch(hash) else {
                    pending
                        .reject(error(
                            codes::UNAVAILABLE,
                            "too many transactions are being watched; submit without watching",
                        ))
                        .await;
                    return Ok(());
                };
                let signer = tx.tx.signer;
                match state.ledger.submit(tx, true) {
                    // Already pending (sent again after a lost connection): follow it.
                    Ok(_) | Err(MempoolError::AlreadyKnown(_)) => {}
                    Err(e) => {
                        drop(statuses);
                        state.ledger.unwatch(&hash);
                        pending.reject(state.rejection(&signer, e)).await;
                        return Ok(());
                    }
                }
                let sink = match pending.accept().await {
                    Ok(sink) => sink,
                    Err(e) => {
                        drop(statuses);
                        state.ledger.unwatch(&hash);
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
                state.ledger.unwatch(&hash);
                Err("the node stopped following this transaction".into())
            },
        )
        .expect(unique);

    module
        .register_subscription(
            "events_subscribe",
            "events_event",
            "events_unsubscribe",
            |params, pending: PendingSubscriptionSink, state, _| async move {
                let filter: EventFilter = match optional(&params) {
                    Ok(filter) => filter.unwrap_or_default(),
                    Err(e) => {
                        pending.reject(e).await;
                        return Ok(());
                    }
                };
                let mut finalized = state.ledger.subscribe();
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
            },
        )
        .expect(unique);

    module
        .register_async_method("events_history", |params, state, _| async move {
            let (filter, before, limit) = paged::<EventFilter>(&params)?;
            if filter.is_empty() {
                return Err(error(
                    jsonrpsee::types::error::INVALID_PARAMS_CODE,
                    "name an account, worker, app or task: the whole chain's history is read \
                     block by block with chain_getBlock",
                ));
            }
            state.event_history(&filter, before, limit).await
        })
        .expect(unique);

    module
        .register_async_method("apps_epochs", |params, state, _| async move {
            let (app, before, limit) = paged::<AppId>(&params)?;
            state.app_epochs(app, before, limit).await
        })
        .expect(unique);

    fn none(_: &Params<'_>) -> Result<(), ErrorObjectOwned> {
        Ok(())
    }
    state_method(
        &mut module,
        "state_account",
        |view, account: AccountId| query::account(view, &account).map_err(state_error),
        required,
    );
    state_method(
        &mut module,
        "state_params",
        |view, ()| {
            let missing = || internal("the state has no parameters");
            Ok(ParamsInfo {
                chain: query::chain_config(view)
                    .map_err(state_error)?
                    .ok_or_else(missing)?,
                params: query::params(view)
                    .map_err(state_error)?
                    .ok_or_else(missing)?,
                root: query::root_key(view)
                    .map_err(state_error)?
                    .ok_or_else(missing)?,
                treasury: query::treasury(view)
                    .map_err(state_error)?
                    .ok_or_else(missing)?,
            })
        },
        none,
    );
    state_method(
        &mut module,
        "state_worker",
        |view, id: WorkerId| query::worker(view, id).map_err(state_error),
        required,
    );
    state_method(
        &mut module,
        "state_workers",
        |view, page: PageRequest<WorkerId>| query::workers_page(view, &page).map_err(state_error),
        page_of,
    );
    state_method(
        &mut module,
        "state_workloads",
        |view, (id, page): (WorkerId, PageRequest<Workload>)| {
            query::workloads_page(view, id, &page).map_err(state_error)
        },
        subject_and_page,
    );
    state_method(
        &mut module,
        "state_app",
        |view, id: AppId| query::app(view, id).map_err(state_error),
        required,
    );
    state_method(
        &mut module,
        "state_sealingKey",
        |view, account: AccountId| {
            query::sealing_key(view, &account)
                .map(|key| key.map(hex::encode))
                .map_err(state_error)
        },
        required,
    );
    state_method(
        &mut module,
        "state_appFailure",
        |view, id: AppId| query::app_failure(view, id).map_err(state_error),
        required,
    );
    state_method(
        &mut module,
        "state_appSecrets",
        |view, id: AppId| query::app_secrets(view, id).map_err(state_error),
        required,
    );
    state_method(
        &mut module,
        "state_attestationPolicy",
        |view, ()| query::attestation_policy(view).map_err(state_error),
        none,
    );
    state_method(
        &mut module,
        "state_collateral",
        |view, (kind, fmspc, pck_ca): (wetee_types::TeeKind, String, String)| {
            let fmspc = wetee_types::attestation::hex_array::parse::<6>(&fmspc).map_err(|e| {
                error(
                    jsonrpsee::types::error::INVALID_PARAMS_CODE,
                    format!("fmspc: {e}"),
                )
            })?;
            query::collateral(view, kind, &fmspc, &pck_ca).map_err(state_error)
        },
        triple,
    );
    state_method(
        &mut module,
        "state_appVersions",
        |view, (id, page): (AppId, PageRequest<u32>)| {
            query::app_versions_page(view, id, &page).map_err(state_error)
        },
        subject_and_page,
    );
    state_method(
        &mut module,
        "state_apps",
        |view, (owner, page): (Option<AccountId>, PageRequest<AppId>)| {
            query::apps_page(view, owner.as_ref(), &page).map_err(state_error)
        },
        owner_and_page,
    );
    state_method(
        &mut module,
        "state_task",
        |view, id: TaskId| query::task(view, id).map_err(state_error),
        required,
    );
    state_method(
        &mut module,
        "state_taskVersions",
        |view, (id, page): (TaskId, PageRequest<u32>)| {
            query::task_versions_page(view, id, &page).map_err(state_error)
        },
        subject_and_page,
    );
    state_method(
        &mut module,
        "state_taskRuns",
        |view, (id, page): (TaskId, PageRequest<u32>)| {
            query::task_runs_page(view, id, &page).map_err(state_error)
        },
        subject_and_page,
    );
    state_method(
        &mut module,
        "state_tasks",
        |view, (owner, page): (Option<AccountId>, PageRequest<TaskId>)| {
            query::tasks_page(view, owner.as_ref(), &page).map_err(state_error)
        },
        owner_and_page,
    );
    state_method(
        &mut module,
        "state_pendingPlacements",
        |view, page: PageRequest<u64>| query::pending_page(view, &page).map_err(state_error),
        page_of,
    );
    state_method(
        &mut module,
        "state_placementPreview",
        |view, request: query::PlacementRequest| {
            query::placement_preview(view, &request).map_err(state_error)
        },
        required,
    );
    state_method(
        &mut module,
        "state_pendingReason",
        |view, workload: Workload| query::pending_reason(view, &workload).map_err(state_error),
        required,
    );
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
            let builder =
                Server::builder()
                    .set_config(per_connection.clone())
                    .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(move |service| {
                        RateLimited::new(service, ip, Arc::clone(&per_call))
                    }))
                    .to_service_builder();
            let methods = methods.clone();
            let stop = stop.clone();
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
                drop(slot);
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
