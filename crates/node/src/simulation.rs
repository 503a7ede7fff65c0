//! Several validators on Commonware's deterministic runtime and simulated network: the same
//! engine as in production, with virtual time, injected crashes, partitions and liars.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::deterministic::{self, Context};
use commonware_runtime::{Clock as _, Handle, Runner as _, Spawner as _, Supervisor as _};
use commonware_utils::{NZUsize, SystemTimeExt as _};
use futures::StreamExt as _;
use wetee_types::balance::UNIT;
use wetee_types::rpc::{BlockId, TransactionStatus};
use wetee_types::spec::{BalanceSpec, ChainSpec, ConsensusSpec, ValidatorSpec};
use wetee_types::transaction::{BalancesCall, Transaction};
use wetee_types::{Balance, Call, ChainConfig, Hash, KeyScheme, Keypair, Params};

use crate::application::Fault;
use crate::chain::{PublicKey, key_bytes, private_key};
use crate::engine::{self, Channels, Config, channels, quotas};
use crate::ledger::Ledger;
use crate::mempool::MempoolLimits;

const VALIDATORS: usize = 4;
/// The index of a full node: a key outside the validator set.
const FULL_NODE: usize = VALIDATORS;

fn seed(index: usize) -> [u8; 32] {
    [index as u8 + 1; 32]
}

fn public(index: usize) -> PublicKey {
    use commonware_cryptography::Signer as _;
    private_key(&seed(index)).expect("valid seed").public_key()
}

/// Ed25519, whose signatures are deterministic, so that a seed replays to the same blocks.
fn alice() -> Keypair {
    Keypair::from_seed(KeyScheme::Ed25519, [100; 32])
}

fn bob() -> Keypair {
    Keypair::from_seed(KeyScheme::Ed25519, [101; 32])
}

/// A funded account the Byzantine validator signs nonce-gapped transactions with.
fn mallory() -> Keypair {
    Keypair::from_seed(KeyScheme::Ed25519, [103; 32])
}

/// A channel no honest validator listens on: a flooding validator's own gossip goes there.
const UNHEARD: u64 = 99;

fn spec() -> Arc<ChainSpec> {
    let spec = ChainSpec {
        name: "simulation".into(),
        chain_id: "wetee-simulation".into(),
        genesis_time_ms: 0,
        validators: (0..VALIDATORS)
            .map(|i| ValidatorSpec {
                name: format!("v{i}"),
                public_key: hex::encode(key_bytes(&public(i))),
                address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 30_000 + i as u16),
            })
            .collect(),
        consensus: ConsensusSpec {
            leader_timeout_ms: 1_000,
            certification_timeout_ms: 2_000,
            timeout_retry_ms: 3_000,
            max_block_transactions: 1_000,
        },
        chain: ChainConfig { epoch_length: 20 },
        params: Params {
            target_block_time_ms: 100,
            ..Params::dev()
        },
        attestation: wetee_types::attestation::AttestationPolicy::dev(),
        root: alice().account_id(),
        treasury: Keypair::from_seed(KeyScheme::Sr25519, [102; 32]).account_id(),
        balances: vec![
            BalanceSpec {
                account: alice().account_id(),
                amount: Balance(1_000_000 * UNIT),
            },
            BalanceSpec {
                account: mallory().account_id(),
                amount: Balance(1_000 * UNIT),
            },
        ],
    };
    spec.validate().expect("valid simulation spec");
    Arc::new(spec)
}

fn transfer(spec: &ChainSpec, nonce: u64) -> wetee_types::SignedTransaction {
    Transaction {
        signer: alice().account_id(),
        nonce,
        fee: Balance(UNIT / 100),
        expires_at: 10_000,
        call: Call::Balances(BalancesCall::Transfer {
            to: bob().account_id(),
            amount: Balance(UNIT),
        }),
    }
    .sign(&alice(), &spec.genesis_hash())
}

/// One finalized block as a validator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    hash: Hash,
    state_root: Hash,
    leader: [u8; 32],
    transactions: usize,
}

/// A running validator: abort `handle` to crash it; `seen` survives the crash.
struct Validator {
    handle: Handle<()>,
    ledger: Ledger<Context>,
    seen: Arc<Mutex<BTreeMap<u64, Seen>>>,
    /// When (virtual milliseconds) it finalized each height.
    finalized_at: Arc<Mutex<BTreeMap<u64, u64>>>,
}

impl Validator {
    fn height(&self) -> u64 {
        self.ledger.status().head.header.height
    }

    fn seen(&self) -> BTreeMap<u64, Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn balance(&self, who: &Keypair) -> Balance {
        self.ledger.read(|state| {
            wetee_runtime::query::account(state, &who.account_id())
                .unwrap()
                .free
        })
    }
}

fn link() -> Link {
    Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(3),
        success_rate: commonware_utils::probability!(1.0),
    }
}

async fn network(context: &Context) -> Oracle<PublicKey, Context> {
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: 16 << 20,
            max_peers_per_set: NZUsize!(VALIDATORS + 1),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        (0..=FULL_NODE).map(public),
    )
    .await;
    network.start();
    connect(&oracle, &(0..=FULL_NODE).collect::<Vec<_>>(), true).await;
    oracle
}

/// Adds (or removes) the links between every pair of `group`.
async fn connect(oracle: &Oracle<PublicKey, Context>, group: &[usize], up: bool) {
    for &a in group {
        for &b in group {
            if a != b {
                link_one(oracle, a, b, up).await;
            }
        }
    }
}

async fn link_one(oracle: &Oracle<PublicKey, Context>, a: usize, b: usize, up: bool) {
    if up {
        let _ = oracle.add_link(public(a), public(b), link()).await;
    } else {
        let _ = oracle.remove_link(public(a), public(b)).await;
    }
}

async fn start(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    index: usize,
    fault: Option<Fault>,
    seen: Arc<Mutex<BTreeMap<u64, Seen>>>,
) -> Validator {
    let control = oracle.control(public(index));
    let mut pairs = Vec::new();
    for (channel, quota) in [
        (channels::VOTES, quotas::VOTES),
        (channels::CERTIFICATES, quotas::CERTIFICATES),
        (channels::RESOLVER, quotas::RESOLVER),
        (channels::BLOCKS, quotas::BLOCKS),
        (channels::BACKFILL, quotas::BACKFILL),
        (channels::TRANSACTIONS, quotas::TRANSACTIONS),
    ] {
        pairs.push(control.register(channel, quota).await.expect("register"));
    }
    let mut pairs = pairs.into_iter();
    let mut next = || pairs.next().expect("six channels");
    let mut channels = Channels {
        votes: next(),
        certificates: next(),
        resolver: next(),
        blocks: next(),
        backfill: next(),
        transactions: next(),
    };
    if fault == Some(Fault::FloodGossip) {
        let unheard = control
            .register(UNHEARD, quotas::TRANSACTIONS)
            .await
            .expect("register");
        let (sender, _) = std::mem::replace(&mut channels.transactions, unheard);
        context
            .child("flooder")
            .spawn(move |context| flood(context, sender));
    }
    let config = Config {
        signer: private_key(&seed(index)).expect("valid seed"),
        spec: spec(),
        blocker: control.clone(),
        peers: oracle.manager(),
        storage_prefix: format!("validator-{index}"),
        mempool: MempoolLimits::default(),
        archive_table_size: 1 << 10,
    };
    let recorded = Arc::clone(&seen);
    let finalized_at = Arc::new(Mutex::new(BTreeMap::new()));
    let times = Arc::clone(&finalized_at);
    let (sender, receiver) = futures::channel::oneshot::channel();
    // Everything the validator spawns descends from this task: aborting it crashes them all.
    let handle = context
        .child("validator")
        .with_attribute("index", index)
        .spawn(move |context| async move {
            let node = engine::start_with_fault(context.child("node"), config, channels, fault)
                .await
                .expect("engine starts");
            let mut finalized = node.ledger.subscribe();
            let _ = sender.send(node.ledger.clone());
            let recorder = context.child("recorder").spawn(move |context| async move {
                while let Some(block) = finalized.next().await {
                    let header = block.block.header;
                    let now = context.current().epoch_millis();
                    times.lock().unwrap().insert(header.height, now);
                    seen.lock().unwrap().insert(
                        header.height,
                        Seen {
                            hash: block.hash,
                            state_root: header.state_root,
                            leader: header.context.leader,
                            transactions: block.block.transactions.len(),
                        },
                    );
                }
            });
            let mut handles = node.handles;
            handles.push(recorder);
            let (_, index, _) = futures::future::select_all(handles).await;
            panic!("validator task {index} stopped");
        });
    let ledger = receiver.await.expect("validator started");
    Validator {
        handle,
        ledger,
        seen: recorded,
        finalized_at,
    }
}

/// How long the Byzantine validator floods.
const FLOOD: Duration = Duration::from_secs(40);

/// What a Byzantine validator gossips for [`FLOOD`]: batches of 256 mixing transfers with
/// broken signatures and validly signed transfers past the signer's next nonce, 50 a second.
async fn flood(context: Context, mut sender: simulated::Sender<PublicKey, Context>) {
    use commonware_p2p::{Recipients, Sender as _};
    let spec = spec();
    // Signed once and cycled: signing anew for every message would only slow the test down.
    let signed: Vec<_> = (0..4_096u64)
        .map(|i| {
            let mut tx = Transaction {
                signer: mallory().account_id(),
                nonce: 1 + i % 250,
                fee: Balance(UNIT / 100),
                expires_at: 1_000,
                call: Call::Balances(BalancesCall::Transfer {
                    to: bob().account_id(),
                    amount: Balance(u128::from(i)),
                }),
            }
            .sign(&mallory(), &spec.genesis_hash());
            if i % 16 == 0 {
                // Signed, then changed.
                tx.tx.fee = Balance(UNIT);
            }
            tx
        })
        .collect();
    let end = context.current() + FLOOD;
    let mut batches = signed.chunks(256).cycle();
    while context.current() < end {
        let batch = batches.next().expect("cycles forever").to_vec();
        let batch = crate::gossip::Batch::try_new(batch).expect("one batch");
        let _ = sender.send(Recipients::All, wetee_types::codec::encode(&batch), false);
        context.sleep(Duration::from_millis(20)).await;
    }
}

async fn start_all(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    faults: &[(usize, Fault)],
) -> Vec<Validator> {
    let mut validators = Vec::new();
    for index in 0..VALIDATORS {
        let fault = faults.iter().find(|(i, _)| *i == index).map(|(_, f)| *f);
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        validators.push(start(context, oracle, index, fault, seen).await);
    }
    validators
}

async fn wait_for_height(context: &Context, validators: &[&Validator], height: u64) {
    while validators.iter().any(|v| v.height() < height) {
        context.sleep(Duration::from_millis(50)).await;
    }
}

/// Every validator saw the same block and state root at every height they share.
fn assert_agree(validators: &[&Validator]) {
    let mut agreed: BTreeMap<u64, Seen> = BTreeMap::new();
    for validator in validators {
        for (height, seen) in validator.seen() {
            if let Some(other) = agreed.insert(height, seen.clone()) {
                assert_eq!(other, seen, "validators disagree at height {height}");
            }
        }
    }
}

fn runner(seed: u64) -> deterministic::Runner {
    // RUST_LOG=wetee_node=debug shows what the validators did when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

#[test]
fn four_validators_finalize_the_same_blocks_and_state_roots() {
    runner(1).start(|context| async move {
        let oracle = network(&context).await;
        let validators = start_all(&context, &oracle, &[]).await;
        let spec = spec();
        let mut watched = None;
        for nonce in 0..40 {
            let ledger = &validators[(nonce % 4) as usize].ledger;
            let hash = ledger
                .submit(transfer(&spec, nonce), true)
                .expect("admitted");
            if nonce == 7 {
                watched = ledger.watch(hash);
            }
        }
        let all: Vec<&Validator> = validators.iter().collect();
        while validators
            .iter()
            .any(|v| v.balance(&bob()) < Balance(40 * UNIT))
        {
            context.sleep(Duration::from_millis(50)).await;
        }
        wait_for_height(&context, &all, 15).await;
        assert_agree(&all);
        for validator in &validators {
            let seen = validator.seen();
            let heights: Vec<u64> = seen.keys().copied().collect();
            assert_eq!(heights, (1..=heights.len() as u64).collect::<Vec<_>>());
            let included: usize = seen.values().map(|s| s.transactions).sum();
            assert_eq!(included, 40, "every transfer was included once");
        }
        // The watcher heard the transfer go from ready to included to finalized.
        let statuses: Vec<_> = watched.expect("watched").collect().await;
        let kinds: Vec<&str> = statuses
            .iter()
            .map(|status| match status {
                TransactionStatus::Ready { .. } => "ready",
                TransactionStatus::Included { .. } => "included",
                TransactionStatus::Finalized { .. } => "finalized",
                TransactionStatus::Dropped { .. } => "dropped",
            })
            .collect();
        assert_eq!(kinds.first(), Some(&"ready"));
        assert!(kinds.contains(&"included"));
        assert_eq!(kinds.last(), Some(&"finalized"));
        let Some(TransactionStatus::Finalized { block, receipt, .. }) = statuses.last() else {
            unreachable!()
        };
        assert_eq!(receipt.nonce, 7);
        // Any validator serves that block and its receipts after the fact.
        let ledger = &validators[3].ledger;
        let stored = ledger
            .block(BlockId::Hash(block.hash))
            .await
            .expect("stored");
        assert_eq!(stored.header.height, block.height);
        let outcome = ledger
            .outcome(&stored)
            .await
            .unwrap()
            .expect("outcome stored");
        assert!(outcome.receipts.contains(receipt));
        // Every validator led some finalized blocks.
        let leaders: std::collections::BTreeSet<[u8; 32]> =
            validators[0].seen().values().map(|s| s.leader).collect();
        assert_eq!(leaders.len(), VALIDATORS);
        assert!(oracle.blocked().await.unwrap().is_empty());
    });
}

#[test]
fn a_full_node_follows_the_validators_without_voting() {
    runner(7).start(|context| async move {
        let oracle = network(&context).await;
        let validators = start_all(&context, &oracle, &[]).await;
        let full = start(
            &context,
            &oracle,
            FULL_NODE,
            None,
            Arc::new(Mutex::new(BTreeMap::new())),
        )
        .await;
        let spec = spec();
        // A transaction sent to the full node reaches the validators and is finalized.
        full.ledger
            .submit(transfer(&spec, 0), true)
            .expect("admitted");
        while full.balance(&bob()) < Balance(UNIT) {
            context.sleep(Duration::from_millis(50)).await;
        }
        let mut everyone: Vec<&Validator> = validators.iter().collect();
        everyone.push(&full);
        wait_for_height(&context, &everyone, 10).await;
        assert_agree(&everyone);
        let leaders: std::collections::BTreeSet<[u8; 32]> =
            full.seen().values().map(|s| s.leader).collect();
        assert!(!leaders.contains(&key_bytes(&public(FULL_NODE))));
        assert!(
            validators
                .iter()
                .all(|v| v.balance(&bob()) == Balance(UNIT))
        );
        // Finality does not wait for it: the validators go on without it.
        full.handle.abort();
        let target = validators[0].height() + 5;
        let all: Vec<&Validator> = validators.iter().collect();
        wait_for_height(&context, &all, target).await;
    });
}

#[test]
fn finality_continues_with_one_validator_crashed() {
    runner(2).start(|context| async move {
        let oracle = network(&context).await;
        let mut validators = start_all(&context, &oracle, &[]).await;
        let all: Vec<&Validator> = validators.iter().collect();
        wait_for_height(&context, &all, 3).await;
        let crashed = validators.pop().expect("four");
        crashed.handle.abort();
        let at_crash = validators[0].height();
        let spec = spec();
        validators[0]
            .ledger
            .submit(transfer(&spec, 0), true)
            .expect("admitted");
        let alive: Vec<&Validator> = validators.iter().collect();
        wait_for_height(&context, &alive, at_crash + 12).await;
        assert_agree(&alive);
        assert!(
            validators
                .iter()
                .all(|v| v.balance(&bob()) == Balance(UNIT))
        );
    });
}

#[test]
fn a_partitioned_validator_catches_up_after_the_partition_heals() {
    runner(3).start(|context| async move {
        let oracle = network(&context).await;
        let validators = start_all(&context, &oracle, &[]).await;
        let all: Vec<&Validator> = validators.iter().collect();
        wait_for_height(&context, &all, 3).await;
        for other in 0..3 {
            link_one(&oracle, 3, other, false).await;
            link_one(&oracle, other, 3, false).await;
        }
        let isolated_at = validators[3].height();
        let majority: Vec<&Validator> = validators[..3].iter().collect();
        wait_for_height(&context, &majority, isolated_at + 30).await;
        assert!(
            validators[3].height() <= isolated_at + 1,
            "a lone validator finalizes nothing"
        );
        for other in 0..3 {
            link_one(&oracle, 3, other, true).await;
            link_one(&oracle, other, 3, true).await;
        }
        let target = validators[0].height() + 5;
        wait_for_height(&context, &all, target).await;
        assert_agree(&all);
        let seen = validators[3].seen();
        assert!((isolated_at + 1..=target).all(|h| seen.contains_key(&h)));
    });
}

#[test]
fn a_restarted_validator_keeps_its_blocks_and_does_not_equivocate() {
    runner(4).start(|context| async move {
        let oracle = network(&context).await;
        let mut validators = start_all(&context, &oracle, &[]).await;
        let spec = spec();
        for nonce in 0..10 {
            validators[0]
                .ledger
                .submit(transfer(&spec, nonce), true)
                .expect("admitted");
        }
        let all: Vec<&Validator> = validators.iter().collect();
        wait_for_height(&context, &all, 8).await;
        let crashed = validators.remove(1);
        let before = crashed.height();
        crashed.handle.abort();
        let seen = crashed.seen;
        drop(crashed.ledger);
        context.sleep(Duration::from_secs(2)).await;
        let restarted = start(&context, &oracle, 1, None, seen).await;
        restarted.ledger.ready().await;
        assert!(
            restarted.height() >= before,
            "the restarted validator resumes from its committed state"
        );
        validators.insert(1, restarted);
        let balance = validators[1].balance(&bob());
        assert!(balance >= Balance(UNIT));
        // Now crash another validator: finality needs the restarted one's votes.
        validators[2].handle.abort();
        let target = validators[0].height() + 10;
        let alive = [&validators[0], &validators[1], &validators[3]];
        wait_for_height(&context, &alive, target).await;
        assert_agree(&alive);
        assert!(
            oracle.blocked().await.unwrap().is_empty(),
            "no validator saw conflicting votes"
        );
    });
}

#[test]
fn every_validator_restarts_from_its_storage() {
    let (before, checkpoint) = runner(5).start_and_recover(|context| async move {
        let oracle = network(&context).await;
        let validators = start_all(&context, &oracle, &[]).await;
        let spec = spec();
        for nonce in 0..5 {
            validators[0]
                .ledger
                .submit(transfer(&spec, nonce), true)
                .expect("admitted");
        }
        let all: Vec<&Validator> = validators.iter().collect();
        while validators
            .iter()
            .any(|v| v.balance(&bob()) < Balance(5 * UNIT))
        {
            context.sleep(Duration::from_millis(50)).await;
        }
        wait_for_height(&context, &all, 6).await;
        validators.iter().map(|v| v.seen()).collect::<Vec<_>>()
    });
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let oracle = network(&context).await;
        let validators = start_all(&context, &oracle, &[]).await;
        for (validator, seen) in validators.iter().zip(&before) {
            validator.ledger.ready().await;
            let (last, block) = seen.last_key_value().expect("finalized before the crash");
            assert!(validator.height() >= *last, "no finalized block lost");
            assert_eq!(validator.balance(&bob()), Balance(5 * UNIT));
            if validator.height() == *last {
                assert_eq!(validator.ledger.status().head_hash, block.hash);
            }
        }
        let all: Vec<&Validator> = validators.iter().collect();
        let target = validators.iter().map(|v| v.height()).max().unwrap_or(0) + 5;
        wait_for_height(&context, &all, target).await;
        assert_agree(&all);
    });
}

#[test]
fn blocks_with_a_false_state_root_or_a_replayed_transaction_are_refused() {
    runner(6).start(|context| async move {
        let oracle = network(&context).await;
        let faults = [(0, Fault::WrongStateRoot), (1, Fault::ReplayedTransaction)];
        let validators = start_all(&context, &oracle, &faults).await;
        let spec = spec();
        // A steady trickle of transfers, so replaying leaders always have one to replay.
        let submitter = validators[2].ledger.clone();
        let trickle = context.child("trickle").spawn(move |context| async move {
            for nonce in 0.. {
                let _ = submitter.submit(transfer(&spec, nonce), true);
                context.sleep(Duration::from_millis(150)).await;
            }
        });
        let all: Vec<&Validator> = validators.iter().collect();
        wait_for_height(&context, &all, 12).await;
        trickle.abort();
        assert_agree(&all);
        let mut replayer_led_empty_blocks = 0;
        for seen in validators[2].seen().values() {
            assert_ne!(
                seen.leader,
                key_bytes(&public(0)),
                "a block with a false state root was finalized"
            );
            // The replaying leader's blocks are valid only when it had nothing to replay.
            if seen.leader == key_bytes(&public(1)) {
                assert_eq!(seen.transactions, 0, "a replayed transaction was finalized");
                replayer_led_empty_blocks += 1;
            }
        }
        assert!(validators[3].balance(&bob()) > Balance::ZERO);
        let honest_blocks = validators[2].seen().len() - replayer_led_empty_blocks;
        assert!(
            honest_blocks >= 6,
            "the honest leaders kept the chain going"
        );
        // The liars did propose, and the honest validators said no for the right reasons.
        for honest in &validators[2..] {
            let refusals = honest.ledger.refusals();
            let load = |counter: &std::sync::atomic::AtomicU64| {
                counter.load(std::sync::atomic::Ordering::Relaxed)
            };
            assert!(
                load(&refusals.state_root) > 0,
                "false state roots were refused"
            );
            assert!(
                load(&refusals.transaction) > 0,
                "replayed transactions were refused"
            );
            assert_eq!(load(&refusals.other), 0);
        }
    });
}

/// Each honest validator's finalized blocks, the (blocker, blocked) pairs, and the longest
/// wait between two finalized blocks at validator 0, in milliseconds.
type FloodRun = (Vec<BTreeMap<u64, Seen>>, Vec<(PublicKey, PublicKey)>, u64);

/// One run of a Byzantine validator flooding gossip and stamping its blocks ahead while alice
/// sends a transfer every 200 ms: what each honest validator finalized, who blocked whom, and
/// the longest wait between two finalized blocks at validator 0.
fn run_under_flood(seed: u64) -> FloodRun {
    runner(seed).start(|context| async move {
        let oracle = network(&context).await;
        let byzantine = 3;
        let mut validators = Vec::new();
        for index in 0..VALIDATORS {
            let fault = (index == byzantine).then_some(Fault::FloodGossip);
            let seen = Arc::new(Mutex::new(BTreeMap::new()));
            validators.push(start(&context, &oracle, index, fault, seen).await);
        }
        let honest: Vec<&Validator> = validators[..byzantine].iter().collect();
        let spec = spec();
        let transfers = 150;
        for nonce in 0..transfers {
            validators[(nonce % 3) as usize]
                .ledger
                .submit(transfer(&spec, nonce), true)
                .expect("an honest transfer is admitted during the flood");
            context.sleep(Duration::from_millis(200)).await;
        }
        while honest
            .iter()
            .any(|v| v.balance(&bob()) < Balance(u128::from(transfers) * UNIT))
        {
            context.sleep(Duration::from_millis(50)).await;
        }
        assert_agree(&honest);
        for validator in &honest {
            // Mallory's transactions wait behind her missing nonce 0, within their budget.
            assert!(
                validator.ledger.pending_count()
                    <= MempoolLimits::default().max_waiting_per_account
            );
        }
        let times: Vec<u64> = validators[0]
            .finalized_at
            .lock()
            .unwrap()
            .values()
            .copied()
            .collect();
        let longest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let mut blocked = oracle.blocked().await.unwrap();
        blocked.sort();
        (honest.iter().map(|v| v.seen()).collect(), blocked, longest)
    })
}

#[test]
fn honest_transfers_finalize_while_a_byzantine_validator_floods_gossip() {
    let spec = spec();
    for seed in [21, 22, 23] {
        let (seen, blocked, longest) = run_under_flood(seed);
        // Every honest validator blocked the flooder, and no one else.
        let mut expected: Vec<(PublicKey, PublicKey)> =
            (0..3).map(|honest| (public(honest), public(3))).collect();
        expected.sort();
        assert_eq!(blocked, expected, "seed {seed}");
        // Finality never waited longer than a view whose Byzantine leader withheld its block
        // from part of the network (the certification timeout), plus a block.
        let bound =
            spec.consensus.certification_timeout_ms + spec.params.target_block_time_ms + 200;
        assert!(longest <= bound, "seed {seed}: a {longest} ms pause");
        assert!(seen[0].len() > 50, "seed {seed}");
        // The same seed replays to the same chain.
        if seed == 21 {
            let (again, blocked_again, _) = run_under_flood(seed);
            for (validator, (a, b)) in again.iter().zip(&seen).enumerate() {
                let first = a
                    .iter()
                    .zip(b.iter())
                    .find(|(x, y)| x != y)
                    .map(|(x, _)| *x.0);
                assert!(
                    a == b,
                    "seed {seed} replays differently at validator {validator}: {} vs {} blocks, \
                     first difference at height {first:?}",
                    a.len(),
                    b.len()
                );
            }
            assert_eq!(blocked_again, blocked);
        }
    }
}
