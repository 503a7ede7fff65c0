//! Sealing an app's secrets to the TEE of the worker it runs on: what `wetee app secrets` does.
//!
//! Before anything is sealed, the worker's evidence on chain is verified here, by the same
//! verifier and under the same policy as the chain (at the latest block's time), against the
//! keys the worker registered and the block its evidence is bound to; and the app version's
//! own measurement rules are applied, with any the owner pins. All of it is read through the
//! light client, so the node answering cannot change the verdict. Only then is each value sealed to the worker's sealing
//! key, and a second time to the owner's key, so [`seal`] can later reseal it to another worker
//! without the owner typing it again. Values stay in memory and are zeroized when dropped.

use crate::light::{LightClient, LightError, VerifiedHead};
use crate::rpc::ClientError;
use wetee_attest::{Verdict, stored};
use wetee_types::attestation::{AttestationPolicy, MeasurementRule, worker_report_data};
use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::manifest::EnvName;
use wetee_types::records::{
    App, AppSecrets, CollateralRecord, MAX_ALLOWED_IMAGES, SealedSecret, Worker, merge_secrets,
    secrets_signing_payload,
};
use wetee_types::transaction::AppsCall;
use wetee_types::{AppId, Call, Hash, Keypair, TeeKind};
use zeroize::Zeroizing;

/// Why secrets could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The node failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A read failed verification, or the node could not answer it.
    #[error(transparent)]
    Light(#[from] LightError),
    /// Something on chain makes sealing impossible or unsafe; the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// A value could not be sealed or an owner copy opened.
    #[error("secret `{name}`: {error}")]
    Seal {
        /// The secret.
        name: String,
        /// Why.
        error: wetee_sealing::SealError,
    },
}

fn refused(message: impl Into<String>) -> SecretsError {
    SecretsError::Refused(message.into())
}

/// A secret's name and value, as the owner gives it.
pub struct SecretValue {
    /// The name, one the app's spec declares.
    pub name: String,
    /// The value.
    pub value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue({}, <redacted>)", self.name)
    }
}

/// What sealing acts on, read through the light client at one verified height: the app, its
/// worker, its stored secrets, the chain's attestation policy and the collateral of the
/// worker's platform.
#[derive(Debug)]
struct ChainFacts {
    head: VerifiedHead,
    app: App,
    worker: Worker,
    stored: Option<AppSecrets>,
    policy: AttestationPolicy,
    collateral: Option<Vec<u8>>,
}

/// How many times a read starts over when the chain moves on under it.
const READ_ATTEMPTS: usize = 5;

/// The oldest the node's latest final block may be, by this machine's clock, for a seal: a
/// node serving an old state would have the worker judged when its attestation still held.
pub const MAX_HEAD_AGE_MS: u64 = 5 * 60_000;

async fn read_facts(light: &LightClient, app_id: AppId) -> Result<ChainFacts, SecretsError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read_facts_once(light, app_id).await {
            Err(SecretsError::Light(LightError::Moved { .. })) if attempt < READ_ATTEMPTS => {}
            other => return other,
        }
    }
}

async fn read_facts_once(light: &LightClient, app_id: AppId) -> Result<ChainFacts, SecretsError> {
    let mut snapshot = light.snapshot();
    let app = snapshot
        .app(app_id)
        .await?
        .ok_or_else(|| refused(format!("there is no app {app_id}")))?;
    let placement = app.placement.ok_or_else(|| {
        refused(format!(
            "app {app_id} is not placed on a worker yet: secrets are sealed to the worker it runs on, once it has one"
        ))
    })?;
    let worker = snapshot
        .worker(placement.worker)
        .await?
        .ok_or_else(|| refused(format!("worker {} vanished", placement.worker)))?;
    let stored = snapshot.app_secrets(app_id).await?;
    let policy = snapshot
        .attestation_policy()
        .await?
        .ok_or_else(|| refused("the chain holds no attestation policy"))?;
    let key = stored::collateral_key(worker.evidence.kind, &worker.evidence.data)
        .map_err(|e| refused(format!("worker {}: {e}", worker.id)))?;
    let collateral = match key {
        Some(key) => {
            let record: CollateralRecord = snapshot
                .get(wetee_types::state_keys::collateral(
                    key.kind, &key.fmspc, key.pck_ca,
                ))
                .await?
                .ok_or_else(|| {
                    refused(format!(
                        "the chain has no collateral for worker {}'s platform ({key})",
                        worker.id
                    ))
                })?;
            Some(record.json.to_vec())
        }
        None => None,
    };
    let head = snapshot
        .head()
        .ok_or_else(|| refused("the chain answered no state"))?;
    // The owner's clock is the owner's own: judge the worker now, not when a node says.
    let age_ms = crate::now_ms().saturating_sub(head.timestamp_ms);
    if age_ms > MAX_HEAD_AGE_MS {
        return Err(refused(format!(
            "the node's latest final block ({}) is {} s old: it is behind or withholding the \
             chain; use another node",
            head.height,
            age_ms / 1000
        )));
    }
    Ok(ChainFacts {
        head,
        app,
        worker,
        stored,
        policy,
        collateral,
    })
}

/// Verifies the worker's attestation as the chain did, now: genuine evidence for its keys,
/// bound to a block of this chain, under the chain's current policy, not expired; and, when
/// `expected` names measurements, running one of them. Everything is read through the light
/// client: a node cannot make a worker look attested.
///
/// The simulated TEE is accepted only if the caller says so (`allow_simulated`): its keys are
/// public.
async fn verify_facts(
    light: &LightClient,
    facts: &ChainFacts,
    expected: &[MeasurementRule],
    allow_simulated: bool,
) -> Result<Verdict, SecretsError> {
    let worker = &facts.worker;
    if worker.evidence.kind == TeeKind::Simulated && !allow_simulated {
        return Err(refused(format!(
            "worker {} runs the simulated TEE, which protects nothing (its keys are public); \
             on a development chain, allow it explicitly (--allow-simulated-tee)",
            worker.id
        )));
    }
    if !worker.attestation_valid(facts.head.timestamp_ms) {
        return Err(refused(format!(
            "worker {}'s attestation expired; wait until it sends fresh evidence",
            worker.id
        )));
    }
    let evidence = &worker.evidence;
    let nonce = light.verified_header(evidence.nonce_height).await?;
    let report_data = worker_report_data(&light.genesis_hash(), &worker.keys, &nonce.hash.0);
    let mut verifier_policy = stored::worker_policy(&facts.policy, report_data);
    verifier_policy.allow_simulated &= allow_simulated;
    let verdict = stored::verify_stored(
        evidence.kind,
        &evidence.data,
        facts.collateral.as_deref(),
        facts.head.timestamp_ms / 1000,
        &verifier_policy,
    );
    if !verdict.valid {
        return Err(refused(format!(
            "worker {}'s attestation does not verify here: {}",
            worker.id,
            verdict.reason.clone().unwrap_or_default()
        )));
    }
    if !expected.is_empty()
        && !verdict
            .measurements
            .as_ref()
            .is_some_and(|m| expected.iter().any(|rule| rule.matches(m)))
    {
        return Err(refused(format!(
            "worker {} does not run a build you expect (--expect-measurement)",
            worker.id
        )));
    }
    Ok(verdict)
}

/// What the owner asks of a seal, besides the values.
#[derive(Debug, Clone, Default)]
pub struct SealOptions {
    /// The image digests that may receive the secrets (empty: those allowed so far, or else
    /// the app's current image).
    pub allowed_images: Vec<Hash>,
    /// Measurements the worker must run, on top of the chain's policy and the app's rules
    /// (empty: no more than those).
    pub expected_measurements: Vec<MeasurementRule>,
    /// Seal even to the simulated TEE (development chains only: it protects nothing).
    pub allow_simulated: bool,
}

/// The call that seals `values` (and removes `remove`) for `app`, owned by `owner`, to the
/// worker it is placed on. Secrets already on chain but sealed to another worker key (the app
/// moved) are resealed from the owner's copies in the same call, so with no values this is a
/// reseal. Everything it acts on is read and verified through `light`. Returns the call and the
/// worker sealed to.
pub async fn seal(
    light: &LightClient,
    owner: &Keypair,
    app_id: AppId,
    values: &[SecretValue],
    remove: &[String],
    options: &SealOptions,
) -> Result<(Call, Worker), SecretsError> {
    let facts = read_facts(light, app_id).await?;
    let app = &facts.app;
    if app.owner != owner.account_id() {
        return Err(refused(format!(
            "app {app_id} belongs to {}, not to this key",
            app.owner
        )));
    }
    let verdict = verify_facts(
        light,
        &facts,
        &options.expected_measurements,
        options.allow_simulated,
    )
    .await?;
    let worker = facts.worker.clone();
    if !app
        .spec
        .constraints
        .allows_measurements(verdict.measurements.as_ref())
    {
        return Err(refused(format!(
            "worker {} runs a TEE whose measurements app {app_id}'s version does not allow",
            worker.id
        )));
    }
    for value in values {
        if !app
            .spec
            .container
            .secrets
            .iter()
            .any(|n| n.as_str() == value.name)
        {
            return Err(refused(format!(
                "app {app_id} does not declare a secret named `{}` (declare it in the manifest's `secrets` first)",
                value.name
            )));
        }
    }
    let stored = facts.stored.clone();
    let revision = stored
        .as_ref()
        .map_or(0, |s| s.revision)
        .checked_add(1)
        .ok_or_else(|| refused("the secrets revision overflows"))?;
    let moved = stored
        .as_ref()
        .is_some_and(|s| s.worker != worker.id || s.sealing_key != worker.keys.sealing);
    let genesis = light.genesis_hash();
    let owner_secret = wetee_sealing::owner_secret(owner);
    let owner_public = wetee_sealing::public_key(&owner_secret);

    // Values given now, then the ones to carry over to a new worker key.
    let mut plain: Vec<(String, Zeroizing<Vec<u8>>)> = values
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    if moved && let Some(stored) = &stored {
        for kept in stored.secrets.iter() {
            let name = kept.name.as_str();
            if remove.iter().any(|r| r == name) || plain.iter().any(|(n, _)| n == name) {
                continue;
            }
            let id = wetee_sealing::SecretId {
                genesis_hash: &genesis,
                app: app_id,
                name,
                revision: kept.revision,
            };
            let aad = wetee_sealing::for_owner(&id, &owner.account_id());
            let value =
                wetee_sealing::open(&owner_secret, &aad, &kept.for_owner).map_err(|error| {
                    SecretsError::Seal {
                        name: name.to_string(),
                        error,
                    }
                })?;
            plain.push((name.to_string(), value));
        }
    }
    let mut set = Vec::with_capacity(plain.len());
    for (name, value) in &plain {
        let id = wetee_sealing::SecretId {
            genesis_hash: &genesis,
            app: app_id,
            name,
            revision,
        };
        let seal_error = |error| SecretsError::Seal {
            name: name.clone(),
            error,
        };
        let for_worker = wetee_sealing::seal(
            &worker.keys.sealing,
            &wetee_sealing::for_worker(&id, worker.id, &worker.keys.sealing),
            value,
        )
        .map_err(seal_error)?;
        let for_owner = wetee_sealing::seal(
            &owner_public,
            &wetee_sealing::for_owner(&id, &owner.account_id()),
            value,
        )
        .map_err(seal_error)?;
        set.push(SealedSecret {
            name: env_name(name)?,
            revision,
            for_worker,
            for_owner,
        });
    }
    let remove = remove
        .iter()
        .map(|name| env_name(name))
        .collect::<Result<Vec<_>, _>>()?;
    if set.is_empty() && remove.is_empty() {
        return Err(refused(format!(
            "app {app_id}'s secrets are already sealed to worker {}'s current key: nothing to reseal",
            worker.id
        )));
    }
    // The owner signs the record the chain will store, and which images may receive it: the
    // worker gives the secrets to nothing the owner did not sign.
    let allowed = match (options.allowed_images.as_slice(), &stored) {
        ([], Some(stored)) => stored.allowed_images.to_vec(),
        ([], None) => vec![Hash(app.spec.container.image.digest)],
        (chosen, _) => chosen.to_vec(),
    };
    let allowed = BoundedVec::try_new(allowed).map_err(|_| {
        refused(format!(
            "at most {MAX_ALLOWED_IMAGES} images may receive an app's secrets"
        ))
    })?;
    let payload = secrets_signing_payload(
        &genesis,
        app_id,
        worker.id,
        &worker.keys.sealing,
        revision,
        &merge_secrets(stored.as_ref(), &set, &remove),
        &allowed,
    );
    let call = Call::Apps(AppsCall::SetSecrets {
        app: app_id,
        worker: worker.id,
        sealing_key: worker.keys.sealing,
        set: BoundedVec::try_new(set).map_err(|_| refused("too many secrets"))?,
        remove: BoundedVec::try_new(remove).map_err(|_| refused("too many names to remove"))?,
        allowed_images: allowed,
        signature: owner.sign(&payload),
    });
    Ok((call, worker))
}

fn env_name(name: &str) -> Result<EnvName, SecretsError> {
    BoundedString::try_new(name).map_err(|_| refused(format!("`{name}` is too long for a name")))
}
