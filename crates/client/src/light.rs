//! A light client: state read from a node that is not trusted, and verified.
//!
//! Trust starts from the chain spec the caller names ([`Trust`]): its genesis hash and its
//! validator set. A header is accepted only with a finalization certificate from a quorum of
//! those validators ([`wetee_light::Anchor::verify`]); a state value only with a proof against
//! an accepted header's state root ([`wetee_light::verify_entry`]). The client keeps the
//! highest header it accepted and refuses to go back.
//!
//! Reads are grouped in a [`Snapshot`]: every read of one snapshot is at one height, so that
//! what a caller decides from several records (an app, its secrets, its worker) is one state of
//! the chain. When the node's state moves on between two reads of a snapshot, the read fails
//! with [`LightError::Moved`] and the caller starts a new snapshot.

use std::sync::Mutex;

use wetee_light::{Anchor, EntryProof, FinalityError, ProofError};
use wetee_types::codec::{Canonical, decode};
use wetee_types::records::{App, AppVersion, Assignments, Task, TaskRun, TaskVersion, Worker};
use wetee_types::rpc::{FinalityProof, StateProof, codes};
use wetee_types::state_keys as keys;
use wetee_types::{AppId, ChainConfig, ChainSpec, Hash, Header, Params, TaskId, WorkerId};

use crate::rpc::{Client, ClientError};

/// Values read at some keys, in the keys' order (`None`: the key holds nothing).
pub type Values = Vec<Option<Vec<u8>>>;

/// Most keys asked for in one request (the node proves at most 1,024).
pub const KEYS_PER_REQUEST: usize = 256;

/// Which chain to trust, named by the caller, never learnt from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The chain spec itself.
    Spec(Box<ChainSpec>),
    /// The genesis hash of the chain spec: the spec is fetched from the node and accepted only
    /// if it hashes to this (the validator set is part of what is hashed).
    GenesisHash(Hash),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    /// The node could not be reached or could not answer: try again, or another node.
    #[error(transparent)]
    Node(#[from] ClientError),
    /// The node's answer failed verification: it lies, serves another chain, or is broken.
    /// Its answers must not be used; another node should be.
    #[error("the node at {url} is not trusted: {reason}")]
    Untrusted {
        /// The node.
        url: String,
        /// What failed.
        reason: Untrusted,
    },
    /// The state moved on between two reads of a snapshot: start a new one.
    #[error("the chain moved past height {height} during the read")]
    Moved {
        /// The snapshot's height.
        height: u64,
    },
    /// A verified value does not decode as the record its key holds.
    #[error("the chain's record at {key} does not decode: {reason}")]
    Decode {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// What a node's answer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// It serves another chain.
    #[error("it serves chain {served}, not {expected}")]
    OtherChain {
        /// The genesis hash it reports (or its spec hashes to).
        served: Hash,
        /// The genesis hash trusted.
        expected: Hash,
    },
    /// A header's finality did not verify.
    #[error("finality: {0}")]
    Finality(#[from] FinalityError),
    /// A state proof did not verify.
    #[error("state proof: {0}")]
    Proof(#[from] ProofError),
    /// It offered a final header below one already verified.
    #[error("it offered block {offered}, behind block {verified} already verified")]
    Behind {
        /// The offered height.
        offered: u64,
        /// The highest verified height.
        verified: u64,
    },
    /// It answered for another block or other keys than asked.
    #[error("{0}")]
    Mismatch(String),
}

/// A header accepted as final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedHead {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
    /// The state root after it.
    pub state_root: Hash,
    /// Its timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

impl VerifiedHead {
    fn of(header: &Header, hash: Hash) -> VerifiedHead {
        VerifiedHead {
            height: header.height,
            hash,
            state_root: header.state_root,
            timestamp_ms: header.timestamp_ms,
        }
    }
}

/// A node, followed through verification.
#[derive(Debug)]
pub struct LightClient {
    rpc: Client,
    anchor: Anchor,
    /// The highest header accepted.
    highest: Mutex<Option<VerifiedHead>>,
}

impl LightClient {
    /// Connects to the node at `url` and checks that it serves the trusted chain.
    pub async fn connect(url: &str, trust: &Trust) -> Result<LightClient, LightError> {
        let rpc = Client::connect(url).await?;
        LightClient::over(rpc, trust).await
    }

    /// Follows the node behind `rpc`, after checking that it serves the trusted chain.
    pub async fn over(rpc: Client, trust: &Trust) -> Result<LightClient, LightError> {
        let untrusted = |reason: Untrusted| LightError::Untrusted {
            url: rpc.url().to_string(),
            reason,
        };
        let spec = match trust {
            Trust::Spec(spec) => (**spec).clone(),
            Trust::GenesisHash(expected) => {
                let spec = rpc.chain_spec().await?;
                let served = spec.genesis_hash();
                if served != *expected {
                    return Err(untrusted(Untrusted::OtherChain {
                        served,
                        expected: *expected,
                    }));
                }
                spec
            }
        };
        let anchor = Anchor::new(&spec).map_err(|e| untrusted(Untrusted::Finality(e)))?;
        // Transactions are signed for the genesis hash the node reports: it must be ours.
        if rpc.genesis_hash() != anchor.genesis_hash() {
            return Err(untrusted(Untrusted::OtherChain {
                served: rpc.genesis_hash(),
                expected: anchor.genesis_hash(),
            }));
        }
        Ok(LightClient {
            rpc,
            anchor,
            highest: Mutex::new(None),
        })
    }

    /// The connection, for what needs no verification (submitting transactions, which are
    /// signed; subscriptions used only as a hint that a new block exists).
    pub fn rpc(&self) -> &Client {
        &self.rpc
    }

    /// The trusted chain's genesis hash.
    pub fn genesis_hash(&self) -> Hash {
        self.anchor.genesis_hash()
    }

    /// The highest header accepted so far.
    pub fn highest(&self) -> Option<VerifiedHead> {
        *self.highest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses to go back behind `head` (accepted by an earlier client of the same chain, say
    /// before switching nodes).
    pub fn remember(&self, head: VerifiedHead) {
        let mut highest = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        if highest.is_none_or(|h| h.height < head.height) {
            *highest = Some(head);
        }
    }

    fn untrusted(&self, reason: impl Into<Untrusted>) -> LightError {
        LightError::Untrusted {
            url: self.rpc.url().to_string(),
            reason: reason.into(),
        }
    }

    /// Checks a finality proof.
    fn final_header(&self, proof: &FinalityProof) -> Result<VerifiedHead, LightError> {
        let finalization = self
            .anchor
            .decode_finalization(&proof.finalization.0)
            .map_err(|e| self.untrusted(e))?;
        let hash = self
            .anchor
            .verify(&proof.header, &proof.descendants, &finalization)
            .map_err(|e| self.untrusted(e))?;
        Ok(VerifiedHead::of(&proof.header, hash))
    }

    /// Checks a finality proof and that it does not go back; records it as the highest.
    fn accept(&self, proof: &FinalityProof) -> Result<VerifiedHead, LightError> {
        let head = self.final_header(proof)?;
        let mut highest = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        match *highest {
            Some(h) if h.height > head.height => {
                return Err(self.untrusted(Untrusted::Behind {
                    offered: head.height,
                    verified: h.height,
                }));
            }
            Some(h) if h.height == head.height && h.hash != head.hash => {
                // Two final blocks at one height: only a broken quorum signs both.
                return Err(self.untrusted(Untrusted::Mismatch(format!(
                    "block {} is final as {} and as {}",
                    head.height, h.hash, head.hash
                ))));
            }
            _ => *highest = Some(head),
        }
        Ok(head)
    }

    /// The latest final header, verified.
    pub async fn finalized_head(&self) -> Result<VerifiedHead, LightError> {
        let proof = self.rpc.finality(None).await?;
        self.accept(&proof)
    }

    /// The final header at `height`, verified (any height, older ones included: it does not
    /// move the highest header).
    pub async fn verified_header(&self, height: u64) -> Result<VerifiedHead, LightError> {
        let proof = self.rpc.finality(Some(height)).await?;
        if proof.header.height != height {
            return Err(self.untrusted(Untrusted::Mismatch(format!(
                "asked for block {height}, answered block {}",
                proof.header.height
            ))));
        }
        self.final_header(&proof)
    }

    /// A new snapshot: its first read fixes its height at the node's latest state.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            light: self,
            head: None,
        }
    }

    /// Checks a state proof answering `keys` (at `at` when given); returns its head.
    fn check(
        &self,
        keys: &[Vec<u8>],
        at: Option<&VerifiedHead>,
        answer: &StateProof,
    ) -> Result<(VerifiedHead, Values), LightError> {
        let header = &answer.finality.header;
        let head = match at {
            Some(at) => {
                if header.height != at.height || header.hash() != at.hash {
                    return Err(self.untrusted(Untrusted::Mismatch(format!(
                        "asked for the state at block {}, answered at block {}",
                        at.height, header.height
                    ))));
                }
                *at
            }
            None => self.accept(&answer.finality)?,
        };
        if answer.entries.len() != keys.len() {
            return Err(self.untrusted(Untrusted::Mismatch(format!(
                "asked for {} keys, answered {}",
                keys.len(),
                answer.entries.len()
            ))));
        }
        let mut values = Vec::with_capacity(keys.len());
        for (key, entry) in keys.iter().zip(&answer.entries) {
            if entry.key.0 != *key {
                return Err(
                    self.untrusted(Untrusted::Mismatch("answered other keys than asked".into()))
                );
            }
            let proof = EntryProof::from_bytes(&entry.proof.0).map_err(|e| self.untrusted(e))?;
            let value = entry.value.as_ref().map(|v| v.0.clone());
            wetee_light::verify_entry(&head.state_root, key, value.as_deref(), &proof)
                .map_err(|e| self.untrusted(e))?;
            values.push(value);
        }
        Ok((head, values))
    }
}

/// Reads of the chain's state at one height, each verified.
#[derive(Debug)]
pub struct Snapshot<'a> {
    light: &'a LightClient,
    head: Option<VerifiedHead>,
}

impl Snapshot<'_> {
    /// The header this snapshot reads at (after its first read).
    pub fn head(&self) -> Option<VerifiedHead> {
        self.head
    }

    /// The values at `keys` (`None`: the key holds nothing), verified.
    pub async fn read(&mut self, keys: &[Vec<u8>]) -> Result<Values, LightError> {
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_REQUEST) {
            let at = self.head;
            let answer = match self
                .light
                .rpc
                .state_proof(chunk, at.map(|head| head.height))
                .await
            {
                Ok(answer) => answer,
                Err(ClientError::Rpc { code, .. }) if code == codes::STATE_MOVED => {
                    return Err(LightError::Moved {
                        height: at.map(|h| h.height).unwrap_or_default(),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let (head, chunk_values) = self.light.check(chunk, at.as_ref(), &answer)?;
            self.head = Some(head);
            values.extend(chunk_values);
        }
        Ok(values)
    }

    /// The records at `keys`, decoded.
    pub async fn get_many<T: Canonical>(
        &mut self,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<T>>, LightError> {
        let values = self.read(keys).await?;
        keys.iter()
            .zip(values)
            .map(|(key, value)| value.map(|bytes| decode_record(key, &bytes)).transpose())
            .collect()
    }

    /// The record at `key`, decoded.
    pub async fn get<T: Canonical>(&mut self, key: Vec<u8>) -> Result<Option<T>, LightError> {
        Ok(self.get_many(&[key]).await?.pop().flatten())
    }

    /// A worker.
    pub async fn worker(&mut self, id: WorkerId) -> Result<Option<Worker>, LightError> {
        self.get(keys::worker(id)).await
    }

    /// The worker registered with an identity key.
    pub async fn worker_by_identity(
        &mut self,
        identity: &[u8; 32],
    ) -> Result<Option<WorkerId>, LightError> {
        self.get(keys::identity(identity)).await
    }

    /// Every workload placed on a worker: one record, so the list is complete.
    pub async fn assignments(&mut self, worker: WorkerId) -> Result<Assignments, LightError> {
        Ok(self
            .get(keys::assignments(worker))
            .await?
            .unwrap_or_default())
    }

    /// Apps.
    pub async fn apps(&mut self, ids: &[AppId]) -> Result<Vec<Option<App>>, LightError> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| keys::app(*id)).collect();
        self.get_many(&keys).await
    }

    /// An app.
    pub async fn app(&mut self, id: AppId) -> Result<Option<App>, LightError> {
        self.get(keys::app(id)).await
    }

    /// One version of an app.
    pub async fn app_version(
        &mut self,
        id: AppId,
        version: u32,
    ) -> Result<Option<AppVersion>, LightError> {
        self.get(keys::app_version(id, version)).await
    }

    /// The X25519 key an account published for sealing to it.
    pub async fn sealing_key(
        &mut self,
        account: &wetee_types::AccountId,
    ) -> Result<Option<[u8; 32]>, LightError> {
        self.get(keys::sealing_key(account)).await
    }

    /// Why an app's worker could not run it: the record the runtime stored only with the
    /// worker's identity-key signature over it.
    pub async fn app_failure(
        &mut self,
        id: AppId,
    ) -> Result<Option<wetee_types::records::AppFailure>, LightError> {
        self.get(keys::app_failure(id)).await
    }

    /// An app's sealed secrets.
    pub async fn app_secrets(
        &mut self,
        id: AppId,
    ) -> Result<Option<wetee_types::records::AppSecrets>, LightError> {
        self.get(keys::app_secrets(id)).await
    }

    /// A task.
    pub async fn task(&mut self, id: TaskId) -> Result<Option<Task>, LightError> {
        self.get(keys::task(id)).await
    }

    /// One version of a task.
    pub async fn task_version(
        &mut self,
        id: TaskId,
        version: u32,
    ) -> Result<Option<TaskVersion>, LightError> {
        self.get(keys::task_version(id, version)).await
    }

    /// One run of a task.
    pub async fn task_run(&mut self, id: TaskId, run: u32) -> Result<Option<TaskRun>, LightError> {
        self.get(keys::task_run(id, run)).await
    }

    /// The chain's fixed configuration and its parameters.
    pub async fn params(&mut self) -> Result<(ChainConfig, Params), LightError> {
        let values = self
            .read(&[keys::CHAIN.to_vec(), keys::PARAMS.to_vec()])
            .await?;
        Ok((
            required(keys::CHAIN, &values[0])?,
            required(keys::PARAMS, &values[1])?,
        ))
    }

    /// The chain's attestation policy.
    pub async fn attestation_policy(
        &mut self,
    ) -> Result<Option<wetee_types::attestation::AttestationPolicy>, LightError> {
        self.get(keys::ATTESTATION_POLICY.to_vec()).await
    }
}

/// A record every chain holds from genesis, decoded.
fn required<T: Canonical>(key: &[u8], value: &Option<Vec<u8>>) -> Result<T, LightError> {
    let bytes = value.as_deref().ok_or_else(|| LightError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "missing".into(),
    })?;
    decode_record(key, bytes)
}

/// A verified value decoded as the record its key holds.
fn decode_record<T: Canonical>(key: &[u8], bytes: &[u8]) -> Result<T, LightError> {
    decode(bytes).map_err(|e| LightError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}
