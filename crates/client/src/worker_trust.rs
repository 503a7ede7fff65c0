//! Whether a worker's TEE is to be trusted now: its evidence on chain verified here, by the
//! same verifier and under the same policy as the chain, against the keys the worker registered
//! and the block its evidence is bound to. Everything is read through the light client, so the
//! node answering cannot make a worker look attested. Sealing secrets acts on this verdict; the
//! console's Trust tab shows it.

use serde::Serialize;
use wetee_attest::{Verdict, stored};
use wetee_types::attestation::{AttestationPolicy, worker_report_data};
use wetee_types::records::{CollateralRecord, Worker};
use wetee_types::{TeeKind, WorkerId};

use crate::light::{LightClient, LightError, Snapshot, VerifiedHead};

/// How many times a read starts over when the chain moves on under it.
const READ_ATTEMPTS: usize = 5;

/// What a worker's verdict is judged on, read at one verified height.
#[derive(Debug, Clone)]
pub struct WorkerFacts {
    /// The height and time it was read at.
    pub head: VerifiedHead,
    /// The worker's record.
    pub worker: Worker,
    /// The chain's attestation policy.
    pub policy: AttestationPolicy,
    /// The collateral of the worker's platform, if its kind of evidence needs one.
    collateral: Option<Vec<u8>>,
}

/// Why a worker's facts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// A read failed verification, or the node could not answer it.
    #[error(transparent)]
    Light(#[from] LightError),
    /// The chain lacks something the verdict needs.
    #[error("{0}")]
    Missing(String),
}

impl WorkerFacts {
    /// Reads `worker`'s record, the policy and its platform's collateral in `snapshot`; `None`
    /// if there is no such worker.
    pub async fn read(
        snapshot: &mut Snapshot<'_>,
        worker: WorkerId,
    ) -> Result<Option<WorkerFacts>, FactsError> {
        let Some(record) = snapshot.worker(worker).await? else {
            return Ok(None);
        };
        let policy = snapshot
            .attestation_policy()
            .await?
            .ok_or_else(|| FactsError::Missing("the chain holds no attestation policy".into()))?;
        let key = stored::collateral_key(record.evidence.kind, &record.evidence.data)
            .map_err(|e| FactsError::Missing(format!("worker {worker}: {e}")))?;
        let collateral = match key {
            Some(key) => {
                let found: CollateralRecord = snapshot
                    .get(wetee_types::state_keys::collateral(
                        key.kind, &key.fmspc, key.pck_ca,
                    ))
                    .await?
                    .ok_or_else(|| {
                        FactsError::Missing(format!(
                            "the chain has no collateral for worker {worker}'s platform ({key})"
                        ))
                    })?;
                Some(found.json.to_vec())
            }
            None => None,
        };
        let head = snapshot
            .head()
            .ok_or_else(|| FactsError::Missing("the chain answered no state".into()))?;
        Ok(Some(WorkerFacts {
            head,
            worker: record,
            policy,
            collateral,
        }))
    }

    /// Why the height read is too old to judge the worker at, by this machine's clock (the
    /// owner's own, not a node's): a node that withholds blocks would have an expired worker
    /// judged as it was.
    pub fn stale(&self) -> Option<String> {
        let age_ms = crate::now_ms().saturating_sub(self.head.timestamp_ms);
        (age_ms > crate::secrets::MAX_HEAD_AGE_MS).then(|| {
            format!(
                "the node's latest final block ({}) is {} s old: it is behind or withholding the \
                 chain; use another node",
                self.head.height,
                age_ms / 1000
            )
        })
    }

    /// The verdict on the worker's evidence at the time of the height read: genuine, for its
    /// keys, bound to a block of this chain, accepted by the chain's policy. The simulated TEE
    /// is judged valid only if `allow_simulated` (and the chain's policy) allow it: its keys
    /// are public.
    pub async fn verify(
        &self,
        light: &LightClient,
        allow_simulated: bool,
    ) -> Result<Verdict, LightError> {
        let evidence = &self.worker.evidence;
        let nonce = light.verified_header(evidence.nonce_height).await?;
        let report_data =
            worker_report_data(&light.genesis_hash(), &self.worker.keys, &nonce.hash.0);
        let mut policy = stored::worker_policy(&self.policy, report_data);
        policy.allow_simulated &= allow_simulated;
        Ok(stored::verify_stored(
            evidence.kind,
            &evidence.data,
            self.collateral.as_deref(),
            self.head.timestamp_ms / 1000,
            &policy,
        ))
    }
}

/// A worker's trust as the console shows it: every fact proven through the light client at
/// `height`, and the verdict reached here on them.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerTrust {
    /// The worker.
    pub worker: WorkerId,
    /// The verified height the facts were read at.
    pub height: u64,
    /// The block time of `height`, Unix milliseconds.
    pub block_time_ms: u64,
    /// The kind of TEE its evidence is from.
    pub tee: TeeKind,
    /// Whether that is the simulated TEE, which protects nothing.
    pub simulated: bool,
    /// Whether the evidence verifies here, under the chain's policy, at `block_time_ms`.
    pub valid: bool,
    /// Why not.
    pub reason: Option<String>,
    /// The verdict's details: TCB status, advisories, debug mode, measurements.
    pub verdict: Verdict,
    /// The block the evidence is bound to.
    pub evidence_height: u64,
    /// When the chain last accepted evidence from it.
    pub fresh_at_ms: u64,
    /// Until when the chain vouches for it.
    pub expires_at_ms: u64,
    /// Its attested identity key (the owner API's TLS key), hex.
    pub identity: String,
    /// Its attested sealing key (what secrets are sealed to), hex.
    pub sealing_key: String,
    /// Its owner API's address.
    pub endpoint: String,
    /// The address owner-API requests to it are signed for (its endpoint's `host:port`), if
    /// its endpoint is one.
    pub owner_api_host: Option<String>,
    /// The policy the verdict applied.
    pub policy: AttestationPolicy,
}

impl WorkerTrust {
    /// Reads and judges `worker`: `None` if there is no such worker. A read the chain moved
    /// under starts over, a few times.
    pub async fn read(
        light: &LightClient,
        worker: WorkerId,
    ) -> Result<Option<WorkerTrust>, FactsError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match WorkerTrust::read_once(light, worker).await {
                Err(FactsError::Light(LightError::Moved { .. })) if attempt < READ_ATTEMPTS => {}
                other => return other,
            }
        }
    }

    async fn read_once(
        light: &LightClient,
        worker: WorkerId,
    ) -> Result<Option<WorkerTrust>, FactsError> {
        let mut snapshot = light.snapshot();
        let Some(facts) = WorkerFacts::read(&mut snapshot, worker).await? else {
            return Ok(None);
        };
        let verdict = facts.verify(light, true).await?;
        let record = &facts.worker;
        let stale = facts.stale();
        let attested = record.attestation_valid(facts.head.timestamp_ms);
        Ok(Some(WorkerTrust {
            worker,
            height: facts.head.height,
            block_time_ms: facts.head.timestamp_ms,
            tee: record.evidence.kind,
            simulated: record.evidence.kind == TeeKind::Simulated,
            valid: verdict.valid && attested && stale.is_none(),
            reason: if let Some(stale) = stale {
                Some(stale)
            } else if !attested {
                Some("the chain's attestation of this worker has expired".into())
            } else {
                verdict.reason.clone()
            },
            verdict,
            evidence_height: record.evidence.nonce_height,
            fresh_at_ms: record.attested.fresh_at_ms,
            expires_at_ms: record.attested.expires_at_ms,
            identity: hex::encode(record.keys.identity),
            sealing_key: hex::encode(record.keys.sealing),
            endpoint: record.profile.endpoint.as_str().to_string(),
            owner_api_host: wetee_types::owner::endpoint_authority(
                record.profile.endpoint.as_str().trim_end_matches('/'),
            )
            .map(|(_, authority)| authority),
            policy: facts.policy,
        }))
    }
}
