//! The chain specification: everything a node needs to start a chain or join one, as JSON.
//!
//! The genesis part (chain id, genesis time, validator keys, configuration, parameters, root,
//! treasury, balances) is hashed into the [genesis hash](ChainSpec::genesis_hash), which every
//! transaction signs over: two chains with different genesis parts never accept each other's
//! transactions. The network part (validator addresses) and the consensus timing are local
//! operating choices and are left out of the hash, so a validator can move to a new address
//! without forking the chain.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::attestation::AttestationPolicy;
use crate::balance::Balance;
use crate::codec::encode;
use crate::crypto::{AccountId, Hash};
use crate::params::{ChainConfig, Params};

/// Domain tag of the genesis hash.
const GENESIS_DOMAIN: &[u8] = b"wetee/genesis/v1";

/// Most validators a chain spec may list (consensus messages grow with the set).
pub const MAX_VALIDATORS: usize = 128;

/// A validator: its consensus key and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSpec {
    /// A label for logs and dashboards.
    pub name: String,
    /// Its ed25519 consensus public key, hex.
    pub public_key: String,
    /// Its peer-to-peer address.
    pub address: SocketAddr,
}

impl ValidatorSpec {
    /// The 32 bytes of the public key.
    pub fn public_key_bytes(&self) -> Result<[u8; 32], SpecError> {
        let text = self
            .public_key
            .strip_prefix("0x")
            .unwrap_or(&self.public_key);
        let bytes = hex::decode(text).map_err(|_| SpecError::BadValidatorKey {
            name: self.name.clone(),
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SpecError::BadValidatorKey {
            name: self.name.clone(),
        })?;
        if !crate::crypto::is_valid_ed25519_public_key(&key) {
            return Err(SpecError::BadValidatorKey {
                name: self.name.clone(),
            });
        }
        Ok(key)
    }
}

/// Consensus timing, a local choice of every validator (not part of the genesis hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusSpec {
    /// How long to wait for a leader's proposal before voting to skip its view.
    pub leader_timeout_ms: u64,
    /// How long to wait for a proposal to be certified before voting to skip.
    pub certification_timeout_ms: u64,
    /// How often to retry a skip vote while a view is stuck.
    pub timeout_retry_ms: u64,
    /// Most transactions in one block.
    pub max_block_transactions: u32,
}

impl ConsensusSpec {
    /// Timing for validators on one machine or one data centre.
    pub fn local() -> ConsensusSpec {
        ConsensusSpec {
            leader_timeout_ms: 800,
            certification_timeout_ms: 1_200,
            timeout_retry_ms: 2_000,
            max_block_transactions: 5_000,
        }
    }
}

/// One initial balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceSpec {
    /// The account.
    pub account: AccountId,
    /// Its free balance, in base units.
    pub amount: Balance,
}

/// A chain specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// A human name, e.g. "WeTEE dev".
    pub name: String,
    /// A short machine id, e.g. "wetee-dev"; part of the genesis hash.
    pub chain_id: String,
    /// The timestamp of the genesis block, in milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// The validator set.
    pub validators: Vec<ValidatorSpec>,
    /// Consensus timing.
    pub consensus: ConsensusSpec,
    /// Fixed configuration.
    pub chain: ChainConfig,
    /// Initial parameters.
    pub params: Params,
    /// Which TEEs the chain accepts for workers (the simulated TEE only on dev chains).
    pub attestation: AttestationPolicy,
    /// The root key (a stopgap for governance).
    pub root: AccountId,
    /// Where fees, protocol shares and slashes go.
    pub treasury: AccountId,
    /// Initial free balances.
    pub balances: Vec<BalanceSpec>,
}

/// Why a chain spec is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not valid JSON for a chain spec.
    #[error("not a chain spec: {0}")]
    Json(String),
    /// No validators, or too many.
    #[error("a chain needs 1 to {MAX_VALIDATORS} validators, this spec lists {0}")]
    ValidatorCount(usize),
    /// A validator key is not a 32-byte ed25519 public key in hex.
    #[error("validator {name:?}: public_key is not a 32-byte ed25519 public key in hex")]
    BadValidatorKey {
        /// The validator's name.
        name: String,
    },
    /// Two validators share a key or an address.
    #[error("validator {name:?}: its {what} is already used by another validator")]
    DuplicateValidator {
        /// The validator's name.
        name: String,
        /// "public_key" or "address".
        what: &'static str,
    },
    /// The same account is funded twice.
    #[error("balances: {0} is listed twice")]
    DuplicateBalance(AccountId),
    /// The balances add up to more than a balance can hold.
    #[error("balances: the total overflows")]
    IssuanceOverflow,
    /// The chain configuration or parameters are invalid.
    #[error("{0}")]
    Invalid(String),
}

impl ChainSpec {
    /// Whether this is a development chain: one that accepts the simulated TEE, so nothing on
    /// it is confidential (its tools may then take conveniences, such as a mnemonic typed on
    /// the command line, that a real chain refuses).
    pub fn is_development(&self) -> bool {
        self.attestation.allow_simulated_tee
    }

    /// Parses and validates a JSON chain spec.
    pub fn from_json(text: &str) -> Result<ChainSpec, SpecError> {
        let spec: ChainSpec =
            serde_json::from_str(text).map_err(|e| SpecError::Json(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The spec as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| unreachable!("plain data"))
    }

    /// Checks everything a node relies on.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.validators.is_empty() || self.validators.len() > MAX_VALIDATORS {
            return Err(SpecError::ValidatorCount(self.validators.len()));
        }
        let mut keys = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for validator in &self.validators {
            if !keys.insert(validator.public_key_bytes()?) {
                return Err(SpecError::DuplicateValidator {
                    name: validator.name.clone(),
                    what: "public_key",
                });
            }
            if !addresses.insert(validator.address) {
                return Err(SpecError::DuplicateValidator {
                    name: validator.name.clone(),
                    what: "address",
                });
            }
        }
        if self.chain_id.is_empty() || self.chain_id.len() > 64 {
            return Err(SpecError::Invalid(
                "chain_id must have 1 to 64 characters".into(),
            ));
        }
        if self.chain.epoch_length == 0 {
            return Err(SpecError::Invalid(
                "chain.epoch_length must be at least 1".into(),
            ));
        }
        if self.params.target_block_time_ms == 0 {
            return Err(SpecError::Invalid(
                "params.target_block_time_ms must be at least 1".into(),
            ));
        }
        let leader_needs = self
            .params
            .target_block_time_ms
            .saturating_add(crate::block::BUILD_BUDGET_MS);
        if self.consensus.leader_timeout_ms <= leader_needs {
            return Err(SpecError::Invalid(format!(
                "consensus.leader_timeout_ms ({}) must exceed params.target_block_time_ms ({}) \
                 plus the {} ms a leader may spend building its block: leaders wait a block time, \
                 then build",
                self.consensus.leader_timeout_ms,
                self.params.target_block_time_ms,
                crate::block::BUILD_BUDGET_MS
            )));
        }
        if self.consensus.certification_timeout_ms <= self.consensus.leader_timeout_ms {
            return Err(SpecError::Invalid(format!(
                "consensus.certification_timeout_ms ({}) must exceed consensus.leader_timeout_ms ({})",
                self.consensus.certification_timeout_ms, self.consensus.leader_timeout_ms
            )));
        }
        if self.consensus.timeout_retry_ms == 0 {
            return Err(SpecError::Invalid(
                "consensus.timeout_retry_ms must be at least 1".into(),
            ));
        }
        if self.consensus.max_block_transactions as usize > crate::block::MAX_BLOCK_TRANSACTIONS {
            return Err(SpecError::Invalid(format!(
                "consensus.max_block_transactions must be at most {}",
                crate::block::MAX_BLOCK_TRANSACTIONS
            )));
        }
        if self.consensus.max_block_transactions == 0 {
            return Err(SpecError::Invalid(
                "consensus.max_block_transactions must be at least 1".into(),
            ));
        }
        self.params.validate().map_err(SpecError::Invalid)?;
        self.attestation
            .validate()
            .map_err(|e| SpecError::Invalid(format!("attestation: {e}")))?;
        let mut funded = BTreeSet::new();
        let mut total = Balance::ZERO;
        for entry in &self.balances {
            if !funded.insert(entry.account) {
                return Err(SpecError::DuplicateBalance(entry.account));
            }
            total = total
                .checked_add(entry.amount)
                .ok_or(SpecError::IssuanceOverflow)?;
        }
        Ok(())
    }

    /// The genesis hash: BLAKE3 over the canonical encoding of the genesis part.
    pub fn genesis_hash(&self) -> Hash {
        let validators: Vec<[u8; 32]> = self
            .validators
            .iter()
            .map(|v| v.public_key_bytes().unwrap_or_default())
            .collect();
        let balances: Vec<u8> = self
            .balances
            .iter()
            .flat_map(|entry| {
                let mut bytes = entry.account.0.to_vec();
                bytes.extend_from_slice(&entry.amount.0.to_be_bytes());
                bytes
            })
            .collect();
        let count = |n: usize| (n as u64).to_be_bytes();
        Hash::of_parts(&[
            GENESIS_DOMAIN,
            &count(self.chain_id.len()),
            self.chain_id.as_bytes(),
            &self.genesis_time_ms.to_be_bytes(),
            &count(validators.len()),
            &validators.concat(),
            &encode(&self.chain),
            &encode(&self.params),
            &encode(&self.attestation),
            &self.root.0,
            &self.treasury.0,
            &count(self.balances.len()),
            &balances,
        ])
    }

    /// The validators' consensus public keys, in spec order.
    pub fn validator_keys(&self) -> Result<Vec<[u8; 32]>, SpecError> {
        self.validators
            .iter()
            .map(ValidatorSpec::public_key_bytes)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyScheme, Keypair};

    fn spec() -> ChainSpec {
        let key = |seed: u8| {
            let account = Keypair::from_seed(KeyScheme::Ed25519, [seed; 32]).account_id();
            hex::encode(account.0)
        };
        ChainSpec {
            name: "test".into(),
            chain_id: "wetee-test".into(),
            genesis_time_ms: 1_000,
            validators: (0..4)
                .map(|i| ValidatorSpec {
                    name: format!("v{i}"),
                    public_key: key(i + 1),
                    address: format!("127.0.0.1:{}", 30_000 + u16::from(i))
                        .parse()
                        .unwrap(),
                })
                .collect(),
            consensus: ConsensusSpec::local(),
            chain: ChainConfig { epoch_length: 10 },
            params: Params {
                target_block_time_ms: 250,
                ..Params::dev()
            },
            attestation: AttestationPolicy::dev(),
            root: Keypair::from_seed(KeyScheme::Sr25519, [7; 32]).account_id(),
            treasury: Keypair::from_seed(KeyScheme::Sr25519, [8; 32]).account_id(),
            balances: vec![BalanceSpec {
                account: Keypair::from_seed(KeyScheme::Sr25519, [9; 32]).account_id(),
                amount: Balance(5),
            }],
        }
    }

    #[test]
    fn json_round_trips_and_validates() {
        let spec = spec();
        let back = ChainSpec::from_json(&spec.to_json()).unwrap();
        assert_eq!(back, spec);
        assert_eq!(back.genesis_hash(), spec.genesis_hash());
    }

    #[test]
    fn addresses_and_timing_do_not_change_the_genesis_hash_but_balances_do() {
        let spec = spec();
        let mut moved = spec.clone();
        moved.validators[0].address = "10.0.0.1:1".parse().unwrap();
        moved.consensus.leader_timeout_ms = 9_000;
        assert_eq!(moved.genesis_hash(), spec.genesis_hash());
        let mut richer = spec.clone();
        richer.balances[0].amount = Balance(6);
        assert_ne!(richer.genesis_hash(), spec.genesis_hash());
        let mut renamed = spec.clone();
        renamed.chain_id = "wetee-other".into();
        assert_ne!(renamed.genesis_hash(), spec.genesis_hash());
    }

    #[test]
    fn broken_specs_are_refused_with_the_reason() {
        let mut no_validators = spec();
        no_validators.validators.clear();
        assert_eq!(no_validators.validate(), Err(SpecError::ValidatorCount(0)));

        let mut bad_key = spec();
        bad_key.validators[1].public_key = "zz".into();
        assert!(matches!(
            bad_key.validate(),
            Err(SpecError::BadValidatorKey { .. })
        ));

        let mut twice = spec();
        twice.validators[2].public_key = twice.validators[0].public_key.clone();
        assert!(matches!(
            twice.validate(),
            Err(SpecError::DuplicateValidator {
                what: "public_key",
                ..
            })
        ));

        let mut slow = spec();
        let block_time = slow.params.target_block_time_ms;
        slow.consensus.certification_timeout_ms = 10_000;
        slow.consensus.leader_timeout_ms = block_time + crate::block::BUILD_BUDGET_MS;
        assert!(
            matches!(slow.validate(), Err(SpecError::Invalid(reason)) if reason.contains("plus the 150 ms"))
        );
        slow.consensus.leader_timeout_ms += 1;
        assert_eq!(slow.validate(), Ok(()));

        let mut impatient = spec();
        impatient.consensus.certification_timeout_ms = impatient.consensus.leader_timeout_ms;
        assert!(matches!(impatient.validate(), Err(SpecError::Invalid(_))));

        let mut overflow = spec();
        overflow.balances.push(BalanceSpec {
            account: Keypair::from_seed(KeyScheme::Sr25519, [10; 32]).account_id(),
            amount: Balance(u128::MAX),
        });
        assert_eq!(overflow.validate(), Err(SpecError::IssuanceOverflow));

        let text = spec().to_json().replace("\"name\"", "\"nmae\"");
        assert!(matches!(
            ChainSpec::from_json(&text),
            Err(SpecError::Json(_))
        ));
    }

    #[test]
    fn a_spec_of_genuine_tees_that_pins_no_worker_build_is_refused_naming_the_field() {
        let mut spec = spec();
        spec.attestation.allow_simulated_tee = false;
        let error = spec.validate().unwrap_err().to_string();
        assert!(error.contains("allowed_worker_measurements"), "{error}");
        spec.attestation =
            AttestationPolicy::production(vec![crate::attestation::MeasurementRule::Tdx {
                mr_td: Some([3; 48]),
                rtmr0: None,
                rtmr1: None,
                rtmr2: None,
                rtmr3: None,
            }]);
        spec.validate().unwrap();
    }
}
