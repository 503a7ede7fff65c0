//! Sealing an app's secrets to the TEE of the worker it runs on: what `wetee app secrets` does.
//!
//! Before anything is sealed, the worker's evidence on chain is verified here, by the same
//! verifier and under the same policy as the chain (at the latest block's time), against the
//! keys the worker registered and the block its evidence is bound to; and the app version's
//! own measurement rules are applied, with any the owner pins. All of it is read through the
//! light client, so the node answering cannot change the verdict. Only then is each value sealed to the worker's sealing
//! key, and a second time to the owner's key, so [`seal`] can later reseal it to another worker
//! without the owner typing it again. Values stay in memory and are zeroized when dropped.

use crate::light::{LightClient, LightError};
use crate::rpc::ClientError;
use crate::worker_trust::{FactsError, WorkerFacts};
use wetee_attest::Verdict;
use wetee_types::attestation::MeasurementRule;
use wetee_types::codec::{BoundedString, BoundedVec};
use wetee_types::manifest::EnvName;
use wetee_types::records::{
    App, AppSecrets, MAX_ALLOWED_IMAGES, SealedSecret, Worker, merge_secrets,
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
/// stored secrets, and its worker with what the worker's verdict is judged on.
#[derive(Debug)]
struct ChainFacts {
    app: App,
    stored: Option<AppSecrets>,
    worker: WorkerFacts,
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
    let stored = snapshot.app_secrets(app_id).await?;
    let worker = WorkerFacts::read(&mut snapshot, placement.worker)
        .await
        .map_err(|e| match e {
            FactsError::Light(e) => SecretsError::Light(e),
            FactsError::Missing(why) => refused(why),
        })?
        .ok_or_else(|| refused(format!("worker {} vanished", placement.worker)))?;
    if let Some(stale) = worker.stale() {
        return Err(refused(stale));
    }
    Ok(ChainFacts {
        app,
        stored,
        worker,
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
    let worker = &facts.worker.worker;
    if worker.evidence.kind == TeeKind::Simulated && !allow_simulated {
        return Err(refused(format!(
            "worker {} runs the simulated TEE, which protects nothing (its keys are public); \
             on a development chain, allow it explicitly (--allow-simulated-tee)",
            worker.id
        )));
    }
    if !worker.attestation_valid(facts.worker.head.timestamp_ms) {
        return Err(refused(format!(
            "worker {}'s attestation expired; wait until it sends fresh evidence",
            worker.id
        )));
    }
    let verdict = facts.worker.verify(light, allow_simulated).await?;
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

/// Where an app's secrets are to be sealed, judged through the light client: its worker, whose
/// evidence verified here, and what the chain already stores. The CLI seals with it at once;
/// the console hands it to the browser, which seals there and signs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SealTarget {
    /// The app.
    pub app: AppId,
    /// Its owner, who signs the record.
    pub owner: wetee_types::AccountId,
    /// The worker it is placed on.
    pub worker: wetee_types::WorkerId,
    /// The worker's attested sealing key, which values are sealed to.
    #[serde(with = "hex_key")]
    pub sealing_key: [u8; 32],
    /// The revision the new record will have.
    pub revision: u32,
    /// The secret names the app's version declares.
    pub declared: Vec<String>,
    /// What the chain stores now.
    pub stored: Option<AppSecrets>,
    /// Whether the stored secrets are sealed to another worker key (the app moved): each must
    /// be resealed from the owner's copy.
    pub moved: bool,
    /// The images that may receive the secrets unless the owner chooses: those allowed so
    /// far, else the app's current image.
    pub allowed_images: Vec<Hash>,
    /// The verdict on the worker's evidence.
    pub verdict: Verdict,
}

mod hex_key {
    pub fn serialize<S: serde::Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(key))
    }
}

/// Finds and judges where `owner`'s app `app_id` seals its secrets: its worker's evidence is
/// verified as the chain verifies it, with the app version's measurement rules and `options`'
/// own.
pub async fn prepare(
    light: &LightClient,
    owner: &wetee_types::AccountId,
    app_id: AppId,
    options: &SealOptions,
) -> Result<(SealTarget, Worker), SecretsError> {
    let facts = read_facts(light, app_id).await?;
    let app = &facts.app;
    if app.owner != *owner {
        return Err(refused(format!(
            "app {app_id} belongs to {}, not to {owner}",
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
    let worker = facts.worker.worker.clone();
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
    let stored = facts.stored.clone();
    let revision = stored
        .as_ref()
        .map_or(0, |s| s.revision)
        .checked_add(1)
        .ok_or_else(|| refused("the secrets revision overflows"))?;
    let moved = stored
        .as_ref()
        .is_some_and(|s| s.worker != worker.id || s.sealing_key != worker.keys.sealing);
    let allowed_images = match (options.allowed_images.as_slice(), &stored) {
        ([], Some(stored)) => stored.allowed_images.to_vec(),
        ([], None) => vec![Hash(app.spec.container.image.digest)],
        (chosen, _) => chosen.to_vec(),
    };
    if allowed_images.len() > MAX_ALLOWED_IMAGES {
        return Err(refused(format!(
            "at most {MAX_ALLOWED_IMAGES} images may receive an app's secrets"
        )));
    }
    let target = SealTarget {
        app: app_id,
        owner: *owner,
        worker: worker.id,
        sealing_key: worker.keys.sealing,
        revision,
        declared: app
            .spec
            .container
            .secrets
            .iter()
            .map(|n| n.as_str().to_string())
            .collect(),
        stored,
        moved,
        allowed_images,
        verdict,
    };
    Ok((target, worker))
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
    let (target, worker) = prepare(light, &owner.account_id(), app_id, options).await?;
    for value in values {
        if !target.declared.contains(&value.name) {
            return Err(refused(format!(
                "app {app_id} does not declare a secret named `{}` (declare it in the manifest's `secrets` first)",
                value.name
            )));
        }
    }
    let SealTarget {
        revision,
        moved,
        stored,
        allowed_images,
        ..
    } = target;
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
    let allowed = BoundedVec::try_new(allowed_images).map_err(|_| {
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

/// The secrets record an update of `app` to `image` needs its owner to sign, read through
/// the light client: the stored record as the next revision, with `image` the only one allowed
/// to receive the secrets. `None` when the app has no secrets or `image` may already receive
/// them. The update carries the signature as its `secrets_grant`.
pub async fn grant_record(
    light: &LightClient,
    app: AppId,
    image: &[u8; 32],
) -> Result<Option<AppSecrets>, SecretsError> {
    let Some(mut record) = light.snapshot().app_secrets(app).await? else {
        return Ok(None);
    };
    if record.allows_image(image) {
        return Ok(None);
    }
    // The chain stores a grant as the next revision of the record.
    record.revision = record
        .revision
        .checked_add(1)
        .ok_or_else(|| refused("the secrets revision overflows"))?;
    record.allowed_images =
        BoundedVec::try_new(vec![Hash(*image)]).map_err(|_| refused("one image always fits"))?;
    Ok(Some(record))
}
