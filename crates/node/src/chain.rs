//! Our blocks and keys as Commonware's consensus sees them. Every Commonware consensus type the
//! node names is named here, so an upgrade of Commonware touches this module first.

use std::sync::Arc;

use bytes::BufMut;
use commonware_codec::{Buf, DecodeExt as _, EncodeSize, Read, Write};
use commonware_consensus::types::{Epoch, Height, Round, View};
use commonware_consensus::{BoundedBlock, CertifiableBlock, Heightable};
use commonware_cryptography::Digestible;
use wetee_types::block::{ConsensusContext, MAX_BLOCK_BYTES};
use wetee_types::{Block, Hash};

pub use wetee_light::finality::{
    Digest, Finalization, PublicKey, Scheme, digest, hash, key_bytes, public_key,
};

/// A validator's consensus private key.
pub type PrivateKey = commonware_cryptography::ed25519::PrivateKey;
/// The consensus context a block is proposed in.
pub type Context = commonware_consensus::simplex::types::Context<Digest, PublicKey>;

/// A consensus private key from its 32-byte seed (the same seed gives the same key as
/// `wetee_types::Keypair::from_seed(Ed25519, seed)`).
pub fn private_key(seed: &[u8; 32]) -> Option<PrivateKey> {
    PrivateKey::decode(bytes::Bytes::copy_from_slice(seed)).ok()
}

/// The context recorded in a header.
pub fn recorded_context(context: &Context) -> ConsensusContext {
    ConsensusContext {
        epoch: context.round.epoch().get(),
        view: context.round.view().get(),
        leader: key_bytes(&context.leader),
        parent_view: context.parent.0.get(),
    }
}

/// A block with its digest and its consensus context decoded once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBlock {
    block: Arc<Block>,
    digest: Digest,
    context: Context,
}

impl ChainBlock {
    /// Wraps `block`; fails if its recorded leader is not a valid consensus key.
    pub fn new(block: Arc<Block>) -> Result<ChainBlock, commonware_codec::Error> {
        let header = &block.header;
        let leader = public_key(&header.context.leader).ok_or(commonware_codec::Error::Invalid(
            "Block",
            "leader is not a valid key",
        ))?;
        let context = Context {
            round: Round::new(
                Epoch::new(header.context.epoch),
                View::new(header.context.view),
            ),
            leader,
            parent: (
                View::new(header.context.parent_view),
                digest(&header.parent),
            ),
        };
        Ok(ChainBlock {
            digest: digest(&block.hash()),
            block,
            context,
        })
    }

    /// The block.
    pub fn block(&self) -> &Arc<Block> {
        &self.block
    }

    /// Its hash.
    pub fn hash(&self) -> Hash {
        hash(&self.digest)
    }
}

impl Write for ChainBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.block.write(buf);
    }
}

impl EncodeSize for ChainBlock {
    fn encode_size(&self) -> usize {
        self.block.encode_size()
    }
}

impl Read for ChainBlock {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, commonware_codec::Error> {
        let block = Block::read_cfg(buf, &())?;
        // The digest is the header's hash: a body that does not match the header's
        // transactions root must not travel under that digest.
        if !block.transactions_match() {
            return Err(commonware_codec::Error::Invalid(
                "Block",
                "transactions do not match the header",
            ));
        }
        ChainBlock::new(Arc::new(block))
    }
}

impl Digestible for ChainBlock {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        self.digest
    }
}

impl Heightable for ChainBlock {
    fn height(&self) -> Height {
        Height::new(self.block.header.height)
    }
}

impl commonware_consensus::Block for ChainBlock {
    fn parent(&self) -> Digest {
        digest(&self.block.header.parent)
    }
}

impl CertifiableBlock for ChainBlock {
    type Context = Context;

    fn context(&self) -> Context {
        self.context.clone()
    }
}

impl BoundedBlock for ChainBlock {
    fn max_encode_size(_: &()) -> usize {
        MAX_BLOCK_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode as _;
    use commonware_cryptography::Signer as _;
    use wetee_types::codec::BoundedVec;
    use wetee_types::{Header, KeyScheme, Keypair};

    #[test]
    fn consensus_keys_match_our_ed25519_keys() {
        let seed = [7u8; 32];
        let ours = Keypair::from_seed(KeyScheme::Ed25519, seed).account_id();
        let theirs = private_key(&seed).unwrap().public_key();
        assert_eq!(key_bytes(&theirs), ours.0);
        assert_eq!(public_key(&ours.0), Some(theirs));
    }

    #[test]
    fn a_body_that_does_not_match_its_header_does_not_decode() {
        let leader = key_bytes(&private_key(&[1; 32]).unwrap().public_key());
        let key = Keypair::from_seed(KeyScheme::Ed25519, [2; 32]);
        let tx = wetee_types::Transaction {
            signer: key.account_id(),
            nonce: 0,
            fee: wetee_types::Balance(1),
            expires_at: 10,
            call: wetee_types::Call::Balances(wetee_types::transaction::BalancesCall::Transfer {
                to: key.account_id(),
                amount: wetee_types::Balance(1),
            }),
        }
        .sign(&key, &Hash::default());
        // The header promises no transactions; the body carries one under the same digest.
        let block = Block {
            header: Header {
                height: 1,
                context: ConsensusContext {
                    leader,
                    ..ConsensusContext::default()
                },
                ..Header::default()
            },
            transactions: BoundedVec::try_new(vec![tx]).unwrap(),
        };
        let bytes = wetee_types::codec::encode(&block);
        assert!(ChainBlock::decode(bytes::Bytes::from(bytes)).is_err());
    }

    #[test]
    fn blocks_round_trip_with_their_context_and_digest() {
        let leader = key_bytes(&private_key(&[1; 32]).unwrap().public_key());
        let block = Block {
            header: Header {
                parent: Hash::of(b"parent"),
                height: 5,
                context: ConsensusContext {
                    epoch: 0,
                    view: 9,
                    leader,
                    parent_view: 8,
                },
                ..Header::default()
            },
            transactions: BoundedVec::default(),
        };
        let wrapped = ChainBlock::new(Arc::new(block.clone())).unwrap();
        let back = ChainBlock::decode(wrapped.encode()).unwrap();
        assert_eq!(back, wrapped);
        assert_eq!(back.hash(), block.hash());
        assert_eq!(recorded_context(&back.context()), block.header.context);
        assert_eq!(
            commonware_consensus::Block::parent(&back),
            digest(&block.header.parent)
        );

        // Bytes that are not a point on the curve are not a key.
        let invalid = (0u8..=255)
            .map(|i| [i; 32])
            .find(|bytes| !wetee_types::crypto::is_valid_ed25519_public_key(bytes))
            .unwrap();
        let mut bad = block;
        bad.header.context.leader = invalid;
        assert!(ChainBlock::new(Arc::new(bad)).is_err());
    }
}
