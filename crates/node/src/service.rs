//! A validator process: the engine on the Tokio runtime, authenticated TCP between the spec's
//! validators, and the RPC server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use commonware_consensus::marshal::{max_payload_size, standard::Standard};
use commonware_cryptography::{ChaCha20Poly1305, Signer as _};
use commonware_p2p::authenticated::lookup;
use commonware_p2p::{Address, AddressableManager as _};
use commonware_runtime::{Metrics as _, Runner as _, Supervisor as _, tokio as runtime};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::NZUsize;
use commonware_utils::ordered::Map;
use tracing::{error, info};
use wetee_types::spec::ChainSpec;

use crate::chain::{ChainBlock, PublicKey, Scheme, key_bytes, private_key};
use crate::engine::{self, Channels, channels, quotas};
use crate::mempool::MempoolLimits;

/// How to run a validator.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The chain.
    pub spec: ChainSpec,
    /// The 32-byte ed25519 seed of this node's key. A key among the spec's validators runs a
    /// validator; any other key runs a full node, which connects to the validators (they must
    /// list it in their `full_nodes`), follows and executes every finalized block, and serves
    /// the same RPC, without voting.
    pub key_seed: [u8; 32],
    /// Full nodes this validator lets connect: their public keys and the IP they connect from.
    pub full_nodes: Vec<([u8; 32], IpAddr)>,
    /// Where blocks and state are stored.
    pub data_dir: PathBuf,
    /// Where the RPC listens.
    pub rpc_address: SocketAddr,
    /// Where peer-to-peer connections are accepted (default: every interface, on the port of
    /// this validator's address in the spec).
    pub p2p_listen: Option<SocketAddr>,
    /// Tokio worker threads of consensus, p2p and storage.
    pub worker_threads: usize,
    /// Tokio worker threads of the RPC server, a runtime of its own: a flood of requests
    /// competes with consensus only for the CPU, never for its threads or task queue.
    pub rpc_threads: usize,
    /// Where Prometheus metrics are served (`GET /metrics`), apart from the RPC: an operator
    /// keeps it private while the RPC is public, and a scraper never waits for an RPC
    /// connection slot. `None`: not served.
    pub metrics_address: Option<SocketAddr>,
    /// The RPC's connection cap and what each address may hold and call.
    pub rpc_limits: crate::rpc::RpcLimits,
}

/// What a started validator tells its caller.
#[derive(Debug, Clone)]
pub struct Started {
    /// This validator's consensus public key.
    pub public_key: [u8; 32],
    /// Its name in the spec, or "full node".
    pub name: String,
    /// Whether it is a validator.
    pub is_validator: bool,
    /// Where its RPC listens.
    pub rpc_address: SocketAddr,
    /// Where its metrics are served, if anywhere.
    pub metrics_address: Option<SocketAddr>,
    /// Where it accepts peers.
    pub p2p_listen: SocketAddr,
}

/// Why the validator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// The engine failed to start.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The RPC server failed.
    #[error("RPC server on {address}: {error}")]
    Rpc {
        /// Where it tried to listen.
        address: SocketAddr,
        /// Why it failed.
        error: std::io::Error,
    },
    /// A part of the node stopped.
    #[error("the node stopped: {0}")]
    Stopped(String),
}

fn is_local(address: &SocketAddr) -> bool {
    match address.ip() {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.is_unique_local(),
    }
}

/// Runs the validator until `stop` completes (the caller decides which signals stop it) or
/// until a part of it fails. `started` is called once the RPC is listening. `stop` is first
/// polled on the node's own Tokio runtime, so it may register signal handlers.
pub fn run(
    config: ServiceConfig,
    started: impl FnOnce(Started) + Send + 'static,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    config
        .spec
        .validate()
        .map_err(|e| ServiceError::Config(format!("chain spec: {e}")))?;
    let signer = private_key(&config.key_seed)
        .ok_or_else(|| ServiceError::Config("the key is not a valid ed25519 seed".into()))?;
    let me = signer.public_key();
    let me_bytes = key_bytes(&me);
    let own = config
        .spec
        .validators
        .iter()
        .find(|v| v.public_key_bytes().ok() == Some(me_bytes))
        .cloned();
    let is_validator = own.is_some();
    // A full node is never dialed (validators only accept it), so any port will do.
    let p2p_listen = config.p2p_listen.unwrap_or_else(|| {
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            own.as_ref().map_or(0, |v| v.address.port()),
        )
    });
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        ServiceError::Config(format!("data directory {}: {e}", config.data_dir.display()))
    })?;
    let spec = Arc::new(config.spec);
    let validators = engine::validators(&spec)?;
    let addresses: Map<PublicKey, Address> =
        Map::from_iter_dedup(spec.validators.iter().filter_map(|validator| {
            let key = crate::chain::public_key(&validator.public_key_bytes().ok()?)?;
            Some((key, Address::from(validator.address)))
        }));
    let namespace = engine::namespace(&spec);
    let max_message_size = u32::try_from(max_payload_size::<Standard<ChainBlock>, Scheme>(
        u32::try_from(validators.len()).unwrap_or(u32::MAX),
        &(),
    ))
    .unwrap_or(u32::MAX)
    .saturating_add(1024);
    let private = spec.validators.iter().all(|v| is_local(&v.address));
    let mut full_nodes = Vec::new();
    for (key, ip) in &config.full_nodes {
        let key = crate::chain::public_key(key).ok_or_else(|| {
            ServiceError::Config(format!(
                "full node {} is not an ed25519 key",
                hex::encode(key)
            ))
        })?;
        // Full nodes dial in and are never dialed: only the IP they come from matters.
        full_nodes.push((key, Address::Symmetric(SocketAddr::new(*ip, 0))));
    }
    let full_nodes: Map<PublicKey, Address> = Map::from_iter_dedup(full_nodes);
    // The peer set counts this node itself.
    let max_peers = validators.len() + full_nodes.len() + usize::from(!is_validator);

    let runtime_config = runtime::Config::new()
        .with_worker_threads(config.worker_threads.max(1))
        .with_storage_directory(&config.data_dir)
        .with_tcp_nodelay(Some(true))
        .with_catch_panics(false);
    let rpc_address = config.rpc_address;
    let rpc_limits = config.rpc_limits;
    let name = own.map_or_else(|| "full node".to_string(), |v| v.name);
    let rpc_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.rpc_threads.max(1))
        // The state reads that list or search run off the async threads, on as many more:
        // never hundreds, each holding the state's read lock against commits.
        .max_blocking_threads(config.rpc_threads.max(1))
        .thread_name("wetee-rpc")
        .enable_all()
        .build()
        .map_err(|error| ServiceError::Rpc {
            address: rpc_address,
            error,
        })?;
    let rpc_handle = rpc_runtime.handle().clone();
    let outcome = runtime::Runner::new(runtime_config).start(|context| async move {
        let handshake = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: signer.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let peers = std::num::NonZeroUsize::new(max_peers.max(1)).unwrap_or(NZUsize!(1));
        let mailbox = NZUsize!(1_024);
        let p2p = if private {
            lookup::Config::local(
                handshake,
                &namespace,
                p2p_listen,
                peers,
                max_message_size,
                mailbox,
            )
        } else {
            lookup::Config::recommended(
                handshake,
                &namespace,
                p2p_listen,
                peers,
                max_message_size,
                mailbox,
            )
        };
        let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p);
        let _ = oracle.track(
            0,
            commonware_p2p::AddressableTrackedPeers::new(addresses, full_nodes),
        );
        let channels = Channels {
            votes: network.register(channels::VOTES, quotas::VOTES),
            certificates: network.register(channels::CERTIFICATES, quotas::CERTIFICATES),
            resolver: network.register(channels::RESOLVER, quotas::RESOLVER),
            blocks: network.register(channels::BLOCKS, quotas::BLOCKS),
            backfill: network.register(channels::BACKFILL, quotas::BACKFILL),
            transactions: network.register(channels::TRANSACTIONS, quotas::TRANSACTIONS),
        };
        let network = network.start();
        let node = engine::start(
            context.child("node"),
            engine::Config {
                signer,
                spec: Arc::clone(&spec),
                blocker: oracle.clone(),
                peers: oracle.clone(),
                storage_prefix: "chain".into(),
                mempool: MempoolLimits::default(),
                archive_table_size: 1 << 16,
            },
            channels,
        )
        .await?;
        let metrics_context = context.child("metrics");
        let metrics: crate::rpc::MetricsSource = Arc::new(move || metrics_context.encode());
        let module = crate::rpc::module(node.ledger.clone(), Arc::clone(&spec), is_validator);
        // Bound and served on the RPC's own runtime.
        let metrics_address = match config.metrics_address {
            Some(address) => Some(
                rpc_handle
                    .spawn(crate::rpc::serve_metrics(address, metrics))
                    .await
                    .map_err(|join| std::io::Error::other(join.to_string()))
                    .and_then(|served| served)
                    .map_err(|error| ServiceError::Rpc { address, error })?,
            ),
            None => None,
        };
        if let Some(bound) = metrics_address {
            info!(%bound, "metrics listening");
        }
        let (bound, rpc) = rpc_handle
            .spawn(crate::rpc::serve(rpc_address, module, rpc_limits))
            .await
            .map_err(|join| std::io::Error::other(join.to_string()))
            .and_then(|served| served)
            .map_err(|error| ServiceError::Rpc {
                address: rpc_address,
                error,
            })?;
        info!(%bound, "RPC listening");
        started(Started {
            public_key: me_bytes,
            name,
            is_validator,
            rpc_address: bound,
            metrics_address,
            p2p_listen,
        });
        let mut handles = node.handles;
        handles.push(network);
        let stopped = futures::future::select_all(handles);
        futures::pin_mut!(stop);
        let outcome = match futures::future::select(stopped, stop).await {
            futures::future::Either::Left(((result, index, _), _)) => {
                let reason = format!("task {index} ended: {result:?}");
                error!(reason, "a part of the node stopped");
                Err(ServiceError::Stopped(reason))
            }
            futures::future::Either::Right(_) => {
                info!("stopping");
                Ok(())
            }
        };
        let _ = rpc.stop();
        outcome
    });
    // Outside any runtime: dropping one inside another would panic.
    rpc_runtime.shutdown_timeout(Duration::from_secs(5));
    outcome
}
