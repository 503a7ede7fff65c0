//! A typed client for a node's JSON-RPC (see `docs/rpc.md`), over one WebSocket connection.
//!
//! Besides one method per RPC call, [`Client::sign`] builds and signs transactions with the
//! right fee and the next nonce, and [`Client::send`] signs, submits and waits for finality.
//!
//! Nonces: [`Client::sign`] asks the node for the account's next nonce counting its pending
//! transactions (`system_accountNextIndex`), and remembers what it handed out for transactions
//! not yet submitted. When another sender of the same account (another process, another
//! client) takes the nonce first, the node refuses with a [`NonceConflict`]; [`Client::send`]
//! then signs again with the next free nonce, a bounded number of times and never past the
//! first transaction's expiry.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jsonrpsee::core::client::Subscription;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use wetee_rpc_api::WeteeApiClient as _;
use wetee_types::records::{App, AppVersion, Task, TaskRun, TaskVersion, Worker};
use wetee_types::rpc::{
    AppEpochs, BlockId, BlockInfo, BlockRef, EventFilter, EventHistory, EventRecord, FinalityProof,
    HeaderInfo, Health, Hex, HistoryPage, MAX_PAGE, NonceConflict, Page, PageRequest, ParamsInfo,
    PendingPlacement, PlacementPreview, PlacementRequest, StateProof, TransactionParam,
    TransactionStatus, codes,
};
use wetee_types::transaction::Transaction;
use wetee_types::{
    AccountId, AppId, Balance, Call, ChainSpec, FeeQuote, Hash, Keypair, Receipt,
    SignedTransaction, TaskId, WorkerId, Workload,
};

pub use jsonrpsee::core::client::Subscription as RpcSubscription;

/// How long a transaction built by [`Client::sign`] stays valid, in milliseconds: converted into
/// blocks with the chain's block time ([`lifetime_blocks`]).
pub const DEFAULT_LIFETIME_MS: u64 = 150_000;

/// Blocks in [`DEFAULT_LIFETIME_MS`] on a chain with `target_block_time_ms` blocks.
pub fn lifetime_blocks(target_block_time_ms: u64) -> u64 {
    DEFAULT_LIFETIME_MS.div_ceil(target_block_time_ms.max(1))
}

/// How many times [`Client::send`] signs a call when other transactions of the same account
/// keep taking its nonce.
pub const MAX_SEND_ATTEMPTS: usize = 16;

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached, or the connection broke.
    #[error("cannot talk to the node at {url}: {reason}")]
    Connection {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The node answered with an error.
    #[error("{message}")]
    Rpc {
        /// The JSON-RPC error code.
        code: i32,
        /// The node's message.
        message: String,
    },
    /// The node refused the transaction's nonce: another transaction of the signer holds it or
    /// used it. [`Client::send`] signs again with the next free nonce.
    #[error("{message}")]
    NonceConflict {
        /// The JSON-RPC error code (`codes::NONCE_TAKEN` or `codes::NONCE_USED`).
        code: i32,
        /// The node's message.
        message: String,
        /// Which nonce, held by which transaction, and the signer's next free one.
        conflict: NonceConflict,
    },
    /// The node's answer was not what this client understands.
    #[error("unexpected answer from the node: {0}")]
    Decode(String),
    /// The transaction was dropped from the pool.
    #[error("transaction {hash} was dropped: {reason}")]
    Dropped {
        /// The transaction.
        hash: Hash,
        /// Why.
        reason: String,
    },
    /// The transaction was finalized but its call failed (only the fee was taken).
    #[error("transaction {hash} failed in block {}: {error}", block.height)]
    Failed {
        /// The transaction.
        hash: Hash,
        /// Where it was finalized.
        block: BlockRef,
        /// The receipt.
        receipt: Box<Receipt>,
        /// The call's error.
        error: String,
    },
}

impl ClientError {
    fn from_rpc(url: &str, error: jsonrpsee::core::ClientError) -> ClientError {
        match error {
            jsonrpsee::core::ClientError::Call(object) => {
                let conflict = matches!(object.code(), codes::NONCE_TAKEN | codes::NONCE_USED)
                    .then(|| object.data())
                    .flatten()
                    .and_then(|data| serde_json::from_str::<NonceConflict>(data.get()).ok());
                match conflict {
                    Some(conflict) => ClientError::NonceConflict {
                        code: object.code(),
                        message: object.message().to_string(),
                        conflict,
                    },
                    None => ClientError::Rpc {
                        code: object.code(),
                        message: object.message().to_string(),
                    },
                }
            }
            jsonrpsee::core::ClientError::ParseError(e) => ClientError::Decode(e.to_string()),
            other => ClientError::Connection {
                url: url.to_string(),
                reason: other.to_string(),
            },
        }
    }
}

/// A transaction that reached finality, with what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    /// The transaction's hash.
    pub hash: Hash,
    /// The block it is in.
    pub block: BlockRef,
    /// Its receipt (success, events).
    pub receipt: Receipt,
}

/// A connection to a node.
#[derive(Debug)]
pub struct Client {
    url: String,
    inner: WsClient,
    genesis_hash: Hash,
    /// The next nonce this client will use per account, so that several transactions can be
    /// sent before the first is final.
    nonces: Mutex<BTreeMap<AccountId, u64>>,
}

fn websocket_url(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if url.contains("://") {
        url.to_string()
    } else {
        format!("ws://{url}")
    }
}

/// Most entries a whole-list method of [`Client`] gathers: past it, the list is read page by
/// page (the `*_page` methods).
pub const MAX_LISTED: usize = 1_000_000;

impl Client {
    /// Connects to the node at `url` (`ws://`, `http://` or `host:port`).
    pub async fn connect(url: &str) -> Result<Client, ClientError> {
        let url = websocket_url(url);
        let inner = WsClientBuilder::default()
            .max_request_size(8 << 20)
            .max_response_size(64 << 20)
            .build(&url)
            .await
            .map_err(|e| ClientError::Connection {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let health = inner
            .health()
            .await
            .map_err(|e| ClientError::from_rpc(&url, e))?;
        Ok(Client {
            url,
            inner,
            genesis_hash: health.genesis_hash,
            nonces: Mutex::new(BTreeMap::new()),
        })
    }

    /// Whether the connection is still open: a lost one is not made again.
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The chain's genesis hash (what transactions are signed for).
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// What the node answered, or why not, naming the node.
    fn answer<T>(
        &self,
        answered: Result<T, jsonrpsee::core::ClientError>,
    ) -> Result<T, ClientError> {
        answered.map_err(|e| ClientError::from_rpc(&self.url, e))
    }

    /// Every entry of a paged list, page after page (each as large as a node answers):
    /// `fetch` asks for one page of `method`.
    async fn every<T, C, F, Fut>(&self, method: &str, fetch: F) -> Result<Vec<T>, ClientError>
    where
        C: Ord + Copy,
        F: Fn(PageRequest<C>) -> Fut,
        Fut: Future<Output = Result<Page<T, C>, jsonrpsee::core::ClientError>>,
    {
        let mut items = Vec::new();
        let mut page = PageRequest {
            after: None,
            limit: Some(MAX_PAGE),
        };
        loop {
            let answer = self.answer(fetch(page).await)?;
            let empty = answer.items.is_empty();
            items.extend(answer.items);
            match answer.next {
                // A node whose pages do not move on, or go on empty or for ever, would hold
                // the caller (and its memory) for ever.
                Some(next) if empty || page.after.is_some_and(|after| next <= after) => {
                    return Err(ClientError::Decode(format!(
                        "{method}: the node's next page does not come after the last one"
                    )));
                }
                Some(_) if items.len() > MAX_LISTED => {
                    return Err(ClientError::Decode(format!(
                        "{method}: the node lists more than {MAX_LISTED} entries; read it page by page"
                    )));
                }
                Some(next) => page.after = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// `system_health`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.answer(self.inner.health().await)
    }

    /// `rpc_methods`: every method the node serves.
    pub async fn methods(&self) -> Result<Vec<String>, ClientError> {
        self.answer(self.inner.methods().await)
    }

    /// `system_accountNextIndex`: the nonce `account`'s next transaction should use, past its
    /// transactions pending in the node's pool.
    pub async fn next_nonce(&self, account: &AccountId) -> Result<u64, ClientError> {
        self.answer(self.inner.account_next_index(*account).await)
    }

    /// `system_chainSpec`.
    pub async fn chain_spec(&self) -> Result<ChainSpec, ClientError> {
        self.answer(self.inner.chain_spec().await)
    }

    /// `chain_getHeader`: a finalized header (the latest when `block` is `None`).
    pub async fn header(&self, block: Option<BlockId>) -> Result<HeaderInfo, ClientError> {
        self.answer(self.inner.header(block).await)
    }

    /// `chain_getBlock`: a finalized block with its receipts and events.
    pub async fn block(&self, block: Option<BlockId>) -> Result<BlockInfo, ClientError> {
        self.answer(self.inner.block(block).await)
    }

    /// `chain_getFinality`: why a finalized header (the latest when `height` is `None`) is
    /// final. Unverified: [`crate::light::LightClient`] checks it.
    pub async fn finality(&self, height: Option<u64>) -> Result<FinalityProof, ClientError> {
        self.answer(self.inner.finality(height).await)
    }

    /// `state_getProof`: `keys` with their values and proofs, from the latest state, or from the
    /// state at `at` if that is still the latest. Unverified: [`crate::light::LightClient`]
    /// checks it.
    pub async fn state_proof(
        &self,
        keys: &[Vec<u8>],
        at: Option<u64>,
    ) -> Result<StateProof, ClientError> {
        let keys: Vec<Hex> = keys.iter().cloned().map(Hex).collect();
        self.answer(self.inner.state_proof(keys, at).await)
    }

    /// `chain_subscribeFinalizedHeads`.
    pub async fn finalized_heads(&self) -> Result<Subscription<HeaderInfo>, ClientError> {
        self.answer(self.inner.finalized_heads().await)
    }

    /// `events_subscribe`: events of finalized blocks matching `filter`.
    pub async fn events(
        &self,
        filter: &EventFilter,
    ) -> Result<Subscription<EventRecord>, ClientError> {
        self.answer(self.inner.events(Some(filter.clone())).await)
    }

    /// `state_account`.
    pub async fn account(
        &self,
        account: &AccountId,
    ) -> Result<wetee_types::records::Account, ClientError> {
        self.answer(self.inner.account(*account).await)
    }

    /// `state_params`.
    pub async fn params(&self) -> Result<ParamsInfo, ClientError> {
        self.answer(self.inner.params().await)
    }

    /// `state_worker`.
    pub async fn worker(&self, id: WorkerId) -> Result<Option<Worker>, ClientError> {
        self.answer(self.inner.worker(id).await)
    }

    /// `state_workers`: one page of the workers, by id.
    pub async fn workers_page(
        &self,
        page: PageRequest<WorkerId>,
    ) -> Result<Page<Worker, WorkerId>, ClientError> {
        self.answer(self.inner.workers(Some(page)).await)
    }

    /// Every worker, by id (`state_workers`, page after page).
    pub async fn workers(&self) -> Result<Vec<Worker>, ClientError> {
        self.every("state_workers", |page| self.inner.workers(Some(page)))
            .await
    }

    /// Everything placed on a worker (`state_workloads`, page after page).
    pub async fn workloads(&self, worker: WorkerId) -> Result<Vec<Workload>, ClientError> {
        self.every("state_workloads", |page| {
            self.inner.workloads(worker, Some(page))
        })
        .await
    }

    /// `state_app`.
    pub async fn app(&self, id: AppId) -> Result<Option<App>, ClientError> {
        self.answer(self.inner.app(id).await)
    }

    /// `state_appSecrets`: the app's sealed secrets, if the owner set any.
    pub async fn app_secrets(
        &self,
        id: AppId,
    ) -> Result<Option<wetee_types::records::AppSecrets>, ClientError> {
        self.answer(self.inner.app_secrets(id).await)
    }

    /// `state_attestationPolicy`: which TEEs the chain accepts for workers.
    pub async fn attestation_policy(
        &self,
    ) -> Result<wetee_types::attestation::AttestationPolicy, ClientError> {
        self.answer(self.inner.attestation_policy().await)
    }

    /// `state_collateral`: the Intel collateral stored for a platform family and PCK CA
    /// (`processor` or `platform`).
    pub async fn collateral(
        &self,
        kind: wetee_types::TeeKind,
        fmspc: &[u8; 6],
        pck_ca: &str,
    ) -> Result<Option<wetee_types::records::CollateralRecord>, ClientError> {
        self.answer(
            self.inner
                .collateral(kind, hex::encode(fmspc), pck_ca.to_string())
                .await,
        )
    }

    /// `state_sealingKey`: the X25519 key the account published for sealing to it, if any.
    /// The node's word: a program that must not trust the node reads it through the light
    /// client.
    pub async fn sealing_key(&self, account: &AccountId) -> Result<Option<[u8; 32]>, ClientError> {
        let key = self.answer(self.inner.sealing_key(*account).await)?;
        key.map(|hex_key| {
            let mut key = [0u8; 32];
            hex::decode_to_slice(&hex_key, &mut key).map_err(|_| {
                ClientError::Decode(format!(
                    "state_sealingKey: `{hex_key}` is not a 32-byte hex key"
                ))
            })?;
            Ok(key)
        })
        .transpose()
    }

    /// `state_appFailure`: why the app's worker could not run it, if it reported so.
    pub async fn app_failure(
        &self,
        id: AppId,
    ) -> Result<Option<wetee_types::records::AppFailure>, ClientError> {
        self.answer(self.inner.app_failure(id).await)
    }

    /// Every version of an app, oldest first (`state_appVersions`, page after page).
    pub async fn app_versions(&self, id: AppId) -> Result<Vec<AppVersion>, ClientError> {
        self.every("state_appVersions", |page| {
            self.inner.app_versions(id, Some(page))
        })
        .await
    }

    /// `state_apps`: one page of the apps, or of `owner`'s, by id.
    pub async fn apps_page(
        &self,
        owner: Option<&AccountId>,
        page: PageRequest<AppId>,
    ) -> Result<Page<App, AppId>, ClientError> {
        self.answer(self.inner.apps(owner.copied(), Some(page)).await)
    }

    /// Every app, or every one of `owner`'s, by id (`state_apps`, page after page).
    pub async fn apps(&self, owner: Option<&AccountId>) -> Result<Vec<App>, ClientError> {
        self.every("state_apps", |page| {
            self.inner.apps(owner.copied(), Some(page))
        })
        .await
    }

    /// `state_task`.
    pub async fn task(&self, id: TaskId) -> Result<Option<Task>, ClientError> {
        self.answer(self.inner.task(id).await)
    }

    /// Every version of a task, oldest first (`state_taskVersions`, page after page).
    pub async fn task_versions(&self, id: TaskId) -> Result<Vec<TaskVersion>, ClientError> {
        self.every("state_taskVersions", |page| {
            self.inner.task_versions(id, Some(page))
        })
        .await
    }

    /// `state_taskRuns`: one page of a task's runs, first first.
    pub async fn task_runs_page(
        &self,
        id: TaskId,
        page: PageRequest<u32>,
    ) -> Result<Page<TaskRun, u32>, ClientError> {
        self.answer(self.inner.task_runs(id, Some(page)).await)
    }

    /// Every run of a task, first first (`state_taskRuns`, page after page).
    pub async fn task_runs(&self, id: TaskId) -> Result<Vec<TaskRun>, ClientError> {
        self.every("state_taskRuns", |page| {
            self.inner.task_runs(id, Some(page))
        })
        .await
    }

    /// Every task, or every one of `owner`'s, by id (`state_tasks`, page after page).
    pub async fn tasks(&self, owner: Option<&AccountId>) -> Result<Vec<Task>, ClientError> {
        self.every("state_tasks", |page| {
            self.inner.tasks(owner.copied(), Some(page))
        })
        .await
    }

    /// `state_pendingPlacements`: one page of the workloads waiting for a worker, front
    /// first, and why each waits.
    pub async fn pending_placements_page(
        &self,
        page: PageRequest<u64>,
    ) -> Result<Page<PendingPlacement, u64>, ClientError> {
        self.answer(self.inner.pending_placements(Some(page)).await)
    }

    /// Every workload waiting for a worker, front first, and why
    /// (`state_pendingPlacements`, page after page).
    pub async fn pending_placements(&self) -> Result<Vec<PendingPlacement>, ClientError> {
        self.every("state_pendingPlacements", |page| {
            self.inner.pending_placements(Some(page))
        })
        .await
    }

    /// `events_history`: past events matching `filter` (which must name something), newest
    /// first, one page at a time.
    pub async fn event_history(
        &self,
        filter: &EventFilter,
        page: &HistoryPage,
    ) -> Result<EventHistory, ClientError> {
        self.answer(
            self.inner
                .event_history(filter.clone(), Some(page.clone()))
                .await,
        )
    }

    /// `apps_epochs`: `app`'s proven and paid epochs, newest first, one page at a time.
    pub async fn app_epochs(
        &self,
        app: AppId,
        page: &HistoryPage,
    ) -> Result<AppEpochs, ClientError> {
        self.answer(self.inner.app_epochs(app, Some(page.clone())).await)
    }

    /// `state_placementPreview`: what creating `request` now would do, without doing it.
    pub async fn placement_preview(
        &self,
        request: &PlacementRequest,
    ) -> Result<PlacementPreview, ClientError> {
        self.answer(self.inner.placement_preview(request.clone()).await)
    }

    /// `state_pendingReason`: why `workload` waits for a worker, in words; `None` if it does
    /// not wait.
    pub async fn pending_reason(&self, workload: Workload) -> Result<Option<String>, ClientError> {
        self.answer(self.inner.pending_reason(workload).await)
    }

    /// `payment_queryFee`: the least fee `tx` needs now, part by part (base, weight, bytes).
    /// Its fee and signature do not matter: ask with any, then sign with the answer.
    pub async fn fee_quote(&self, tx: &SignedTransaction) -> Result<FeeQuote, ClientError> {
        self.answer(self.inner.query_fee(TransactionParam::encoded(tx)).await)
    }

    /// `author_submitTransaction`: admits `tx` to the pool and returns its hash.
    pub async fn submit(&self, tx: &SignedTransaction) -> Result<Hash, ClientError> {
        self.answer(
            self.inner
                .submit_transaction(TransactionParam::encoded(tx))
                .await,
        )
    }

    /// `author_submitAndWatch`: admits `tx` and follows it to finality.
    pub async fn submit_and_watch(
        &self,
        tx: &SignedTransaction,
    ) -> Result<Subscription<TransactionStatus>, ClientError> {
        self.answer(
            self.inner
                .submit_and_watch(TransactionParam::encoded(tx))
                .await,
        )
    }

    /// Builds and signs `call` from `key` with the chain's minimum fee, the next nonce (past the
    /// account's pending transactions and those this client signed and did not send yet), and
    /// an expiry [`DEFAULT_LIFETIME_MS`] of blocks after the finalized head.
    pub async fn sign(&self, key: &Keypair, call: Call) -> Result<SignedTransaction, ClientError> {
        let head = self.header(None).await?;
        let block_time = self.params().await?.params.target_block_time_ms;
        let expires_at = head
            .header
            .height
            .saturating_add(lifetime_blocks(block_time));
        self.sign_until(key, call, expires_at).await
    }

    async fn sign_until(
        &self,
        key: &Keypair,
        call: Call,
        expires_at: u64,
    ) -> Result<SignedTransaction, ClientError> {
        let signer = key.account_id();
        let next = self.next_nonce(&signer).await?;
        let mut tx = Transaction {
            signer,
            nonce: next,
            fee: Balance::ZERO,
            expires_at,
            call,
        };
        // The fee depends on the size, which does not depend on the fee's or the nonce's value,
        // and on the call's weight, which the node knows. Asked before a nonce is taken: a
        // refused quote must not leave a gap in this client's nonces.
        tx.fee = self
            .fee_quote(&tx.clone().sign(key, &self.genesis_hash))
            .await?
            .minimum_fee;
        tx.nonce = {
            let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
            let nonce = nonces.get(&signer).copied().unwrap_or(0).max(next);
            nonces.insert(signer, nonce.saturating_add(1));
            nonce
        };
        Ok(tx.sign(key, &self.genesis_hash))
    }

    /// Forgets the nonces this client counted for `account` (after a rejected transaction).
    pub fn reset_nonce(&self, account: &AccountId) {
        self.nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account);
    }

    /// Submits `tx` and waits until it is final. `progress` hears every status on the way.
    pub async fn submit_and_wait(
        &self,
        tx: &SignedTransaction,
        mut progress: impl FnMut(&TransactionStatus),
    ) -> Result<Finalized, ClientError> {
        let hash = tx.hash();
        let mut statuses = match self.submit_and_watch(tx).await {
            Ok(statuses) => statuses,
            // The nonces this client handed out stay its own; the next signature asks the node
            // for the next free one. A conflict about another signer or nonce is no conflict of
            // this transaction's: a plain refusal.
            Err(ClientError::NonceConflict {
                code,
                message,
                conflict,
            }) => {
                if conflict.signer == tx.tx.signer && conflict.nonce == tx.tx.nonce {
                    return Err(ClientError::NonceConflict {
                        code,
                        message,
                        conflict,
                    });
                }
                return Err(ClientError::Rpc { code, message });
            }
            Err(e) => {
                self.reset_nonce(&tx.tx.signer);
                return Err(e);
            }
        };
        // A node that never says how a transaction ended must not hold its sender for ever:
        // past twice the lifetime the SDK signs for, the transaction is final or gone.
        let patience = std::time::Duration::from_millis(DEFAULT_LIFETIME_MS.saturating_mul(2));
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, statuses.next()).await else {
                self.reset_nonce(&tx.tx.signer);
                return Err(ClientError::Connection {
                    url: self.url.clone(),
                    reason: format!(
                        "the node did not say how transaction {hash} ended within {} s",
                        patience.as_secs()
                    ),
                });
            };
            let Some(status) = next else {
                break;
            };
            let status = status.map_err(|e| ClientError::Decode(e.to_string()))?;
            progress(&status);
            match status {
                TransactionStatus::Finalized { block, receipt, .. } => {
                    if let wetee_types::Outcome::Failed { error } = &receipt.outcome {
                        return Err(ClientError::Failed {
                            hash,
                            block,
                            error: error.to_string(),
                            receipt: Box::new(receipt),
                        });
                    }
                    return Ok(Finalized {
                        hash,
                        block,
                        receipt,
                    });
                }
                TransactionStatus::Dropped { reason } => {
                    self.reset_nonce(&tx.tx.signer);
                    return Err(ClientError::Dropped { hash, reason });
                }
                TransactionStatus::Ready { .. } | TransactionStatus::Included { .. } => {}
            }
        }
        Err(ClientError::Connection {
            url: self.url.clone(),
            reason: format!("the node stopped reporting on transaction {hash}"),
        })
    }

    /// Signs `call` from `key`, submits it and waits until it is final. When another
    /// transaction of the same account takes the nonce first (another process sending from the
    /// same key), or the node drops the transaction because another one used its nonce, the call
    /// is signed again with the next free nonce: at most [`MAX_SEND_ATTEMPTS`] signatures, all
    /// with the first one's expiry. Only a transaction that was never executed is replaced, so
    /// the call cannot happen twice.
    pub async fn send(
        &self,
        key: &Keypair,
        call: Call,
        mut progress: impl FnMut(&TransactionStatus),
    ) -> Result<Finalized, ClientError> {
        let mut tx = self.sign(key, call.clone()).await?;
        let expires_at = tx.tx.expires_at;
        let mut signatures = 1;
        loop {
            let outcome = self.submit_and_wait(&tx, &mut progress).await;
            if signatures >= MAX_SEND_ATTEMPTS {
                return outcome;
            }
            match outcome {
                // Its own copy holds the nonce (sent before a lost connection): follow it.
                Err(ClientError::NonceConflict { conflict, .. })
                    if conflict.pending == Some(tx.hash()) =>
                {
                    signatures += 1;
                    continue;
                }
                Err(ClientError::NonceConflict { .. }) => {}
                Err(ClientError::Dropped { hash, reason }) => {
                    // Dropped for its expiry: there is no time left to sign again.
                    if self.header(None).await?.header.height >= expires_at {
                        return Err(ClientError::Dropped { hash, reason });
                    }
                }
                outcome => return outcome,
            }
            tx = self.sign_until(key, call.clone(), expires_at).await?;
            signatures += 1;
        }
    }
}
