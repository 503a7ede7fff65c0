//! Chains whose validator keys are known, and certificates they sign: for tests and benchmarks
//! of light clients. Nothing here is used by the node or the client.

use bytes::Bytes;
use commonware_codec::DecodeExt as _;
use commonware_consensus::simplex::types::{Finalize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::ed25519::PrivateKey;
use commonware_utils::iter::NonEmpty;
use wetee_types::block::ConsensusContext;
use wetee_types::spec::{BalanceSpec, ConsensusSpec, ValidatorSpec};
use wetee_types::{Balance, ChainConfig, ChainSpec, Hash, Header, KeyScheme, Keypair, Params};

use crate::finality::{Finalization, Scheme, digest, namespace, validators};

/// The key seed of validator `i` in [`spec`].
pub fn seed(i: u8) -> [u8; 32] {
    [i + 1; 32]
}

/// A chain spec with `validators` validators whose keys come from [`seed`].
pub fn spec(chain_id: &str, validators: u8) -> ChainSpec {
    ChainSpec {
        name: "test".into(),
        chain_id: chain_id.into(),
        genesis_time_ms: 1_000,
        validators: (0..validators)
            .map(|i| ValidatorSpec {
                name: format!("v{i}"),
                public_key: hex::encode(
                    Keypair::from_seed(KeyScheme::Ed25519, seed(i))
                        .account_id()
                        .0,
                ),
                address: format!("127.0.0.1:{}", 30_000 + u16::from(i))
                    .parse()
                    .unwrap(),
            })
            .collect(),
        consensus: ConsensusSpec::local(),
        chain: ChainConfig { epoch_length: 10 },
        params: Params::dev(),
        attestation: wetee_types::attestation::AttestationPolicy::dev(),
        root: Keypair::from_seed(KeyScheme::Sr25519, [7; 32]).account_id(),
        treasury: Keypair::from_seed(KeyScheme::Sr25519, [8; 32]).account_id(),
        balances: vec![BalanceSpec {
            account: Keypair::from_seed(KeyScheme::Sr25519, [9; 32]).account_id(),
            amount: Balance(5),
        }],
    }
}

/// A header at `height` on `parent`, proposed in `view`.
pub fn header(height: u64, parent: Hash, view: u64) -> Header {
    Header {
        parent,
        height,
        timestamp_ms: 1_000 + height,
        context: ConsensusContext {
            view,
            ..ConsensusContext::default()
        },
        state_root: Hash::of(&height.to_be_bytes()),
        ..Header::default()
    }
}

/// A finalization of `header` signed by the validators at `signers` of `spec` (at least a
/// quorum: the library assembles nothing less).
pub fn finalize(spec: &ChainSpec, header: &Header, signers: &[u8]) -> Finalization {
    let set = validators(spec).unwrap();
    let proposal = Proposal::new(
        Round::new(Epoch::zero(), View::new(header.context.view)),
        View::new(header.context.view.saturating_sub(1)),
        digest(&header.hash()),
    );
    let votes: Vec<_> = signers
        .iter()
        .map(|i| {
            let key = PrivateKey::decode(Bytes::copy_from_slice(&seed(*i))).unwrap();
            let scheme = Scheme::signer(&namespace(spec), set.clone(), key).unwrap();
            Finalize::sign(&scheme, proposal.clone()).unwrap()
        })
        .collect();
    let verifier = Scheme::verifier(&namespace(spec), set);
    Finalization::from_finalizes(
        &verifier,
        NonEmpty::try_new(votes.iter()).unwrap(),
        &commonware_parallel::Sequential,
    )
    .unwrap()
}
