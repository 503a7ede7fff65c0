//! Forwarding a request to an app's container over a pool of kept-alive connections
//! (`hyper-util`'s client), and the status a client gets when that fails.

use std::error::Error as _;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wetee_types::AppId;

/// Errors of bodies passing through the ingress.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A body passing through the ingress.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// How long a kept-alive connection to a container may stay unused.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Kept-alive connections per container: as many as one IP may hold to the ingress, so that a
/// busy client's concurrent requests find their connections again. With 32, 64 clients made the
/// ingress open a new connection for half of their requests (docs/benchmarks.md: a quarter of a
/// direct connection's throughput, against a third with 256); unused ones close after
/// `POOL_IDLE`.
const POOL_PER_CONTAINER: usize = 256;
/// A container must accept a connection within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A response with a plain-text body.
pub fn plain(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let body = http_body_util::Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The containers' side of the ingress.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Body>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").finish_non_exhaustive()
    }
}

impl Default for Upstream {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_PER_CONTAINER)
            .build(connector);
        Upstream { client }
    }
}

impl Upstream {
    /// Sends `request` (its path already the app's own) to `app`'s container at `target`.
    pub async fn forward(
        &self,
        app: AppId,
        target: SocketAddr,
        path_and_query: &str,
        request: Request<Body>,
    ) -> Response<Body> {
        let Ok(uri) = format!("http://{target}{path_and_query}").parse() else {
            return plain(StatusCode::BAD_REQUEST, "bad path\n");
        };
        let (mut parts, body) = request.into_parts();
        parts.uri = uri;
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => response.map(|body| body.map_err(BoxError::from).boxed_unsync()),
            Err(error) => failure(app, &error),
        }
    }
}

/// What the client is told when forwarding failed: its own fault (a body too large or too
/// slow) or the app's.
fn failure(app: AppId, error: &hyper_util::client::legacy::Error) -> Response<Body> {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        if cause.is::<tower_http::timeout::TimeoutError>() {
            return plain(StatusCode::REQUEST_TIMEOUT, "request body too slow\n");
        }
        source = cause.source();
    }
    if error.is_connect() {
        return plain(
            StatusCode::BAD_GATEWAY,
            format!("app {app} does not accept connections\n"),
        );
    }
    plain(
        StatusCode::BAD_GATEWAY,
        format!("app {app} failed to answer\n"),
    )
}
