//! One validator, wired: block dissemination, marshal (archives, ordering, backfill from
//! peers), simplex consensus, the application, the finalizer and transaction gossip.
//!
//! The network is given from outside (authenticated TCP in production, Commonware's simulated
//! network in tests), so the same engine runs in both.

use std::num::{NonZeroU16, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use commonware_broadcast::buffered;
use commonware_consensus::marshal::{self, core::Actor as Marshal, standard::Deferred};
use commonware_consensus::simplex::{
    self,
    config::{Floor, ForwardPolicy, SkipBudget, SkipPolicy},
    elector::RoundRobin,
    types::Finalization,
};
use commonware_consensus::types::{Epoch, FixedEpocher, ViewDelta};
use commonware_cryptography::certificate::{ConstantProvider, Verifier as _};
use commonware_cryptography::{Digested, Digestible as _, Signer as _, sha256::Sha256};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_storage::archive::immutable;
use commonware_utils::ordered::Set;
use commonware_utils::{NZU16, NZU64, NZUsize};
use wetee_runtime::Genesis;
use wetee_types::spec::ChainSpec;

use crate::application::Application;
use crate::chain::{ChainBlock, Digest, PrivateKey, PublicKey, Scheme, key_bytes};
use crate::executor::{BlockError, Executor};
use crate::finalizer::Finalizer;
use crate::ledger::Ledger;
use crate::mempool::MempoolLimits;
use crate::outcomes::Outcomes;

pub use wetee_light::finality::namespace;

/// The p2p channels, one per kind of traffic.
pub mod channels {
    /// Votes.
    pub const VOTES: u64 = 0;
    /// Certificates.
    pub const CERTIFICATES: u64 = 1;
    /// Consensus' own fetching of missing certificates.
    pub const RESOLVER: u64 = 2;
    /// Blocks pushed by their proposer.
    pub const BLOCKS: u64 = 3;
    /// Finalized blocks fetched by lagging nodes.
    pub const BACKFILL: u64 = 4;
    /// Transactions.
    pub const TRANSACTIONS: u64 = 5;
}

/// Messages per second each peer may send on each channel.
///
/// A view costs each validator about three votes and two certificates per peer and the leader
/// one block; backfill must carry a catch-up of hundreds of blocks. Quotas a few times above
/// what 50 blocks/s needs leave room to catch up; at 8 messages/s on blocks and backfill (a
/// value seen in examples) finality is capped near 8 blocks/s.
pub mod quotas {
    use commonware_runtime::Quota;
    use commonware_utils::NZU32;

    /// Votes.
    pub const VOTES: Quota = Quota::per_second(NZU32!(1_024));
    /// Certificates.
    pub const CERTIFICATES: Quota = Quota::per_second(NZU32!(1_024));
    /// Consensus fetching.
    pub const RESOLVER: Quota = Quota::per_second(NZU32!(256));
    /// Blocks.
    pub const BLOCKS: Quota = Quota::per_second(NZU32!(512));
    /// Backfill.
    pub const BACKFILL: Quota = Quota::per_second(NZU32!(512));
    /// Transaction batches.
    pub const TRANSACTIONS: Quota = Quota::per_second(NZU32!(1_024));
}

/// A sender and receiver pair.
pub type Channel<S, R> = (S, R);

/// Every channel the engine uses.
#[derive(Debug)]
pub struct Channels<S, R> {
    /// [`channels::VOTES`].
    pub votes: Channel<S, R>,
    /// [`channels::CERTIFICATES`].
    pub certificates: Channel<S, R>,
    /// [`channels::RESOLVER`].
    pub resolver: Channel<S, R>,
    /// [`channels::BLOCKS`].
    pub blocks: Channel<S, R>,
    /// [`channels::BACKFILL`].
    pub backfill: Channel<S, R>,
    /// [`channels::TRANSACTIONS`].
    pub transactions: Channel<S, R>,
}

/// How one validator runs.
#[derive(Debug)]
pub struct Config<B, P> {
    /// This validator's consensus key.
    pub signer: PrivateKey,
    /// The chain.
    pub spec: Arc<ChainSpec>,
    /// Punishes peers that misbehave on the network.
    pub blocker: B,
    /// The network's view of who the peers are.
    pub peers: P,
    /// Prefix of every storage partition (several nodes may share a storage root in tests).
    pub storage_prefix: String,
    /// Mempool limits.
    pub mempool: MempoolLimits,
    /// Initial slots of the archives' hash tables (small in simulations to save memory).
    pub archive_table_size: u32,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The chain spec is unusable.
    #[error("chain spec: {0}")]
    Spec(String),
    /// This node's key is not one of the spec's validators.
    #[error("this node's key {0} is not a validator of this chain")]
    NotAValidator(String),
    /// The state could not be opened. (Not a `source`: the message carries it, once.)
    #[error("state: {0}")]
    State(BlockError),
    /// A block or certificate archive could not be opened.
    #[error("archive {0}: {1}")]
    Archive(&'static str, String),
}

impl From<BlockError> for EngineError {
    fn from(error: BlockError) -> EngineError {
        EngineError::State(error)
    }
}

/// A running validator.
pub struct Node<E: commonware_storage::Context + Spawner> {
    /// This node's key.
    pub public_key: PublicKey,
    /// Whether it is one of the validators (otherwise a full node).
    pub is_validator: bool,
    /// Its chain.
    pub ledger: Ledger<E>,
    /// Every task it runs; the node has failed if one ends.
    pub handles: Vec<Handle<()>>,
}

impl<E: commonware_storage::Context + Spawner> std::fmt::Debug for Node<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("public_key", &self.public_key)
            .field("ledger", &self.ledger)
            .finish()
    }
}

/// The runtime's genesis from a chain spec.
pub fn genesis(spec: &ChainSpec) -> Genesis {
    Genesis {
        chain: spec.chain,
        params: spec.params.clone(),
        attestation: spec.attestation.clone(),
        root: spec.root,
        treasury: spec.treasury,
        balances: spec
            .balances
            .iter()
            .map(|entry| (entry.account, entry.amount))
            .collect(),
    }
}

/// The validators of `spec` as consensus keys, in the order certificates index them.
pub fn validators(spec: &ChainSpec) -> Result<Set<PublicKey>, EngineError> {
    wetee_light::finality::validators(spec).map_err(|e| EngineError::Spec(e.to_string()))
}

const PAGE_SIZE: NonZeroU16 = NZU16!(4_096);
const PAGE_CACHE_PAGES: NonZeroUsize = NZUsize!(1_024);
const REPLAY_BUFFER: NonZeroUsize = NZUsize!(1 << 20);
const WRITE_BUFFER: NonZeroUsize = NZUsize!(128 << 10);
const MAILBOX_SIZE: NonZeroUsize = NZUsize!(1_024);

/// How hard archived blocks and outcomes are compressed (zstd's level): transactions and
/// receipts repeat accounts, fees and event shapes; certificates are signatures and are kept
/// as they are.
const ARCHIVE_COMPRESSION: Option<u8> = Some(3);

fn archive<C>(
    prefix: &str,
    name: &str,
    table: u32,
    cache: &CacheRef,
    compression: Option<u8>,
    codec: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: table,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 1 << 14,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: cache.clone(),
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: 256 << 20,
        freezer_value_compression: compression,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(65_536),
        freezer_key_write_buffer: WRITE_BUFFER,
        freezer_value_write_buffer: WRITE_BUFFER,
        ordinal_write_buffer: WRITE_BUFFER,
        replay_buffer: REPLAY_BUFFER,
        codec_config: codec,
    }
}

/// Opens the validator's storage and starts every part of it.
pub async fn start<E, B, P, S, R>(
    context: E,
    config: Config<B, P>,
    channels: Channels<S, R>,
) -> Result<Node<E>, EngineError>
where
    E: commonware_storage::Context + Spawner + Clock + Storage + Metrics + rand_core::CryptoRng,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    start_inner(context, config, channels, |_| {}).await
}

/// [`start`], with a validator that misbehaves as `fault` says.
#[cfg(test)]
pub(crate) async fn start_with_fault<E, B, P, S, R>(
    context: E,
    config: Config<B, P>,
    channels: Channels<S, R>,
    fault: Option<crate::application::Fault>,
) -> Result<Node<E>, EngineError>
where
    E: commonware_storage::Context + Spawner + Clock + Storage + Metrics + rand_core::CryptoRng,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    start_inner(context, config, channels, |app| app.fault = fault).await
}

async fn start_inner<E, B, P, S, R>(
    context: E,
    config: Config<B, P>,
    channels: Channels<S, R>,
    configure: impl FnOnce(&mut Application<E>),
) -> Result<Node<E>, EngineError>
where
    E: commonware_storage::Context + Spawner + Clock + Storage + Metrics + rand_core::CryptoRng,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let spec = &config.spec;
    spec.validate()
        .map_err(|e| EngineError::Spec(e.to_string()))?;
    let validators = validators(spec)?;
    let me = config.signer.public_key();
    let namespace = namespace(spec);
    // A key outside the validator set runs a full node: it verifies votes and certificates,
    // executes and commits every finalized block, and never proposes or votes.
    let is_validator = validators.position(&me).is_some();
    let scheme = if is_validator {
        Scheme::signer(&namespace, validators.clone(), config.signer.clone()).ok_or_else(|| {
            EngineError::NotAValidator(wetee_types::Hash(key_bytes(&me)).to_string())
        })?
    } else {
        Scheme::verifier(&namespace, validators.clone())
    };
    let prefix = config.storage_prefix.clone();
    let first_validator = validators.iter().next().map(key_bytes).unwrap_or_default();

    // The chain's state and the genesis block.
    let executor = Executor::open(
        context.child("state"),
        &format!("{prefix}-state"),
        &genesis(spec),
        spec.genesis_hash(),
        spec.genesis_time_ms,
        first_validator,
    )
    .await?;
    let page_cache = CacheRef::new(PAGE_SIZE, PAGE_CACHE_PAGES);
    let outcomes = Outcomes::open(
        context.child("outcomes"),
        archive(
            &prefix,
            "outcomes",
            config.archive_table_size,
            &page_cache,
            ARCHIVE_COMPRESSION,
            Outcomes::<E>::codec_config(),
        ),
    )
    .await
    .map_err(|e| EngineError::Archive("outcomes", e.to_string()))?;
    let ledger = Ledger::new(
        executor,
        outcomes,
        config.mempool,
        spec.consensus.max_block_transactions as usize,
    );
    let genesis = ChainBlock::new(Arc::clone(ledger.genesis()))
        .map_err(|e| EngineError::Spec(format!("genesis block: {e}")))?;
    let genesis_digest = genesis.digest();

    // Blocks pushed by their proposers before they are certified.
    let (buffer, buffer_mailbox) = buffered::Engine::<_, PublicKey, ChainBlock, P, Sequential>::new(
        context.child("buffer"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: MAILBOX_SIZE,
            deque_size: 10,
            priority: true,
            codec_config: (),
            peer_provider: config.peers.clone(),
            strategy: Sequential,
        },
    );

    // Every finalized block and its certificate, kept forever and served to lagging peers.
    let finalizations: immutable::Archive<E, Digest, Finalization<Scheme, Digest>> =
        immutable::Archive::init(
            context.child("finalizations"),
            archive(
                &prefix,
                "finalizations",
                config.archive_table_size,
                &page_cache,
                None,
                Scheme::certificate_codec_config_unbounded(),
            ),
        )
        .await
        .map_err(|e| EngineError::Archive("finalizations", e.to_string()))?;
    let blocks: immutable::Archive<E, Digest, Arc<ChainBlock>> = immutable::Archive::init(
        context.child("blocks"),
        archive(
            &prefix,
            "blocks",
            config.archive_table_size,
            &page_cache,
            ARCHIVE_COMPRESSION,
            (),
        ),
    )
    .await
    .map_err(|e| EngineError::Archive("blocks", e.to_string()))?;

    // One consensus epoch for the chain's whole life until validator sets can change.
    let epocher = FixedEpocher::new(NZU64!(u64::MAX));
    let (marshal, marshal_mailbox, _) = Marshal::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::<Scheme, Epoch>::new(scheme.clone()),
            epocher: epocher.clone(),
            start: marshal::Start::Genesis(Digested::precomputed(genesis, genesis_digest)),
            partition_prefix: format!("{prefix}-marshal"),
            mailbox_size: MAILBOX_SIZE,
            view_retention: ViewDelta::new(1_024),
            prunable_items_per_section: NZU64!(4_096),
            page_cache: page_cache.clone(),
            replay_buffer: REPLAY_BUFFER,
            key_write_buffer: WRITE_BUFFER,
            value_write_buffer: WRITE_BUFFER,
            block_codec_config: (),
            max_repair: NZUsize!(64),
            max_pending_acks: NZUsize!(16),
            strategy: Sequential,
        },
    )
    .await;

    ledger.set_blocks(marshal_mailbox.clone());
    let (finalizer, updates) = Finalizer::new(ledger.clone(), marshal_mailbox.clone());
    #[allow(unused_mut)]
    let mut application = Application::new(ledger.clone());
    configure(&mut application);
    // Votes go out as soon as a block is available; its execution runs alongside vote
    // collection and gates only the finalize vote.
    let deferred: Deferred<E, Scheme, Application<E>, ChainBlock, FixedEpocher> = Deferred::new(
        context.child("deferred"),
        application,
        marshal_mailbox.clone(),
        epocher,
    );

    let timing = &spec.consensus;
    let leader_timeout = Duration::from_millis(timing.leader_timeout_ms);
    let certification_timeout = Duration::from_millis(timing.certification_timeout_ms);
    let timeout_retry = Duration::from_millis(timing.timeout_retry_ms);
    let consensus = simplex::Engine::new(
        context.child("consensus"),
        simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker: config.blocker.clone(),
            automaton: deferred.clone(),
            relay: deferred.clone(),
            reporter: deferred,
            track_historical_votes: false,
            strategy: Sequential,
            partition: format!("{prefix}-consensus"),
            mailbox_size: MAILBOX_SIZE,
            epoch: Epoch::zero(),
            floor: Floor::Genesis(genesis_digest),
            replay_buffer: REPLAY_BUFFER,
            write_buffer: WRITE_BUFFER,
            page_cache,
            leader_timeout,
            certification_timeout,
            timeout_retry,
            view_retention: ViewDelta::new(256),
            skip: SkipPolicy::Enabled {
                timeout: certification_timeout.max(timeout_retry) + leader_timeout,
                budget: SkipBudget::Participants,
            },
            fetch_timeout: commonware_utils::NZDuration!(Duration::from_secs(1)),
            fetch_retry_delay: Duration::from_millis(100),
            forward: if is_validator {
                ForwardPolicy::SilentLeader
            } else {
                ForwardPolicy::Disabled
            },
        },
    );

    // Start order matters after a restart: consensus replays its journal into marshal, which
    // must already be running.
    let mut handles = vec![
        finalizer.start(context.child("finalizer")),
        buffer.start(channels.blocks),
    ];
    let backfill = marshal::resolver::p2p::init(
        context.child("backfill"),
        marshal::resolver::p2p::Config {
            public_key: me.clone(),
            peer_provider: config.peers.clone(),
            blocker: config.blocker.clone(),
            mailbox_size: MAILBOX_SIZE,
            fetch_timeout: commonware_utils::NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );
    handles.push(marshal.start(updates, buffer_mailbox, backfill));
    handles.push(consensus.start(channels.votes, channels.certificates, channels.resolver));
    handles.push(crate::gossip::start(
        context.child("gossip"),
        ledger.clone(),
        channels.transactions,
        config.blocker.clone(),
    ));
    // The node stops when any of its tasks ends: this one idles once the history is filled.
    let history = ledger.clone();
    handles.push(context.child("history").spawn(move |_| async move {
        history.backfill_history().await;
        futures::future::pending::<()>().await;
    }));
    Ok(Node {
        public_key: me,
        is_validator,
        ledger,
        handles,
    })
}
