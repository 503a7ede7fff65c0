//! The JSON shapes of the node's RPC, shared by the node (which serves them) and the client
//! (which reads them). docs/rpc.md documents every method with examples.

use serde::{Deserialize, Serialize};

use crate::balance::Balance;
use crate::block::Header;
use crate::crypto::{AccountId, Hash};
use crate::event::{Event, Receipt};
use crate::ids::{AppId, BlockNumber, EpochNumber, TaskId, WorkerId, Workload};
use crate::manifest::{AppSpec, ManifestError, TaskSpec};
use crate::params::{ChainConfig, Params};
use crate::transaction::SignedTransaction;

/// The JSON-RPC error codes the node uses, beyond the protocol's own (-32700 parse error,
/// -32600 invalid request, -32601 unknown method, -32602 invalid params).
pub mod codes {
    /// The transaction was refused by the mempool or the runtime's checks.
    pub const TRANSACTION_REJECTED: i32 = 1001;
    /// The requested block, worker, app or task does not exist.
    pub const NOT_FOUND: i32 = 1002;
    /// The node cannot answer right now (shutting down, still starting).
    pub const UNAVAILABLE: i32 = 1003;
    /// The node's state is damaged; the operator must look at its logs.
    pub const INTERNAL: i32 = 1004;
    /// Another pending transaction of the signer holds the nonce; the error's data is a
    /// [`NonceConflict`](super::NonceConflict) naming it.
    pub const NONCE_TAKEN: i32 = 1005;
    /// A finalized transaction of the signer already used the nonce; the error's data is a
    /// [`NonceConflict`](super::NonceConflict).
    pub const NONCE_USED: i32 = 1006;
    /// A state proof was asked for at a height the node's state has moved past (proofs exist
    /// only for the latest state): read again at the latest height.
    pub const STATE_MOVED: i32 = 1007;
    /// The caller's address made more calls than the node serves one address; the error's
    /// data, when waiting helps, is `{"retry_after_ms": n}`.
    pub const RATE_LIMITED: i32 = 1008;
}

/// Bytes as `0x`-prefixed hex: the encodings a light client verifies (certificates, proofs,
/// stored keys and values) travel as the exact bytes that were signed or hashed.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hex(pub Vec<u8>);

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let digits = text.strip_prefix("0x").unwrap_or(&text);
        hex::decode(digits)
            .map(Hex)
            .map_err(|_| serde::de::Error::custom("not hex"))
    }
}

/// Proof that a header is final (`chain_getFinality`): a finalization certificate of the
/// chain's validators for the header itself or, when the node holds none for it (a block
/// finalized through a descendant), for a descendant linked back by parent hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityProof {
    /// The header proven final.
    pub header: Header,
    /// Its descendants in height order, up to the certified one; empty when the certificate is
    /// the header's own.
    #[serde(default)]
    pub descendants: Vec<Header>,
    /// The finalization certificate, in Commonware's codec.
    pub finalization: Hex,
}

/// One state key with its value, or none, and the proof of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenEntry {
    /// The runtime's key.
    pub key: Hex,
    /// The stored bytes; `null` when the key holds nothing.
    pub value: Option<Hex>,
    /// Proof of the value (or of its absence) against the header's state root.
    pub proof: Hex,
}

/// State values proven against a final header (`state_getProof`): all entries are from the
/// state after that header's block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    /// The header whose state root the entries are proven against, and why it is final.
    pub finality: FinalityProof,
    /// The keys asked for, in the order asked.
    pub entries: Vec<ProvenEntry>,
}

/// The data of a refusal for the nonce ([`codes::NONCE_TAKEN`], [`codes::NONCE_USED`]): enough
/// for a client to tell its own pending copy from another transaction, and to sign again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceConflict {
    /// The signer.
    pub signer: AccountId,
    /// The refused nonce.
    pub nonce: u64,
    /// The pending transaction that holds the nonce (with [`codes::NONCE_TAKEN`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Hash>,
    /// The signer's next free nonce, counting its pending transactions.
    pub next: u64,
}

/// A block by height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Its height.
    pub height: BlockNumber,
    /// Its hash.
    pub hash: Hash,
}

/// The node's view of itself (`system_health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The chain's name.
    pub chain: String,
    /// The genesis hash.
    pub genesis_hash: Hash,
    /// The latest finalized block this node has executed.
    pub finalized: BlockRef,
    /// Its timestamp, in milliseconds since the Unix epoch.
    pub finalized_timestamp_ms: u64,
    /// The latest finalized height the network has announced (ahead of `finalized` while this
    /// node catches up).
    pub network_finalized: BlockNumber,
    /// Validators in the chain's set.
    pub validators: usize,
    /// Whether this node is one of the validators.
    pub is_validator: bool,
    /// Transactions in its mempool.
    pub pending_transactions: usize,
}

/// Which block a query is about: a height, a hash, or (absent) the latest finalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    /// By height.
    Height(BlockNumber),
    /// By hash.
    Hash(Hash),
}

/// A header with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderInfo {
    /// The block hash.
    pub hash: Hash,
    /// The header.
    #[serde(flatten)]
    pub header: Header,
}

/// A transaction with its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionInfo {
    /// The transaction hash.
    pub hash: Hash,
    /// The signed transaction.
    #[serde(flatten)]
    pub transaction: SignedTransaction,
}

/// A finalized block with what executing it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// The header and hash.
    pub header: HeaderInfo,
    /// The transactions.
    pub transactions: Vec<TransactionInfo>,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// Events of the start of the block (scheduled task runs, deadlines).
    pub begin_events: Vec<Event>,
    /// Events of the end of the block (epoch settlement, placements).
    pub end_events: Vec<Event>,
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The start of the block.
    BeginBlock,
    /// A transaction.
    Transaction {
        /// Its position in the block.
        index: u32,
        /// Its hash.
        hash: Hash,
    },
    /// The end of the block.
    EndBlock,
}

/// An event of a finalized block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The block.
    pub block: BlockRef,
    /// Where in the block.
    pub phase: Phase,
    /// The event.
    pub event: Event,
}

/// Which events a subscriber wants; every given field must match, none given matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Events involving this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// Events about this worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerId>,
    /// Events about this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppId>,
    /// Events about this task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
}

impl EventFilter {
    /// Whether `record` passes. A transaction's events also involve its signer.
    pub fn matches(&self, record: &EventRecord, signer: Option<&AccountId>) -> bool {
        let event = &record.event;
        if let Some(account) = &self.account
            && signer != Some(account)
            && !event.accounts().contains(account)
        {
            return false;
        }
        if self.worker.is_some() && event.worker() != self.worker {
            return false;
        }
        if self.app.is_some() && event.app() != self.app {
            return false;
        }
        if self.task.is_some() && event.task() != self.task {
            return false;
        }
        true
    }
}

impl EventFilter {
    /// Whether it names nothing, and so matches every event.
    pub fn is_empty(&self) -> bool {
        self.account.is_none() && self.worker.is_none() && self.app.is_none() && self.task.is_none()
    }
}

/// Which page of `events_history` to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryPage {
    /// Only blocks below this height (the previous page's `next_before`); the newest when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<BlockNumber>,
    /// Records wanted; a page ends at a block boundary, so it may hold a few more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A page of past events (`events_history`), newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHistory {
    /// The events, newest first.
    pub records: Vec<EventRecord>,
    /// Pass as `before` for older events; `null` when the node holds no older ones.
    pub next_before: Option<BlockNumber>,
    /// The node keeps a bounded window of history: every block from this height on was
    /// searched (`null`: none yet).
    pub covered_from: Option<BlockNumber>,
}

/// One epoch of an app as its worker proved it and the chain paid for it (`apps_epochs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEpoch {
    /// The epoch.
    pub epoch: EpochNumber,
    /// The worker that proved it.
    pub worker: WorkerId,
    /// Share of the epoch the app was healthy, in basis points (10,000 = all of it).
    pub uptime_bps: u16,
    /// What it consumed, as the worker measured.
    pub usage: crate::report::Usage,
    /// What its deposit paid for the epoch, protocol fee included.
    pub paid: Balance,
    /// The treasury's share of it.
    pub protocol_fee: Balance,
    /// The block of the report that paid it.
    pub block: BlockRef,
}

/// A page of an app's proven epochs, newest first (`apps_epochs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEpochs {
    /// The epochs, newest first.
    pub epochs: Vec<AppEpoch>,
    /// Pass as `before` for older ones; `null` when the node holds no older ones.
    pub next_before: Option<BlockNumber>,
    /// Every block from this height on was searched (as in [`EventHistory`]).
    pub covered_from: Option<BlockNumber>,
}

/// The progress of a submitted transaction (`author_submitAndWatch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TransactionStatus {
    /// Admitted to the mempool.
    Ready {
        /// The transaction hash.
        hash: Hash,
    },
    /// In a block that this node has executed but that is not final yet.
    Included {
        /// The block.
        block: BlockRef,
    },
    /// In a finalized block: the receipt says whether the call succeeded, with its events
    /// or its error.
    Finalized {
        /// The block.
        block: BlockRef,
        /// What the transaction did.
        receipt: Receipt,
        /// Why the call failed, in words (the receipt's error as the CLI shows it), for
        /// programs that show it without this crate; absent when it succeeded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<String>,
    },
    /// Removed from the mempool without being included (expired, or its nonce was used by
    /// another transaction).
    Dropped {
        /// Why.
        reason: String,
    },
}

impl TransactionStatus {
    /// Whether no further status will follow.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TransactionStatus::Finalized { .. } | TransactionStatus::Dropped { .. }
        )
    }
}

/// The chain's configuration and current parameters (`state_getParams`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamsInfo {
    /// Fixed at genesis.
    pub chain: ChainConfig,
    /// Settable by the root origin.
    pub params: Params,
    /// The root key.
    pub root: AccountId,
    /// The treasury.
    pub treasury: AccountId,
}

/// A transaction as a request carries it (`author_submitTransaction`, `author_submitAndWatch`,
/// `payment_queryFee`): the `0x` hex of its canonical encoding, or its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TransactionParam {
    /// The hex of its canonical encoding: what the SDK and the console send.
    Encoded(String),
    /// Its JSON.
    Json(Box<SignedTransaction>),
}

impl TransactionParam {
    /// `tx` as the SDK sends it.
    pub fn encoded(tx: &SignedTransaction) -> TransactionParam {
        TransactionParam::Encoded(format!("0x{}", hex::encode(crate::codec::encode(tx))))
    }

    /// The transaction, or why the parameter is not one.
    pub fn into_transaction(self) -> Result<SignedTransaction, String> {
        match self {
            TransactionParam::Json(tx) => Ok(*tx),
            TransactionParam::Encoded(text) => {
                let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(&text))
                    .map_err(|e| format!("transaction is not hex: {e}"))?;
                crate::codec::decode::<SignedTransaction>(&bytes)
                    .map_err(|e| format!("transaction does not decode: {e}"))
            }
        }
    }
}

/// Entries a `state_*` list method answers when the request names no limit.
pub const DEFAULT_PAGE: u32 = 100;
/// Most entries a `state_*` list method answers at once: a larger limit is cut to it.
pub const MAX_PAGE: u32 = 500;

/// Which page of a list to answer: the last parameter of the `state_*` list methods, which
/// answer a [`Page`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageRequest<C> {
    /// Only entries after this one (the previous page's `next`); from the first when absent.
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub after: Option<C>,
    /// Entries wanted: [`DEFAULT_PAGE`] when absent, at most [`MAX_PAGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl<C> Default for PageRequest<C> {
    fn default() -> Self {
        PageRequest {
            after: None,
            limit: None,
        }
    }
}

impl<C> PageRequest<C> {
    /// The first page.
    pub fn first() -> Self {
        PageRequest::default()
    }

    /// The page after `cursor`.
    pub fn after(cursor: C) -> Self {
        PageRequest {
            after: Some(cursor),
            limit: None,
        }
    }

    /// The entries wanted, within [1, [`MAX_PAGE`]].
    pub fn size(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize
    }
}

/// One page of a list, in the list's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T, C> {
    /// The entries.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `null` when the list ends here.
    pub next: Option<C>,
}

/// A workload waiting for placement, and why no worker takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPlacement {
    /// Its place in the queue: lower tickets are placed first.
    pub ticket: u64,
    /// The workload.
    pub workload: Workload,
    /// Why it is not placed, in words.
    pub reason: String,
}

/// A workload to try placing without deploying it (`state_placementPreview`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlacementRequest {
    /// An app's specification, as `apps.create` would take it.
    App(AppSpec),
    /// A task's specification, as `tasks.create` would take it.
    Task(TaskSpec),
}

/// What deploying a workload now would do: the runtime's own checks and placement rules,
/// applied to the latest finalized state without changing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementPreview {
    /// Why the chain would refuse the specification, each naming its manifest field; empty
    /// when it would accept it.
    pub problems: Vec<ManifestError>,
    /// The worker it would be placed on now, if any.
    pub worker: Option<WorkerId>,
    /// What that worker charges per epoch for it.
    pub price_per_epoch: Option<Balance>,
    /// Why it would wait instead, in the runtime's words (what `state_pendingReason` would
    /// say once it waits).
    pub waiting_reason: Option<String>,
    /// The smallest deposit the chain accepts for it.
    pub min_deposit: Option<Balance>,
}

/// Every event of a block in order, with where it happened and, for a transaction's events,
/// its signer (what [`EventFilter::matches`] needs).
pub fn event_records(
    at: BlockRef,
    begin_events: &[Event],
    receipts: &[Receipt],
    end_events: &[Event],
) -> Vec<(EventRecord, Option<AccountId>)> {
    let record = |phase, event: &Event| EventRecord {
        block: at,
        phase,
        event: event.clone(),
    };
    let mut records: Vec<_> = begin_events
        .iter()
        .map(|event| (record(Phase::BeginBlock, event), None))
        .collect();
    for (index, receipt) in receipts.iter().enumerate() {
        let phase = Phase::Transaction {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            hash: receipt.tx_hash,
        };
        records.extend(
            receipt
                .events
                .iter()
                .map(|event| (record(phase, event), Some(receipt.signer))),
        );
    }
    records.extend(
        end_events
            .iter()
            .map(|event| (record(Phase::EndBlock, event), None)),
    );
    records
}
