//! The worker's one HTTP entrance: a request for `Host: <app-id>.<domain>`, or for the path
//! `/<app-id>/...`, goes to one of the app's ready containers (round robin), whose ports are
//! published on 127.0.0.1 only.
//!
//! The route table is replaced as a whole by the reconciler, and only ever points at
//! containers that answer: during an update it switches to the new version once that one is
//! ready, and the old version is removed only after the switch, so no request is refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use wetee_types::AppId;

use crate::owner_api::OwnerApi;

/// Where each app's traffic goes.
#[derive(Debug, Default)]
pub struct Routes {
    table: RwLock<BTreeMap<AppId, Vec<SocketAddr>>>,
    next: AtomicUsize,
}

impl Routes {
    /// Replaces the whole table.
    pub fn replace(&self, table: BTreeMap<AppId, Vec<SocketAddr>>) {
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = table;
    }

    /// The current table.
    pub fn snapshot(&self) -> BTreeMap<AppId, Vec<SocketAddr>> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The next backend of `app`.
    pub fn pick(&self, app: AppId) -> Option<SocketAddr> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let targets = table.get(&app).filter(|t| !t.is_empty())?;
        let index = self.next.fetch_add(1, Ordering::Relaxed) % targets.len();
        targets.get(index).copied()
    }
}

/// Which app a request is for, and the path to send it (the `/<app-id>` prefix removed).
pub fn route_of(host: Option<&str>, path_and_query: &str, domain: &str) -> Option<(AppId, String)> {
    if let Some(host) = host {
        let host = host.split(':').next().unwrap_or(host);
        if let Some(label) = host
            .strip_suffix(domain)
            .and_then(|rest| rest.strip_suffix('.'))
            && let Ok(id) = label.parse::<u64>()
        {
            return Some((AppId(id), path_and_query.to_string()));
        }
    }
    let rest = path_and_query.strip_prefix('/')?;
    let (first, remainder) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let id = first.parse::<u64>().ok()?;
    let forwarded = if remainder.starts_with('/') {
        remainder.to_string()
    } else {
        format!("/{remainder}")
    };
    Some((AppId(id), forwarded))
}

type Body = BoxBody<Bytes, hyper::Error>;

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

async fn forward(
    mut request: Request<Incoming>,
    routes: Arc<Routes>,
    domain: Arc<str>,
    owner: Option<Arc<OwnerApi>>,
) -> Result<Response<Body>, hyper::Error> {
    if let Some(owner) = &owner
        && request.uri().path().starts_with(crate::owner_api::PREFIX)
    {
        return Ok(owner.handle(&request).await);
    }
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let Some((app, forwarded)) = route_of(host.as_deref(), &path, &domain) else {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            format!("no app here: use Host <app-id>.{domain} or the path /<app-id>/\n"),
        ));
    };
    let Some(target) = routes.pick(app) else {
        return Ok(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("app {app} is not running on this worker\n"),
        ));
    };
    let Ok(uri) = forwarded.parse() else {
        return Ok(plain(StatusCode::BAD_REQUEST, "bad path\n".into()));
    };
    *request.uri_mut() = uri;
    let stream = match TcpStream::connect(target).await {
        Ok(stream) => stream,
        Err(e) => {
            return Ok(plain(
                StatusCode::BAD_GATEWAY,
                format!("app {app} does not answer: {e}\n"),
            ));
        }
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => {
                return Ok(plain(
                    StatusCode::BAD_GATEWAY,
                    format!("app {app} does not speak HTTP: {e}\n"),
                ));
            }
        };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    match sender.send_request(request).await {
        Ok(response) => Ok(response.map(|body| body.boxed())),
        Err(e) => Ok(plain(
            StatusCode::BAD_GATEWAY,
            format!("app {app} failed to answer: {e}\n"),
        )),
    }
}

/// Serves the ingress (and the owner API, when given) on `listener` until the task is
/// dropped.
pub async fn serve(
    listener: TcpListener,
    routes: Arc<Routes>,
    domain: String,
    owner: Option<Arc<OwnerApi>>,
) {
    let domain: Arc<str> = domain.into();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let routes = Arc::clone(&routes);
        let domain = Arc::clone(&domain);
        let owner = owner.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                forward(
                    request,
                    Arc::clone(&routes),
                    Arc::clone(&domain),
                    owner.clone(),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_host_or_by_path() {
        let domain = "apps.local";
        assert_eq!(
            route_of(Some("7.apps.local:8800"), "/x?y=1", domain),
            Some((AppId(7), "/x?y=1".into()))
        );
        assert_eq!(
            route_of(Some("127.0.0.1:8800"), "/7/x?y=1", domain),
            Some((AppId(7), "/x?y=1".into()))
        );
        assert_eq!(route_of(None, "/7", domain), Some((AppId(7), "/".into())));
        assert_eq!(
            route_of(None, "/7?q", domain),
            Some((AppId(7), "/?q".into()))
        );
        assert_eq!(route_of(Some("evil.apps.local"), "/", domain), None);
        assert_eq!(route_of(None, "/favicon.ico", domain), None);
    }

    #[test]
    fn traffic_is_spread_over_the_ready_replicas() {
        let routes = Routes::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        routes.replace(BTreeMap::from([(AppId(1), vec![a, b])]));
        let picks: Vec<_> = (0..4).filter_map(|_| routes.pick(AppId(1))).collect();
        assert_eq!(picks.iter().filter(|p| **p == a).count(), 2);
        assert_eq!(routes.pick(AppId(2)), None);
    }
}
