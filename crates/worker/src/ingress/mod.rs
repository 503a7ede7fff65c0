//! The worker's one HTTP entrance: a request for `Host: <app-id>.<domain>`, or for the path
//! `/<app-id>/...`, goes to one of the app's ready containers (round robin), whose ports are
//! published on 127.0.0.1 only; requests under `/_wetee/` go to the owner API.
//!
//! The route table is replaced as a whole by the reconciler, and only ever points at
//! containers that answer: during an update it switches to the new version once that one is
//! ready, and the old version is removed only after the switch, so no request is refused.
//!
//! One port serves both plain HTTP and TLS (told apart by the first byte a client sends): TLS
//! with the worker's certificate bound to its attested identity key (`wetee-tls`), plain HTTP for
//! apps whose owners choose it and for `wetee dev`.
//!
//! Built on `hyper`'s server with a timer and `tower-http` layers
//! ([decision 0013](../../../../docs/decisions/0013-ingress.md)): every connection, client and
//! request is bounded ([`IngressLimits`]), so slow, idle or oversized clients are cut without
//! disturbing anyone else's traffic.

mod limits;
mod proxy;
mod route;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

pub use limits::{ClientSlots, IngressLimits};
pub use proxy::{Body, BoxError};
pub use route::Routes;

use crate::owner_api::OwnerApi;
use proxy::{Upstream, plain};
use wetee_types::app_address::app_of_request;

/// After an accept error (out of file descriptors, say), the wait before accepting again: the
/// error lasts until connections close, and retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// On shutdown, how long open requests may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the ingress counted, for tests and logs.
#[derive(Debug, Default)]
pub struct IngressStats {
    /// `accept` calls that failed.
    pub accept_errors: AtomicU64,
    /// Connections closed at once because their client had all its slots.
    pub refused_connections: AtomicU64,
}

/// The ingress: routes, limits and the owner API.
#[derive(Debug)]
pub struct Ingress {
    routes: Arc<Routes>,
    domain: Arc<str>,
    /// The owner API's routes.
    owner: Option<axum::Router>,
    limits: IngressLimits,
    upstream: Upstream,
    stats: IngressStats,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// What a new connection starts with.
enum Opening {
    /// A TLS ClientHello (a handshake record, 0x16).
    Tls,
    /// Anything else: plain HTTP, or garbage hyper answers with 400.
    Plain,
    /// Nothing within the header timeout, or the client left.
    Nothing,
}

async fn opening(stream: &TcpStream, within: Duration) -> Opening {
    let mut first = [0u8; 1];
    match tokio::time::timeout(within, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == 0x16 => Opening::Tls,
        Ok(Ok(1)) => Opening::Plain,
        _ => Opening::Nothing,
    }
}

impl Ingress {
    /// An ingress for apps at `<id>.<domain>`, to the containers `routes` names.
    pub fn new(routes: Arc<Routes>, domain: &str, limits: IngressLimits) -> Ingress {
        Ingress {
            routes,
            domain: domain.into(),
            owner: None,
            limits,
            upstream: Upstream::default(),
            stats: IngressStats::default(),
            tls: None,
        }
    }

    /// Serves TLS too, with `config` (the worker's bound certificate).
    pub fn with_tls(mut self, config: Arc<rustls::ServerConfig>) -> Ingress {
        self.tls = Some(config);
        self
    }

    /// Serves the owner API under `/_wetee/` too.
    pub fn with_owner_api(mut self, owner: Arc<OwnerApi>) -> Ingress {
        self.owner = Some(owner.router());
        self
    }

    /// What it counted.
    pub fn stats(&self) -> &IngressStats {
        &self.stats
    }

    /// Serves on `listener` until `shutdown` completes, then lets open requests finish for a
    /// few seconds.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let limits = self.limits;
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout())
            .max_header_size(limits.max_header_bytes);
        let connections = Arc::new(Semaphore::new(limits.max_connections));
        let clients = ClientSlots::new(limits.max_connections_per_ip);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&connections).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        let errors = self.stats.accept_errors.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::warn!(%error, errors, "the ingress cannot accept a connection");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let Some(slot) = clients.enter(peer.ip()) else {
                self.stats
                    .refused_connections
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (ingress, http, watcher) = (Arc::clone(&self), http.clone(), graceful.watcher());
            tokio::spawn(async move {
                let _held = (slot, permit);
                // `secure`: whether the connection is TLS, which the owner API requires when the
                // worker serves it.
                let service = |secure: bool| {
                    let ingress = Arc::clone(&ingress);
                    TowerToHyperService::new(
                        ServiceBuilder::new()
                            .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
                            .layer(RequestBodyTimeoutLayer::new(limits.body_timeout()))
                            .layer(TimeoutLayer::with_status_code(
                                StatusCode::GATEWAY_TIMEOUT,
                                limits.response_timeout(),
                            ))
                            .service_fn(move |request| {
                                let ingress = Arc::clone(&ingress);
                                async move {
                                    Ok::<_, Infallible>(ingress.handle(request, secure).await)
                                }
                            }),
                    )
                };
                let opened = opening(&stream, limits.header_timeout()).await;
                // A client that stops reading an answer stalls the writes: closed after the
                // write timeout (TLS records included), instead of holding its slot for ever.
                let mut guarded = tokio_io_timeout::TimeoutStream::new(stream);
                guarded.set_write_timeout(Some(limits.write_timeout()));
                let stream = Box::pin(guarded);
                match (opened, &ingress.tls) {
                    (Opening::Nothing, _) => {}
                    (Opening::Tls, Some(tls)) => {
                        let handshake =
                            tokio_rustls::TlsAcceptor::from(Arc::clone(tls)).accept(stream);
                        // A handshake is bounded like a request head.
                        if let Ok(Ok(stream)) =
                            tokio::time::timeout(limits.header_timeout(), handshake).await
                        {
                            let connection =
                                http.serve_connection(TokioIo::new(stream), service(true));
                            let _ = watcher.watch(connection).await;
                        }
                    }
                    _ => {
                        let connection =
                            http.serve_connection(TokioIo::new(stream), service(false));
                        let _ = watcher.watch(connection).await;
                    }
                }
            });
        }
        drop(listener);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    }

    /// Answers one request, which came over TLS if `secure`.
    async fn handle<B>(&self, request: Request<B>, secure: bool) -> Response<Body>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if let Some(owner) = &self.owner
            && request.uri().path().starts_with(crate::owner_api::PREFIX)
        {
            // Owners' requests and the worker's answers (logs) never cross in the clear where
            // TLS bound to the worker is offered.
            if self.tls.is_some() && !secure {
                return plain(
                    StatusCode::FORBIDDEN,
                    "the owner API is served over TLS only: use the worker's https:// endpoint\n",
                );
            }
            // Owner-API requests carry no body: none is read.
            let (parts, _) = request.into_parts();
            let routed = Request::from_parts(parts, axum::body::Body::empty());
            let response = tower::ServiceExt::oneshot(owner.clone(), routed)
                .await
                .unwrap_or_else(|never| match never {});
            return response.map(|body| body.map_err(BoxError::from).boxed_unsync());
        }
        let host = request
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok());
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let Some((app, forwarded)) = app_of_request(host, path, &self.domain) else {
            return plain(
                StatusCode::NOT_FOUND,
                format!(
                    "no app here: use Host <app-id>.{} or the path /<app-id>/\n",
                    self.domain
                ),
            );
        };
        let Some(target) = self.routes.pick(app) else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("app {app} is not running on this worker\n"),
            );
        };
        let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
        self.upstream
            .forward(app, target, &forwarded, request)
            .await
    }
}
