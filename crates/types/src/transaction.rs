//! Transactions: who calls what, with which nonce, fee and expiry, signed for one chain.

use crate::attestation::AttestationPolicy;
use crate::balance::Balance;
use crate::codec::{BoundedBytes, BoundedString, BoundedVec, CodecError, decode, encode};
use crate::crypto::{AccountId, Hash, Keypair, Signature};
use crate::error::TxError;
use crate::ids::{AppId, BlockNumber, ComplaintId, TaskId, WorkerId};
use crate::manifest::{AppSpec, EnvName, MAX_SECRETS, TaskExecution, TaskSpec};
use crate::params::Params;
use crate::records::{
    AppSettings, Attestation, ImageDigest, MAX_ALLOWED_IMAGES, MAX_COLLATERAL_BYTES, SealedLog,
    SealedSecret, WorkerProfile,
};
use crate::report::SignedWorkReport;
use crate::{codec_enum, codec_struct};
use serde::{Deserialize, Serialize};

/// Largest encoded signed transaction accepted.
pub const MAX_TRANSACTION_BYTES: usize = 256 * 1024;

/// Domain tag of the bytes an account signs.
pub const TRANSACTION_DOMAIN: &[u8] = b"wetee/tx/v1";

/// Moving tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum BalancesCall {
    /// Send `amount` from the signer's free balance to `to`.
    Transfer {
        /// Recipient.
        to: AccountId,
        /// Amount.
        amount: Balance,
    },
    /// Publish the signer's sealing key: the X25519 public key workers seal what only the
    /// account may read to (an app's failure log). Replaces the previous one.
    SetSealingKey {
        /// The public key.
        #[serde(with = "crate::attestation::hex_array")]
        key: [u8; 32],
    },
}
codec_enum!(BalancesCall {
    0 => Transfer { to, amount },
    1 => SetSealingKey { key },
});

/// Worker clusters: registration, staking, lifecycle, proofs, complaints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum WorkersCall {
    /// Register a cluster operated by the signer.
    Register {
        /// Offer.
        profile: WorkerProfile,
        /// TEE-bound keys, the evidence binding them, and the identity key's proof of operator.
        attestation: Attestation,
    },
    /// Replace the offer, and optionally the keys with fresh evidence.
    Update {
        /// Worker.
        worker: WorkerId,
        /// New offer.
        profile: WorkerProfile,
        /// New keys and the evidence binding them.
        attestation: Option<Attestation>,
    },
    /// Bond more stake ("mortgage").
    Stake {
        /// Worker.
        worker: WorkerId,
        /// Amount.
        amount: Balance,
    },
    /// Start unbonding stake; withdrawable after the unbonding period.
    Unstake {
        /// Worker.
        worker: WorkerId,
        /// Amount.
        amount: Balance,
    },
    /// Accept placements.
    Start {
        /// Worker.
        worker: WorkerId,
    },
    /// Stop accepting placements and drain; stops once empty.
    Stop {
        /// Worker.
        worker: WorkerId,
    },
    /// Upload an epoch's work report.
    SubmitWorkReport {
        /// The signed report.
        report: SignedWorkReport,
    },
    /// Move earnings and unlocked stake to the operator's free balance.
    Withdraw {
        /// Worker.
        worker: WorkerId,
    },
    /// Complain about a worker, locking a bond.
    FileComplaint {
        /// Worker.
        worker: WorkerId,
        /// Hash of the evidence.
        evidence_hash: Hash,
        /// Bond (at least the `complaint_bond` parameter).
        bond: Balance,
    },
    /// Root only: take stake from a worker, optionally upholding a complaint.
    Slash {
        /// Worker.
        worker: WorkerId,
        /// Amount (capped by what is slashable).
        amount: Balance,
        /// The complaint this upholds.
        complaint: Option<ComplaintId>,
    },
    /// Root only: dismiss a complaint; its bond goes to the treasury.
    DismissComplaint {
        /// Complaint.
        complaint: ComplaintId,
    },
    /// The worker an app runs on reports that it cannot run it (it does not start, or keeps
    /// crashing): the app stops as failed, with the reason on chain, and the unused deposit
    /// goes back to its owner. The app's last log lines are sealed to the owner's sealing key
    /// (only their digest is public). Signed by the worker's attested identity key (the
    /// operator's account only pays for it), so only the TEE can fail an app.
    ReportAppFailure {
        /// Worker.
        worker: WorkerId,
        /// The app.
        app: AppId,
        /// The app's version that fails: a report about another version is refused.
        version: u32,
        /// The height of the state the worker saw it at: a report older than
        /// `FAILURE_REPORT_MAX_AGE_BLOCKS` is refused, so a withheld report cannot stop the
        /// app later.
        observed_at: BlockNumber,
        /// Why, for the owner.
        reason: BoundedString<256>,
        /// A hiding commitment to the app's last log lines (see `wetee_sealing::log_tail`).
        log_digest: Hash,
        /// The last log lines, sealed to the owner; absent when the owner has no sealing key.
        log_tail: Option<SealedLog>,
        /// Ed25519 signature by the worker's identity key over [`app_failure_payload`].
        #[serde(with = "crate::report::signature_hex")]
        signature: [u8; 64],
    },
}
codec_enum!(WorkersCall {
    0 => Register { profile, attestation },
    1 => Update { worker, profile, attestation },
    2 => Stake { worker, amount },
    3 => Unstake { worker, amount },
    4 => Start { worker },
    5 => Stop { worker },
    6 => SubmitWorkReport { report },
    7 => Withdraw { worker },
    8 => FileComplaint { worker, evidence_hash, bond },
    9 => Slash { worker, amount, complaint },
    10 => DismissComplaint { complaint },
    11 => ReportAppFailure { worker, app, version, observed_at, reason, log_digest, log_tail, signature },
});

/// Long-running apps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum AppsCall {
    /// Create an app, reserving its deposit.
    Create {
        /// Specification.
        spec: AppSpec,
        /// Prepaid deposit.
        deposit: Balance,
    },
    /// Deploy a new version.
    Update {
        /// App.
        app: AppId,
        /// New specification.
        spec: AppSpec,
        /// When the app has secrets and the new image may not receive them yet: the images
        /// allowed from now on and the owner's signature over the secrets record with them.
        secrets_grant: Option<SecretsGrant>,
    },
    /// Change env, secret names or replicas (a new version).
    SetSettings {
        /// App.
        app: AppId,
        /// What to change.
        settings: AppSettings,
    },
    /// Add to the deposit.
    Recharge {
        /// App.
        app: AppId,
        /// Amount.
        amount: Balance,
    },
    /// Ask the worker to restart the app's containers.
    Restart {
        /// App.
        app: AppId,
    },
    /// Stop the app and refund the unused deposit.
    Stop {
        /// App.
        app: AppId,
    },
    /// Seal secrets to the worker the app is placed on: replaces the named ones, keeps the
    /// others (which must be sealed to the same worker key), and removes `remove`.
    SetSecrets {
        /// App.
        app: AppId,
        /// The worker they are sealed to.
        worker: WorkerId,
        /// Its sealing key they are sealed to.
        #[serde(with = "crate::attestation::hex_array")]
        sealing_key: [u8; 32],
        /// New or changed secrets.
        set: BoundedVec<SealedSecret, MAX_SECRETS>,
        /// Names to forget.
        remove: BoundedVec<EnvName, MAX_SECRETS>,
        /// The images allowed to receive the secrets.
        allowed_images: BoundedVec<ImageDigest, MAX_ALLOWED_IMAGES>,
        /// The owner's signature over the record this call stores
        /// ([`crate::records::AppSecrets::signing_payload`]).
        signature: crate::crypto::Signature,
    },
}
/// The owner's consent to give an app's secrets to other images: the new list, signed with the
/// rest of the secrets record unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SecretsGrant {
    /// The images allowed from now on.
    pub allowed_images: BoundedVec<ImageDigest, MAX_ALLOWED_IMAGES>,
    /// The owner's signature over the secrets record with them.
    pub signature: crate::crypto::Signature,
}
codec_struct!(SecretsGrant {
    allowed_images,
    signature
});

codec_enum!(AppsCall {
    0 => Create { spec, deposit },
    1 => Update { app, spec, secrets_grant },
    2 => SetSettings { app, settings },
    3 => Recharge { app, amount },
    4 => Restart { app },
    5 => Stop { app },
    6 => SetSecrets { app, worker, sealing_key, set, remove, allowed_images, signature },
});

/// Domain tag of a worker's signed report that it cannot run an app.
pub const APP_FAILURE_DOMAIN: &[u8] = b"wetee/app-failure/v3";

/// How old (in blocks) the state a failure report was observed at may be when it is executed.
pub const FAILURE_REPORT_MAX_AGE_BLOCKS: u64 = 256;

/// Which failure a worker reports: the app, the version that fails, and when it saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureSubject {
    /// The worker.
    pub worker: WorkerId,
    /// The app.
    pub app: AppId,
    /// Its failing version.
    pub version: u32,
    /// The height of the state the worker saw it at.
    pub observed_at: BlockNumber,
}

/// What a worker's identity key signs to report that it cannot run an app.
pub fn app_failure_payload(
    genesis_hash: &Hash,
    subject: &FailureSubject,
    reason: &BoundedString<256>,
    log_digest: &Hash,
    log_tail: &Option<SealedLog>,
) -> Vec<u8> {
    let mut payload = APP_FAILURE_DOMAIN.to_vec();
    payload.extend_from_slice(&genesis_hash.0);
    payload.extend_from_slice(&encode(&subject.worker));
    payload.extend_from_slice(&encode(&subject.app));
    payload.extend_from_slice(&encode(&subject.version));
    payload.extend_from_slice(&encode(&subject.observed_at));
    payload.extend_from_slice(&encode(reason));
    payload.extend_from_slice(&log_digest.0);
    payload.extend_from_slice(&encode(log_tail));
    payload
}

/// One-off and periodic tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum TasksCall {
    /// Create a task, reserving its deposit.
    Create {
        /// Specification.
        spec: TaskSpec,
        /// Prepaid deposit.
        deposit: Balance,
    },
    /// Replace the specification (a new version; runs already assigned keep theirs).
    Update {
        /// Task.
        task: TaskId,
        /// New specification.
        spec: TaskSpec,
    },
    /// Change the schedule, timeout or run limit.
    SetExecution {
        /// Task.
        task: TaskId,
        /// New execution settings.
        execution: TaskExecution,
    },
    /// Add to the deposit.
    Recharge {
        /// Task.
        task: TaskId,
        /// Amount.
        amount: Balance,
    },
    /// Stop scheduling runs and refund what no run holds.
    Stop {
        /// Task.
        task: TaskId,
    },
}
codec_enum!(TasksCall {
    0 => Create { spec, deposit },
    1 => Update { task, spec },
    2 => SetExecution { task, execution },
    3 => Recharge { task, amount },
    4 => Stop { task },
});

/// Calls only the root key may make, until governance replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum RootCall {
    /// Replace the chain parameters.
    SetParams {
        /// New parameters.
        params: Params,
    },
    /// Hand the root origin to another key.
    SetRootKey {
        /// The new root key.
        root: AccountId,
    },
    /// Replace the attestation policy.
    SetAttestationPolicy {
        /// The new policy.
        policy: AttestationPolicy,
    },
}
codec_enum!(RootCall {
    0 => SetParams { params },
    1 => SetRootKey { root },
    2 => SetAttestationPolicy { policy },
});

/// Attestation infrastructure anyone may maintain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum AttestationCall {
    /// Post Intel collateral (JSON in `QuoteCollateralV3` layout) for one platform family. It
    /// is stored only if it is signed by Intel's root, current, and not older than the stored.
    PostCollateral {
        /// The collateral.
        collateral: BoundedBytes<MAX_COLLATERAL_BYTES>,
    },
}
codec_enum!(AttestationCall {
    0 => PostCollateral { collateral },
});

/// Every call, by module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Balances.
    Balances(BalancesCall),
    /// Workers.
    Workers(WorkersCall),
    /// Apps.
    Apps(AppsCall),
    /// Tasks.
    Tasks(TasksCall),
    /// Root.
    Root(RootCall),
    /// Attestation.
    Attestation(AttestationCall),
}
codec_enum!(Call {
    0 => Balances(call),
    1 => Workers(call),
    2 => Apps(call),
    3 => Tasks(call),
    4 => Root(call),
    5 => Attestation(call),
});

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Transaction {
    /// The account that signs and pays.
    pub signer: AccountId,
    /// Must equal the signer's next nonce.
    pub nonce: u64,
    /// Fee offered (at least the minimum for the transaction's size), paid even if the call fails.
    pub fee: Balance,
    /// Last height at which it may be included.
    pub expires_at: BlockNumber,
    /// What to do.
    pub call: Call,
}
codec_struct!(Transaction {
    signer,
    nonce,
    fee,
    expires_at,
    call
});

impl Transaction {
    /// The bytes the signer signs: domain tag, genesis hash, then the transaction. The genesis
    /// hash makes a signature valid on one chain only.
    pub fn signing_payload(&self, genesis_hash: &Hash) -> Vec<u8> {
        let body = encode(self);
        let mut payload = Vec::with_capacity(TRANSACTION_DOMAIN.len() + 32 + body.len());
        payload.extend_from_slice(TRANSACTION_DOMAIN);
        payload.extend_from_slice(&genesis_hash.0);
        payload.extend_from_slice(&body);
        payload
    }

    /// Signs the transaction for the chain with `genesis_hash`.
    pub fn sign(self, key: &Keypair, genesis_hash: &Hash) -> SignedTransaction {
        let signature = key.sign(&self.signing_payload(genesis_hash));
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction with its signature: what is gossiped and put in blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The signer's signature over [`Transaction::signing_payload`].
    pub signature: Signature,
}
codec_struct!(SignedTransaction { tx, signature });

impl SignedTransaction {
    /// Decodes untrusted bytes, refusing oversized input before decoding anything.
    pub fn decode(bytes: &[u8]) -> Result<SignedTransaction, TxError> {
        if bytes.len() > MAX_TRANSACTION_BYTES {
            return Err(TxError::TooLarge {
                size: bytes.len(),
                max: MAX_TRANSACTION_BYTES,
            });
        }
        decode(bytes).map_err(|e: CodecError| TxError::Undecodable {
            reason: e.to_string(),
        })
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// The transaction's id: BLAKE3 of its canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::of(&self.encode())
    }

    /// Whether the signature is the signer's, for this chain (over the signing payload, or
    /// over it wrapped in `<Bytes>` as browser extensions sign).
    pub fn verify_signature(&self, genesis_hash: &Hash) -> bool {
        self.signature
            .verify_account(&self.tx.signing_payload(genesis_hash), &self.tx.signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyScheme;

    fn transfer(key: &Keypair) -> Transaction {
        Transaction {
            signer: key.account_id(),
            nonce: 0,
            fee: Balance(10),
            expires_at: 100,
            call: Call::Balances(BalancesCall::Transfer {
                to: AccountId([7; 32]),
                amount: Balance(5),
            }),
        }
    }

    #[test]
    fn a_signed_transaction_verifies_only_on_its_chain() {
        for scheme in [KeyScheme::Ed25519, KeyScheme::Sr25519] {
            let key = Keypair::from_seed(scheme, [1; 32]);
            let genesis = Hash::of(b"chain a");
            let signed = transfer(&key).sign(&key, &genesis);
            assert!(signed.verify_signature(&genesis));
            assert!(!signed.verify_signature(&Hash::of(b"chain b")));
            let decoded = SignedTransaction::decode(&signed.encode()).unwrap();
            assert_eq!(decoded, signed);
            assert!(decoded.verify_signature(&genesis));
        }
    }

    #[test]
    fn a_browser_extensions_bytes_wrapped_signature_is_the_signers_on_its_chain_only() {
        let key = Keypair::from_seed(KeyScheme::Sr25519, [3; 32]);
        let genesis = Hash::of(b"chain a");
        let tx = transfer(&key);
        let mut wrapped = crate::crypto::EXTENSION_PREFIX.to_vec();
        wrapped.extend_from_slice(&tx.signing_payload(&genesis));
        wrapped.extend_from_slice(crate::crypto::EXTENSION_SUFFIX);
        let signed = SignedTransaction {
            signature: key.sign(&wrapped),
            tx,
        };
        assert!(signed.verify_signature(&genesis));
        assert!(!signed.verify_signature(&Hash::of(b"chain b")));
    }

    #[test]
    fn changing_any_field_breaks_the_signature() {
        let key = Keypair::from_seed(KeyScheme::Ed25519, [2; 32]);
        let genesis = Hash::of(b"g");
        let signed = transfer(&key).sign(&key, &genesis);
        let mut tampered = signed.clone();
        tampered.tx.nonce = 1;
        assert!(!tampered.verify_signature(&genesis));
        let mut tampered = signed.clone();
        tampered.tx.fee = Balance(9);
        assert!(!tampered.verify_signature(&genesis));
        let mut tampered = signed;
        tampered.tx.call = Call::Balances(BalancesCall::Transfer {
            to: AccountId([8; 32]),
            amount: Balance(5),
        });
        assert!(!tampered.verify_signature(&genesis));
    }

    #[test]
    fn oversized_and_garbage_bytes_are_refused_with_a_reason() {
        let huge = vec![0u8; MAX_TRANSACTION_BYTES + 1];
        assert!(matches!(
            SignedTransaction::decode(&huge),
            Err(TxError::TooLarge { .. })
        ));
        assert!(matches!(
            SignedTransaction::decode(&[1, 2, 3]),
            Err(TxError::Undecodable { .. })
        ));
        let key = Keypair::from_seed(KeyScheme::Ed25519, [2; 32]);
        let mut bytes = transfer(&key).sign(&key, &Hash::ZERO).encode();
        bytes.push(0);
        assert!(matches!(
            SignedTransaction::decode(&bytes),
            Err(TxError::Undecodable { .. })
        ));
    }
}
