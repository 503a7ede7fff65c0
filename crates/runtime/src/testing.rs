//! A chain in memory for tests, benchmarks and examples: genesis with funded dev accounts,
//! blocks, signed calls, work reports, and a checker for every invariant of the runtime.
//!
//! Behind the `testing` feature; it panics on anything unexpected, which is what a test wants
//! and what production code must never do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use crate::storage::{keys, scan_prefix};
use crate::{BlockInfo, Genesis, MemoryState, Runtime, State, query};
use std::collections::BTreeMap;
use wetee_types::attestation::AttestationPolicy;
use wetee_types::balance::UNIT;
use wetee_types::codec::{BoundedString, BoundedVec, decode};
use wetee_types::manifest::{
    AppSpec, Constraints, ContainerSpec, ImageRef, Schedule, TaskExecution, TaskSpec,
};
use wetee_types::params::{ChainConfig, Params};
use wetee_types::records::{
    Account, App, AppStatus, Attestation, Complaint, ComplaintStatus, Evidence, Lease, Task,
    Worker, WorkerKeys, WorkerProfile, WorkerStatus,
};
use wetee_types::report::{AppProof, RunReport, SignedWorkReport, Usage, WorkReport};
use wetee_types::transaction::{AppsCall, BalancesCall, TasksCall, WorkersCall};

use wetee_types::{
    AccountId, AppId, Balance, Call, CallError, Event, Hash, KeyScheme, Keypair, Outcome, Prices,
    Receipt, Resources, SignedTransaction, TaskId, TeeKind, TeeKinds, Transaction, TxError,
    WorkerId, Workload,
};

/// Blocks per epoch in tests.
pub const EPOCH: u64 = 10;
/// Milliseconds between test blocks (matches `Params::dev().target_block_time_ms`).
pub const BLOCK_MS: u64 = 1000;
/// Genesis block time: 2026-11-21T00:00:00Z.
pub const GENESIS_MS: u64 = 1_795_219_200_000;

pub fn tokens(n: u128) -> Balance {
    Balance(n * UNIT)
}

/// A production attestation policy pinning one (made-up) SGX worker build.
pub fn production_policy() -> wetee_types::attestation::AttestationPolicy {
    wetee_types::attestation::AttestationPolicy::production(vec![
        wetee_types::attestation::MeasurementRule::Sgx {
            mr_enclave: Some([7; 32]),
            mr_signer: None,
            isv_prod_id: None,
            min_isv_svn: None,
        },
    ])
}

#[derive(Debug)]
pub struct TestChain {
    pub runtime: Runtime,
    pub state: MemoryState,
    pub genesis_hash: Hash,
    /// Height of the open block (its begin_block has run, its end_block has not).
    pub height: u64,
    pub issuance: Balance,
    pub treasury: AccountId,
    pub root: Keypair,
    /// Time of the genesis block.
    pub genesis_ms: u64,
    users: BTreeMap<&'static str, Keypair>,
    identities: BTreeMap<WorkerId, Keypair>,
    /// Events of hooks (begin/end block) since the chain started.
    pub hook_events: Vec<Event>,
    /// Every successful receipt's events.
    pub tx_events: Vec<Event>,
}

pub const USERS: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];

fn seed(name: &str) -> [u8; 32] {
    Hash::of(name.as_bytes()).0
}

impl Default for TestChain {
    fn default() -> TestChain {
        TestChain::new()
    }
}

impl TestChain {
    pub fn new() -> TestChain {
        TestChain::with_params(Params::dev())
    }

    pub fn with_params(params: Params) -> TestChain {
        TestChain::with_config(params, AttestationPolicy::dev())
    }

    /// A chain with `params` and an attestation policy.
    pub fn with_config(params: Params, attestation: AttestationPolicy) -> TestChain {
        TestChain::starting_at(params, attestation, GENESIS_MS)
    }

    /// A chain whose genesis block is at `genesis_ms` (to verify collateral of that time).
    pub fn starting_at(
        params: Params,
        attestation: AttestationPolicy,
        genesis_ms: u64,
    ) -> TestChain {
        let root = Keypair::from_seed(KeyScheme::Sr25519, seed("root"));
        let treasury = AccountId([0xee; 32]);
        let mut users = BTreeMap::new();
        let mut balances = vec![(root.account_id(), tokens(1_000))];
        for (i, name) in USERS.iter().enumerate() {
            // Half the users sign with sr25519, like Polkadot wallets; half with ed25519.
            let scheme = if i % 2 == 0 {
                KeyScheme::Sr25519
            } else {
                KeyScheme::Ed25519
            };
            let key = Keypair::from_seed(scheme, seed(name));
            balances.push((key.account_id(), tokens(1_000_000)));
            users.insert(*name, key);
        }
        let genesis = Genesis {
            chain: ChainConfig {
                epoch_length: EPOCH,
            },
            params,
            attestation,
            root: root.account_id(),
            treasury,
            balances,
        };
        let runtime = Runtime::new();
        let mut state = MemoryState::new();
        let genesis_hash = Hash::of(b"wetee test chain");
        runtime.genesis(&mut state, &genesis, genesis_hash).unwrap();
        let issuance = crate::total_issuance(&state).unwrap();
        let mut chain = TestChain {
            runtime,
            state,
            genesis_hash,
            height: 0,
            issuance,
            treasury,
            root,
            genesis_ms,
            users,
            identities: BTreeMap::new(),
            hook_events: Vec::new(),
            tx_events: Vec::new(),
        };
        chain.open_block(1);
        chain
    }

    /// The most common world: eve's started TDX worker in `eu` (8000 millicores, 16 GiB) serving
    /// alice's app (1000 millicores, 512 MiB, any region) with a 20 WTE deposit, placed at
    /// height 1.
    pub fn serving(params: Params) -> (TestChain, WorkerId, AppId) {
        let mut chain = TestChain::with_params(params);
        let worker = chain.started_worker(
            "eve",
            chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
        );
        let app = chain.create_app(
            "alice",
            TestChain::app_spec(1000, 512, TeeKind::Simulated, None),
            tokens(20),
        );
        (chain, worker, app)
    }

    pub fn block(&self) -> BlockInfo {
        BlockInfo {
            height: self.height,
            timestamp_ms: self.genesis_ms + self.height * BLOCK_MS,
            parent_hash: TestChain::block_hash(self.height.saturating_sub(1)),
        }
    }

    /// The hash the test chain gives the block at `height`.
    pub fn block_hash(height: u64) -> Hash {
        Hash::of_parts(&[b"wetee test block", &height.to_be_bytes()])
    }

    fn open_block(&mut self, height: u64) {
        self.height = height;
        let block = self.block();
        let events = self.runtime.begin_block(&mut self.state, &block).unwrap();
        self.hook_events.extend(events);
    }

    /// Ends the open block and opens the next.
    pub fn next_block(&mut self) {
        let block = self.block();
        let events = self.runtime.end_block(&mut self.state, &block).unwrap();
        self.hook_events.extend(events);
        // What the block's end did (placements, settlements) leaves the chain consistent too.
        self.check_invariants();
        self.open_block(self.height + 1);
    }

    pub fn advance(&mut self, blocks: u64) {
        for _ in 0..blocks {
            self.next_block();
        }
    }

    /// Advances until the open block is the first of `epoch`.
    pub fn advance_to_epoch(&mut self, epoch: u64) {
        while self.height < epoch * EPOCH {
            self.next_block();
        }
    }

    pub fn epoch(&self) -> u64 {
        self.height / EPOCH
    }

    pub fn key(&self, name: &str) -> &Keypair {
        self.users
            .get(name)
            .unwrap_or_else(|| panic!("no user {name}"))
    }

    pub fn who(&self, name: &str) -> AccountId {
        self.key(name).account_id()
    }

    pub fn account(&self, who: &AccountId) -> Account {
        query::account(&self.state, who).unwrap()
    }

    pub fn free(&self, name: &str) -> Balance {
        self.account(&self.who(name)).free
    }

    pub fn reserved(&self, name: &str) -> Balance {
        self.account(&self.who(name)).reserved
    }

    pub fn treasury_free(&self) -> Balance {
        self.account(&self.treasury).free
    }

    /// A transaction from `key` with the right nonce and the minimum fee.
    pub fn transaction(&self, key: &Keypair, call: Call) -> SignedTransaction {
        let nonce = self.account(&key.account_id()).nonce;
        self.transaction_with_nonce(key, call, nonce)
    }

    /// A transaction from `key` with the given nonce and the minimum fee (to prepare a batch).
    pub fn transaction_with_nonce(
        &self,
        key: &Keypair,
        call: Call,
        nonce: u64,
    ) -> SignedTransaction {
        let signer = key.account_id();
        let mut tx = Transaction {
            signer,
            nonce,
            fee: Balance::ZERO,
            expires_at: self.height + 100,
            call,
        };
        tx.fee = self
            .runtime
            .fee_quote(
                &self.state,
                &self.block(),
                &tx.clone().sign(key, &self.genesis_hash),
            )
            .map_or(Balance(u128::MAX / 4), |quote| quote.minimum_fee);
        tx.sign(key, &self.genesis_hash)
    }

    pub fn apply(&mut self, tx: &SignedTransaction) -> Result<Receipt, TxError> {
        let block = self.block();
        let receipt = self
            .runtime
            .apply_transaction(&mut self.state, &block, tx)?;
        self.tx_events.extend(receipt.events.iter().cloned());
        Ok(receipt)
    }

    pub fn try_submit(&mut self, key: &Keypair, call: Call) -> Result<Receipt, TxError> {
        let tx = self.transaction(key, call);
        self.apply(&tx)
    }

    /// Submits a call that must succeed; returns its events.
    pub fn ok(&mut self, name: &str, call: Call) -> Vec<Event> {
        let key = self.key(name).clone();
        self.ok_as(&key, call)
    }

    pub fn ok_as(&mut self, key: &Keypair, call: Call) -> Vec<Event> {
        let receipt = self
            .try_submit(key, call.clone())
            .expect("transaction valid");
        match receipt.outcome {
            Outcome::Success => {
                // Every call a test makes leaves the chain consistent, not only the property
                // tests' random ones.
                self.check_invariants();
                receipt.events.into_inner()
            }
            Outcome::Failed { error } => panic!("{call:?} failed: {error}"),
        }
    }

    /// Submits a call that must fail with `expected`, and checks that nothing changed except
    /// the signer's nonce and fee.
    pub fn fails(&mut self, name: &str, call: Call, expected: CallError) {
        let key = self.key(name).clone();
        self.fails_as(&key, call, expected);
    }

    /// Submits a call that must fail, and returns its error (nothing changed but the nonce and
    /// fee).
    pub fn failure(&mut self, name: &str, call: Call) -> CallError {
        let key = self.key(name).clone();
        match self
            .submit_atomic(&key, call)
            .expect("transaction valid")
            .outcome
        {
            Outcome::Failed { error } => error,
            Outcome::Success => panic!("the call succeeded"),
        }
    }

    /// The reason evidence was rejected, from a call that must fail that way.
    pub fn evidence_rejection(&mut self, name: &str, call: Call) -> String {
        match self.failure(name, call) {
            CallError::EvidenceRejected { reason } => reason.to_string(),
            other => panic!("expected rejected evidence, got {other}"),
        }
    }

    pub fn fails_as(&mut self, key: &Keypair, call: Call, expected: CallError) {
        let receipt = self.submit_atomic(key, call).expect("transaction valid");
        assert_eq!(receipt.outcome, Outcome::Failed { error: expected });
    }

    /// Submits a call and, if it fails, checks that it changed nothing but the signer's nonce and
    /// the fee (paid to the treasury), and emitted no event.
    pub fn submit_atomic(&mut self, key: &Keypair, call: Call) -> Result<Receipt, TxError> {
        let tx = self.transaction(key, call);
        let mut expected = self.state.clone();
        let signer = key.account_id();
        let mut account = query::account(&expected, &signer).unwrap();
        account.nonce += 1;
        account.free = account.free.checked_sub(tx.tx.fee).unwrap_or_default();
        expected.put(
            &keys::account(&signer),
            &wetee_types::codec::encode(&account),
        );
        let mut treasury = query::account(&expected, &self.treasury).unwrap();
        treasury.free = treasury.free.checked_add(tx.tx.fee).unwrap();
        expected.put(
            &keys::account(&self.treasury),
            &wetee_types::codec::encode(&treasury),
        );
        let receipt = self.apply(&tx)?;
        if !receipt.is_success() {
            assert!(receipt.events.is_empty(), "a failed call emitted events");
            assert!(
                self.state == expected,
                "a failed call ({:?}) changed more than the signer's nonce and fee",
                receipt.outcome
            );
        }
        Ok(receipt)
    }

    // ----- workers -----

    pub fn profile(&self, region: &str, tees: &[TeeKind], cpu: u64, memory: u64) -> WorkerProfile {
        WorkerProfile {
            endpoint: BoundedString::try_new(format!("https://{region}.worker.test")).unwrap(),
            region: BoundedString::try_new(region).unwrap(),
            level: 0,
            capacity: Resources {
                cpu_millicores: cpu,
                memory_mib: memory,
                disk_gib: 100,
                gpus: 0,
            },
            gpu_model: None,
            tee_kinds: TeeKinds::of(tees),
            prices: Prices {
                cpu_millicore: Balance(1_000_000),
                memory_mib: Balance(100_000),
                disk_gib: Balance(0),
                gpu: Balance(0),
            },
        }
    }

    /// The worker's identity key, or a stranger's key for a worker the harness did not register.
    pub fn identity(&self, worker: WorkerId) -> Keypair {
        self.identities
            .get(&worker)
            .cloned()
            .unwrap_or_else(|| Keypair::from_seed(KeyScheme::Ed25519, [0x5a; 32]))
    }

    pub fn keys_for(identity: &Keypair) -> WorkerKeys {
        WorkerKeys {
            identity: identity.account_id().0,
            sealing: TestChain::sealing_public(identity),
        }
    }

    /// The X25519 sealing secret of a test worker (derived from its identity key's account).
    pub fn sealing_secret(identity: &Keypair) -> [u8; 32] {
        Hash::of_parts(&[b"wetee test sealing", &identity.account_id().0]).0
    }

    fn sealing_public(identity: &Keypair) -> [u8; 32] {
        wetee_sealing::public_key(&TestChain::sealing_secret(identity))
    }

    /// `keys` and `evidence`, with `identity`'s proof that `operator` operates them here.
    pub fn attestation(
        &self,
        operator: &AccountId,
        identity: &Keypair,
        keys: WorkerKeys,
        evidence: Evidence,
    ) -> Attestation {
        let payload = wetee_types::records::key_proof_payload(&self.genesis_hash, operator, &keys);
        Attestation {
            keys,
            evidence,
            key_proof: *identity.sign(&payload).as_bytes(),
        }
    }

    /// Evidence for `keys` from a TEE of `kind`, bound to the last block. Only the simulated
    /// TEE can produce real evidence here; other kinds get bytes no verifier accepts.
    pub fn evidence(&self, kind: TeeKind, keys: &WorkerKeys) -> Evidence {
        self.evidence_bound_to(kind, keys, self.height - 1)
    }

    /// Evidence for `keys` bound to the block at `nonce_height`.
    pub fn evidence_bound_to(
        &self,
        kind: TeeKind,
        keys: &WorkerKeys,
        nonce_height: u64,
    ) -> Evidence {
        let data = match kind {
            TeeKind::Simulated => {
                let nonce = TestChain::block_hash(nonce_height);
                let report_data = wetee_types::attestation::worker_report_data(
                    &self.genesis_hash,
                    keys,
                    &nonce.0,
                );
                wetee_attest::simulated::quote(&report_data).unwrap()
            }
            _ => b"quote bytes".to_vec(),
        };
        Evidence {
            kind,
            data: BoundedVec::try_new(data).unwrap(),
            nonce_height,
        }
    }

    /// Registers a worker for `operator` (not staked, not started).
    pub fn register(&mut self, operator: &str, profile: WorkerProfile) -> WorkerId {
        self.try_register(operator, profile)
            .expect("registration succeeds")
    }

    /// Registers a worker if the runtime accepts the profile.
    pub fn try_register(&mut self, operator: &str, profile: WorkerProfile) -> Option<WorkerId> {
        let identity_seed = Hash::of_parts(&[
            operator.as_bytes(),
            &self.height.to_be_bytes(),
            &(self.identities.len() as u64).to_be_bytes(),
        ]);
        let identity = Keypair::from_seed(KeyScheme::Ed25519, identity_seed.0);
        // The simulated TEE when the profile lists it: the only one that attests here.
        let kind = if profile.tee_kinds.contains(TeeKind::Simulated) {
            TeeKind::Simulated
        } else {
            profile.tee_kinds.iter().next()?
        };
        let key = self.key(operator).clone();
        let keys = TestChain::keys_for(&identity);
        let evidence = self.evidence(kind, &keys);
        let receipt = self
            .submit_atomic(
                &key,
                Call::Workers(WorkersCall::Register {
                    profile,
                    attestation: self.attestation(&key.account_id(), &identity, keys, evidence),
                }),
            )
            .expect("transaction valid");
        let id = receipt.events.iter().find_map(|e| match e {
            Event::WorkerRegistered { worker, .. } => Some(*worker),
            _ => None,
        })?;
        self.identities.insert(id, identity);
        Some(id)
    }

    /// The fee `name` pays for `call` now.
    pub fn fee_for(&self, name: &str, call: Call) -> Balance {
        self.transaction(self.key(name), call).tx.fee
    }

    /// Registers, stakes what level 0 requires, and starts a worker.
    pub fn started_worker(&mut self, operator: &str, profile: WorkerProfile) -> WorkerId {
        let level = profile.level;
        let id = self.register(operator, profile);
        let stake = self.params().required_stake(level).unwrap();
        self.ok(
            operator,
            Call::Workers(WorkersCall::Stake {
                worker: id,
                amount: stake,
            }),
        );
        self.ok(operator, Call::Workers(WorkersCall::Start { worker: id }));
        id
    }

    pub fn params(&self) -> Params {
        query::params(&self.state).unwrap().unwrap()
    }

    pub fn worker(&self, id: WorkerId) -> Worker {
        query::worker(&self.state, id).unwrap().unwrap()
    }

    pub fn signed_report(
        &self,
        worker: WorkerId,
        epoch: u64,
        apps: Vec<AppProof>,
        runs: Vec<RunReport>,
    ) -> SignedWorkReport {
        let report = WorkReport {
            worker,
            epoch,
            apps: BoundedVec::try_new(apps).unwrap(),
            runs: BoundedVec::try_new(runs).unwrap(),
            evidence: None,
        };
        let signature = *self
            .identity(worker)
            .sign(&report.signing_payload(&self.genesis_hash))
            .as_bytes();
        SignedWorkReport { report, signature }
    }

    pub fn proof(app: AppId, uptime_bps: u16) -> AppProof {
        AppProof {
            app,
            uptime_bps,
            usage: Usage::default(),
            log_root: Hash::of(b"logs"),
        }
    }

    /// The operator of `worker` submits a report.
    pub fn report(
        &mut self,
        operator: &str,
        worker: WorkerId,
        epoch: u64,
        apps: Vec<AppProof>,
    ) -> Vec<Event> {
        let report = self.signed_report(worker, epoch, apps, vec![]);
        self.ok(
            operator,
            Call::Workers(WorkersCall::SubmitWorkReport { report }),
        )
    }

    // ----- apps and tasks -----

    pub fn container(cpu: u64, memory: u64) -> ContainerSpec {
        ContainerSpec {
            image: ImageRef::parse(
                "localhost/hello@sha256:3f1a6b0d4c8e2a9b7f5d1e3c6a8b0f2d4e6a8c0b2d4f6e8a0c2e4a6b8d0f2e4a",
            )
            .unwrap(),
            command: BoundedVec::new(),
            args: BoundedVec::new(),
            env: BoundedVec::new(),
            secrets: BoundedVec::new(),
            ports: BoundedVec::new(),
            resources: Resources {
                cpu_millicores: cpu,
                memory_mib: memory,
                disk_gib: 0,
                gpus: 0,
            },
            gpu_model: None,
            security: Default::default(),
        }
    }

    pub fn constraints(tee: TeeKind, region: Option<&str>, max_price: Balance) -> Constraints {
        Constraints {
            tee,
            region: region.map(|r| BoundedString::try_new(r).unwrap()),
            min_level: 0,
            max_price_per_epoch: max_price,
            measurements: BoundedVec::new(),
        }
    }

    pub fn app_spec(cpu: u64, memory: u64, tee: TeeKind, region: Option<&str>) -> AppSpec {
        AppSpec {
            name: BoundedString::try_new("hello").unwrap(),
            container: TestChain::container(cpu, memory),
            replicas: 1,
            constraints: TestChain::constraints(tee, region, tokens(10)),
            health: None,
        }
    }

    pub fn task_spec(
        tee: TeeKind,
        schedule: Schedule,
        timeout_secs: u32,
        max_runs: Option<u32>,
    ) -> TaskSpec {
        TaskSpec {
            name: BoundedString::try_new("job").unwrap(),
            container: TestChain::container(500, 128),
            constraints: TestChain::constraints(tee, None, tokens(10)),
            execution: TaskExecution {
                schedule,
                timeout_secs,
                max_runs,
            },
        }
    }

    pub fn create_app(&mut self, owner: &str, spec: AppSpec, deposit: Balance) -> AppId {
        let events = self.ok(owner, Call::Apps(AppsCall::Create { spec, deposit }));
        events
            .iter()
            .find_map(|e| match e {
                Event::AppCreated { app, .. } => Some(*app),
                _ => None,
            })
            .unwrap()
    }

    pub fn create_task(&mut self, owner: &str, spec: TaskSpec, deposit: Balance) -> TaskId {
        let events = self.ok(owner, Call::Tasks(TasksCall::Create { spec, deposit }));
        events
            .iter()
            .find_map(|e| match e {
                Event::TaskCreated { task, .. } => Some(*task),
                _ => None,
            })
            .unwrap()
    }

    pub fn app(&self, id: AppId) -> App {
        query::app(&self.state, id).unwrap().unwrap()
    }

    pub fn task(&self, id: TaskId) -> Task {
        query::task(&self.state, id).unwrap().unwrap()
    }

    pub fn transfer(to: AccountId, amount: Balance) -> Call {
        Call::Balances(BalancesCall::Transfer { to, amount })
    }

    /// Every event so far, hooks and transactions.
    pub fn all_events(&self) -> Vec<Event> {
        self.tx_events
            .iter()
            .chain(self.hook_events.iter())
            .cloned()
            .collect()
    }

    // ----- invariants -----

    /// Checks every invariant of the economic and scheduling rules; panics with the first
    /// violation.
    pub fn check_invariants(&self) {
        let state = &self.state;
        assert_eq!(
            crate::total_issuance(state).unwrap(),
            self.issuance,
            "total issuance changed"
        );
        // Reserved balances back exactly what the records say they back.
        let mut backing: BTreeMap<AccountId, Balance> = BTreeMap::new();
        let mut add = |who: AccountId, amount: Balance| {
            let entry = backing.entry(who).or_default();
            *entry = entry.checked_add(amount).unwrap();
        };
        let workers = query::workers(state).unwrap();
        for w in &workers {
            add(w.operator, w.slashable().unwrap());
            add(w.operator, w.earnings);
        }
        for app in query::apps(state, None).unwrap() {
            add(app.owner, app.deposit);
        }
        for task in query::tasks(state, None).unwrap() {
            add(task.owner, task.deposit);
        }
        for (_, bytes) in scan_prefix(state, keys::COMPLAINTS) {
            let c: Complaint = decode(&bytes).unwrap();
            if c.status == ComplaintStatus::Open {
                add(c.reporter, c.bond);
            }
        }
        for (suffix, bytes) in scan_prefix(state, keys::ACCOUNTS) {
            let account: Account = decode(&bytes).unwrap();
            let who = AccountId(suffix.try_into().unwrap());
            assert_eq!(
                account.reserved,
                backing.get(&who).copied().unwrap_or_default(),
                "reserved balance of {who} does not match its stakes, deposits and bonds"
            );
        }
        // Capacity: used equals the sum of placements and never exceeds capacity.
        let mut used: BTreeMap<WorkerId, (Resources, u32)> = BTreeMap::new();
        let mut placed: BTreeMap<Workload, WorkerId> = BTreeMap::new();
        for (suffix, bytes) in scan_prefix(state, keys::PLACEMENTS) {
            let worker = WorkerId(u64::from_be_bytes(suffix[..8].try_into().unwrap()));
            let workload: Workload = decode(&suffix[8..]).unwrap();
            let resources: Resources = decode(&bytes).unwrap();
            let entry = used.entry(worker).or_insert((Resources::ZERO, 0));
            entry.0 = entry.0.checked_add(&resources).unwrap();
            entry.1 += 1;
            assert!(
                placed.insert(workload, worker).is_none(),
                "{workload} placed twice"
            );
        }
        for w in &workers {
            // The assignment list, which light clients prove, is exactly the placements.
            let assigned = crate::storage::assignments(state, w.id)
                .unwrap()
                .into_inner();
            // Each app's stamp is that of its records as stored now: a worker that finds it
            // unchanged may keep using the records it proved earlier.
            for entry in &assigned {
                let expected = match entry.workload {
                    Workload::App { app } => crate::storage::app_stamp(state, app)
                        .unwrap()
                        .expect("an assigned app exists"),
                    Workload::TaskRun { .. } => Hash::default(),
                };
                assert_eq!(
                    entry.stamp, expected,
                    "worker {}: the stamp of {} is not that of its records",
                    w.id, entry.workload
                );
            }
            let listed: Vec<Workload> = assigned.iter().map(|a| a.workload).collect();
            let held: Vec<Workload> = placed
                .iter()
                .filter(|(_, worker)| **worker == w.id)
                .map(|(workload, _)| *workload)
                .collect();
            assert_eq!(
                listed, held,
                "worker {} assignment list != placements",
                w.id
            );
            let (sum, count) = used.get(&w.id).copied().unwrap_or((Resources::ZERO, 0));
            assert_eq!(
                w.used, sum,
                "worker {} used capacity != sum of placements",
                w.id
            );
            assert_eq!(w.workloads, count, "worker {} workload count", w.id);
            assert!(
                w.used.fits_within(&w.profile.capacity),
                "worker {} over capacity",
                w.id
            );
        }
        // Apps: placement matches state; constraints hold; deposits never negative.
        for app in query::apps(state, None).unwrap() {
            let workload = Workload::App { app: app.id };
            assert!(
                app.held <= app.deposit,
                "app {} holds more than its deposit",
                app.id
            );
            let mut holds = Balance::ZERO;
            for w in &workers {
                for lease in query::leases(state, w.id, app.id).unwrap() {
                    if lease.end.is_some() {
                        holds = holds.checked_add(lease.hold).unwrap();
                    }
                    check_lease(&lease);
                }
            }
            assert_eq!(
                holds, app.held,
                "app {} held != sum of closed leases' holds",
                app.id
            );
            match app.status {
                AppStatus::Running | AppStatus::AwaitingSecrets => {
                    let p = app.placement.expect("running app has a placement");
                    assert_eq!(
                        placed.get(&workload),
                        Some(&p.worker),
                        "app {} capacity not on its worker",
                        app.id
                    );
                    let worker = workers.iter().find(|w| w.id == p.worker).unwrap();
                    let c = &app.spec.constraints;
                    assert!(
                        worker.profile.tee_kinds.contains(c.tee),
                        "app {} on a worker without its TEE",
                        app.id
                    );
                    assert!(
                        c.region
                            .as_ref()
                            .is_none_or(|r| *r == worker.profile.region),
                        "app {} in the wrong region",
                        app.id
                    );
                    assert!(
                        worker.profile.level >= c.min_level,
                        "app {} below its minimum level",
                        app.id
                    );
                    assert!(
                        p.price_per_epoch <= c.max_price_per_epoch,
                        "app {} above its maximum price",
                        app.id
                    );
                    let resources: Resources =
                        crate::storage::get(state, &keys::placement(p.worker, &workload))
                            .unwrap()
                            .unwrap();
                    assert_eq!(
                        resources,
                        app.spec.total_resources().unwrap(),
                        "app {} holds the wrong capacity",
                        app.id
                    );
                }
                AppStatus::Pending | AppStatus::Stopped { .. } => {
                    assert!(
                        app.placement.is_none(),
                        "app {} not running but placed",
                        app.id
                    );
                    assert!(
                        !placed.contains_key(&workload),
                        "app {} not running but holds capacity",
                        app.id
                    );
                }
            }
            let queued = state.get(&keys::pending_ticket(&workload)).is_some();
            assert_eq!(
                queued,
                app.status == AppStatus::Pending,
                "app {} queue membership",
                app.id
            );
        }
        for task in query::tasks(state, None).unwrap() {
            assert!(
                task.held <= task.deposit,
                "task {} holds more than its deposit",
                task.id
            );
            let mut escrow = Balance::ZERO;
            for run in query::task_runs(state, task.id).unwrap() {
                let workload = Workload::TaskRun {
                    task: task.id,
                    run: run.run,
                };
                assert_eq!(
                    run.holds_capacity,
                    placed.contains_key(&workload),
                    "run {workload} capacity flag"
                );
                if run.status == wetee_types::records::RunStatus::Assigned {
                    escrow = escrow.checked_add(run.escrow).unwrap();
                }
            }
            assert_eq!(
                escrow, task.held,
                "task {} held != escrow of runs in flight",
                task.id
            );
        }
        for w in &workers {
            if w.status == WorkerStatus::Stopped {
                assert_eq!(
                    w.workloads, 0,
                    "stopped worker {} still has workloads",
                    w.id
                );
            }
            // The indexes placement and liveness read agree with the records.
            assert_eq!(
                state.get(&keys::ready_worker(w.id)).is_some(),
                w.status == WorkerStatus::Started,
                "worker {} started index",
                w.id
            );
            assert_eq!(
                state.get(&keys::busy_worker(w.id)).is_some(),
                w.workloads > 0,
                "worker {} busy index",
                w.id
            );
            let holder: Option<WorkerId> =
                crate::storage::get(state, &keys::identity(&w.keys.identity)).unwrap();
            assert_eq!(holder, Some(w.id), "worker {} identity index", w.id);
        }
        let started = workers
            .iter()
            .filter(|w| w.status == WorkerStatus::Started)
            .count();
        let busy = workers.iter().filter(|w| w.workloads > 0).count();
        assert_eq!(scan_prefix(state, keys::READY_WORKERS).count(), started);
        assert_eq!(scan_prefix(state, keys::BUSY_WORKERS).count(), busy);
    }
}

fn check_lease(lease: &Lease) {
    assert!(lease.settled_to >= lease.start);
    if let Some(end) = lease.end {
        assert!(end >= lease.start);
    } else {
        assert!(lease.hold.is_zero());
    }
}

pub fn worker_events(events: &[Event]) -> Vec<&Event> {
    events.iter().filter(|e| e.worker().is_some()).collect()
}

pub fn has_event(events: &[Event], wanted: impl Fn(&Event) -> bool) -> bool {
    events.iter().any(wanted)
}

pub fn sched_every(blocks: u64) -> Schedule {
    Schedule::EveryBlocks { blocks }
}

pub fn run_report(task: TaskId, run: u32, duration_ms: u64) -> RunReport {
    RunReport {
        task,
        run,
        exit_code: 0,
        output_hash: Hash::of(b"output"),
        log_root: Hash::of(b"logs"),
        duration_ms,
        usage: Usage::default(),
    }
}

/// One line of the worked example: the state after an epoch's report (or its absence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleEpoch {
    pub epoch: u64,
    pub reported: bool,
    pub paid_by_owner: Balance,
    pub deposit_left: Balance,
    pub worker_earnings: Balance,
    pub protocol_fees: Balance,
}

/// The outcome of the worked example in `docs/runtime.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkedExample {
    pub price_per_epoch: Balance,
    pub deposit: Balance,
    pub epochs: Vec<ExampleEpoch>,
    pub refund_at_stop: Balance,
    pub held_at_stop: Balance,
    pub owner_paid: Balance,
    pub worker_earned: Balance,
    pub treasury_fees: Balance,
    pub owner_reserved_after: Balance,
}

/// An app costing 1 token an epoch, deployed with 20 tokens at the start of epoch 1 and run for
/// ten epochs (1 to 10) on a worker that proves every epoch except epoch 4; the owner stops it
/// at the start of epoch 11, and the worker then reports epoch 10.
pub fn worked_example() -> WorkedExample {
    let mut chain = TestChain::new();
    let mut profile = chain.profile("eu", &[TeeKind::Simulated], 8000, 16384);
    profile.prices.cpu_millicore = Balance(UNIT / 1000);
    profile.prices.memory_mib = Balance::ZERO;
    let worker = chain.started_worker("eve", profile);
    chain.advance_to_epoch(1);
    let mut spec = TestChain::app_spec(1000, 512, TeeKind::Simulated, Some("eu"));
    spec.constraints.max_price_per_epoch = tokens(2);
    let deposit = tokens(20);
    let app = chain.create_app("alice", spec, deposit);
    let price_per_epoch = chain.app(app).placement.unwrap().price_per_epoch;
    let fees_of = |events: &[Event]| {
        events.iter().fold(Balance::ZERO, |sum, e| match e {
            Event::AppPaid { protocol_fee, .. } => sum.checked_add(*protocol_fee).unwrap(),
            _ => sum,
        })
    };
    let paid_of = |events: &[Event]| {
        events.iter().fold(Balance::ZERO, |sum, e| match e {
            Event::AppPaid { amount, .. } => sum.checked_add(*amount).unwrap(),
            _ => sum,
        })
    };
    let mut epochs = Vec::new();
    let mut fees = Balance::ZERO;
    let mut owner_paid = Balance::ZERO;
    for epoch in 1..=9 {
        chain.advance_to_epoch(epoch + 1);
        let reported = epoch != 4;
        let mut paid = Balance::ZERO;
        if reported {
            let events = chain.report("eve", worker, epoch, vec![TestChain::proof(app, 10_000)]);
            paid = paid_of(&events);
            fees = fees.checked_add(fees_of(&events)).unwrap();
        }
        owner_paid = owner_paid.checked_add(paid).unwrap();
        epochs.push(ExampleEpoch {
            epoch,
            reported,
            paid_by_owner: paid,
            deposit_left: chain.app(app).deposit,
            worker_earnings: chain.worker(worker).earnings,
            protocol_fees: fees,
        });
    }
    chain.advance_to_epoch(11);
    let stop = chain.ok("alice", Call::Apps(AppsCall::Stop { app }));
    let refund_at_stop = stop
        .iter()
        .find_map(|e| match e {
            Event::AppStopped { refund, .. } => Some(*refund),
            _ => None,
        })
        .unwrap();
    let held_at_stop = chain.app(app).held;
    let events = chain.report("eve", worker, 10, vec![TestChain::proof(app, 10_000)]);
    let paid = paid_of(&events);
    owner_paid = owner_paid.checked_add(paid).unwrap();
    fees = fees.checked_add(fees_of(&events)).unwrap();
    epochs.push(ExampleEpoch {
        epoch: 10,
        reported: true,
        paid_by_owner: paid,
        deposit_left: chain.app(app).deposit,
        worker_earnings: chain.worker(worker).earnings,
        protocol_fees: fees,
    });
    chain.check_invariants();
    WorkedExample {
        price_per_epoch,
        deposit,
        epochs,
        refund_at_stop,
        held_at_stop,
        owner_paid,
        worker_earned: chain.worker(worker).earnings,
        treasury_fees: fees,
        owner_reserved_after: chain.reserved("alice"),
    }
}
