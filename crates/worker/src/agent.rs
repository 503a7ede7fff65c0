//! The worker's main loop: register if needed, then reconcile at every finalized block (and
//! every few seconds, so restarts with backoff happen without new blocks), reconnecting to the
//! node whenever the connection drops.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use wetee_client::rpc::Client;
use wetee_types::Keypair;

use crate::backend::BackendError;
use crate::backend::docker::DockerBackend;
use crate::chain::{ChainError, desired_instances, ensure_registered};
use crate::config::{BackendKind, WorkerConfig};
use crate::identity::{IdentityError, WorkerIdentity};
use crate::ingress::Routes;
use crate::reconcile::Reconciler;

/// How often the worker reconciles without a new block.
pub const RESYNC: Duration = Duration::from_secs(2);

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The keys could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The backend could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The chain refused the worker.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The ingress cannot listen.
    #[error("the ingress cannot listen on {address}: {error}")]
    Ingress {
        /// Where.
        address: std::net::SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the worker announces once it runs.
#[derive(Debug, Clone)]
pub struct Running {
    /// Its id on chain.
    pub worker: wetee_types::WorkerId,
    /// Its identity key.
    pub identity: wetee_types::AccountId,
    /// The engine it drives.
    pub engine: String,
    /// Where its ingress listens.
    pub ingress: std::net::SocketAddr,
}

/// Runs the worker until `stop` completes. `started` hears once it is registered.
pub async fn run(
    config: WorkerConfig,
    rpc: &str,
    operator: Keypair,
    stop: impl Future<Output = ()>,
    started: impl FnOnce(Running),
) -> Result<(), AgentError> {
    let identity = WorkerIdentity::load_or_create(&config.data_dir)?;
    let backend = match config.backend.kind {
        BackendKind::Docker => {
            let scope = hex::encode(identity.keys().identity);
            DockerBackend::connect(config.backend.socket.as_deref(), &scope).await?
        }
    };
    let engine = backend.describe().await?;
    let listener = tokio::net::TcpListener::bind(config.ingress.listen)
        .await
        .map_err(|error| AgentError::Ingress {
            address: config.ingress.listen,
            error,
        })?;
    let ingress = listener.local_addr().unwrap_or(config.ingress.listen);
    let client = Client::connect(rpc).await.map_err(ChainError::from)?;
    let worker = ensure_registered(&client, &operator, &identity, &config).await?;
    let routes = Arc::new(Routes::default());
    let serving = tokio::spawn(crate::ingress::serve(
        listener,
        Arc::clone(&routes),
        config.ingress.domain.clone(),
    ));
    let _stop_serving = AbortOnDrop(serving);
    started(Running {
        worker,
        identity: identity.identity().account_id(),
        engine,
        ingress,
    });
    let mut reconciler = Reconciler::new(backend).with_routes(routes);
    let mut client = Some(client);
    let stop = stop.fuse();
    futures::pin_mut!(stop);
    loop {
        let Some(connected) = client.as_ref() else {
            // Reconnect, keeping what runs running meanwhile.
            match Client::connect(rpc).await {
                Ok(fresh) => client = Some(fresh),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the node; retrying");
                    futures::select! {
                        _ = tokio::time::sleep(RESYNC).fuse() => {}
                        _ = stop => return Ok(()),
                    }
                }
            }
            continue;
        };
        let mut heads = match connected.finalized_heads().await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "lost the node");
                client = None;
                continue;
            }
        };
        loop {
            match desired_instances(connected, worker).await {
                Ok(desired) => match reconciler.reconcile(&desired).await {
                    Ok(pass) if !pass.is_quiet() => {
                        tracing::info!(
                            started = pass.started.len(),
                            removed = pass.removed.len(),
                            failed = pass.failed.len(),
                            "reconciled"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "the backend failed; retrying"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the chain");
                    client = None;
                    break;
                }
            }
            futures::select! {
                head = heads.next().fuse() => if head.is_none() {
                    client = None;
                    break;
                },
                _ = tokio::time::sleep(RESYNC).fuse() => {}
                _ = stop => return Ok(()),
            }
        }
    }
}
