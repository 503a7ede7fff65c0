//! `wetee bench ingress`: what the worker's ingress costs a request. The same app (an HTTP
//! server answering `ok`, in this process or, with `--container`, in a container the worker's
//! engine backend starts) is asked directly, through the ingress in plain HTTP, and through the
//! ingress over TLS bound to a worker key (`wetee-tls`), by 1 and by 64 clients at once, each on
//! its own kept-alive connection, side by side in one run; then once more through the ingress
//! while 2,000 idle and 200 slowloris connections (from other loopback addresses) hold on to it.

mod container_app;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use wetee_types::{AppId, Hash, KeyScheme, Keypair};
use wetee_worker::ingress::{Ingress, IngressLimits, Routes};

use crate::bench::machine;
use crate::output::{Format, print};

/// What `wetee bench ingress` needs.
#[derive(Debug, Args)]
pub struct IngressBenchArgs {
    /// Seconds each path is measured for, at each number of clients.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// How many clients at once, each on its own kept-alive connection.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    clients: Vec<usize>,
    /// Serve the app from a container on the local Podman or Docker, started the way the worker
    /// starts one (its own network, no capabilities, a port published on 127.0.0.1), instead of
    /// in this process: "direct" is then a connection to the container's published port.
    #[arg(long)]
    container: bool,
}

/// What `wetee bench ingress-app` needs: the app the containerized benchmark runs.
#[derive(Debug, Args)]
pub struct IngressAppArgs {
    /// The port to answer on, on every address.
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

/// How a request reaches the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Path {
    /// Straight to the app.
    Direct,
    /// Through the ingress, plain HTTP.
    Ingress,
    /// Through the ingress, TLS bound to the worker's key.
    IngressTls,
    /// Through the ingress, plain HTTP, while idle and slowloris clients hold connections.
    IngressUnderAttack,
}

#[derive(Debug, Serialize)]
struct Measured {
    path: Path,
    clients: usize,
    requests: usize,
    requests_per_second: f64,
    p50_us: u64,
    p99_us: u64,
}

#[derive(Debug, Serialize)]
struct IngressReport {
    machine: String,
    seconds: u64,
    /// Where the app ran: `process` or `container`.
    app: &'static str,
    measured: Vec<Measured>,
    /// TLS through the ingress against the direct connection, p50 over p50, by clients.
    tls_over_direct_p50: BTreeMap<usize, f64>,
}

/// `wetee bench ingress`.
pub fn ingress(args: IngressBenchArgs, format: Format) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(&args))?;
    print(format, &report, || text(&report));
    Ok(())
}

/// `wetee bench ingress-app`: answers `ok` to every request until killed.
pub fn ingress_app(args: IngressAppArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, args.port)).await?;
        serve_ok(listener).await;
        Ok(())
    })
}

async fn run(args: &IngressBenchArgs) -> Result<IngressReport> {
    let mut container = None;
    let app = if args.container {
        let (running, address) = container_app::start().await?;
        container = Some(running);
        address
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(serve_ok(listener));
        address
    };
    let report = measure_all(args, app).await;
    if let Some(container) = container {
        container.remove().await;
    }
    report
}

async fn measure_all(args: &IngressBenchArgs, app: SocketAddr) -> Result<IngressReport> {
    let routes = Arc::new(Routes::default());
    routes.replace(BTreeMap::from([(AppId(1), vec![app])]));
    let identity = Keypair::from_seed(KeyScheme::Ed25519, [42; 32]);
    let genesis = Hash([1; 32]);
    let expected = wetee_tls::ExpectedWorker {
        genesis_hash: genesis,
        identity: identity.account_id(),
        evidence_hash: Hash::default(),
    };
    let certificate =
        wetee_tls::WorkerCertificate::issue(&identity, genesis, expected.evidence_hash, u64::MAX)?;
    let limits = IngressLimits {
        max_connections_per_ip: 4_096,
        ..IngressLimits::default()
    };
    let ingress = Ingress::new(routes, "localhost", limits).with_tls(certificate.server_config()?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let ingress_address = listener.local_addr()?;
    tokio::spawn(Arc::new(ingress).serve(listener, std::future::pending()));
    let tls = Arc::new(wetee_tls::WorkerVerifier::new(expected).client_config()?);
    let mut measured = Vec::new();
    for &clients in &args.clients {
        for path in [Path::Direct, Path::Ingress, Path::IngressTls] {
            let (address, target) = match path {
                Path::Direct => (app, "/"),
                Path::Ingress | Path::IngressTls | Path::IngressUnderAttack => {
                    (ingress_address, "/1/")
                }
            };
            let tls = (path == Path::IngressTls).then(|| Arc::clone(&tls));
            measured.push(measure(path, address, target, tls, clients, args.seconds).await?);
        }
    }
    let attackers = attack(ingress_address).await;
    measured.push(
        measure(
            Path::IngressUnderAttack,
            ingress_address,
            "/1/",
            None,
            1,
            args.seconds,
        )
        .await?,
    );
    drop(attackers);
    let p50 = |path, clients| {
        measured
            .iter()
            .find(|m| m.path == path && m.clients == clients)
            .map_or(0, |m| m.p50_us)
    };
    let tls_over_direct_p50 = args
        .clients
        .iter()
        .map(|&clients| {
            let direct = p50(Path::Direct, clients).max(1) as f64;
            (clients, p50(Path::IngressTls, clients) as f64 / direct)
        })
        .collect();
    Ok(IngressReport {
        machine: machine(),
        seconds: args.seconds,
        app: if args.container {
            "container"
        } else {
            "process"
        },
        measured,
        tls_over_direct_p50,
    })
}

/// 2,000 idle connections from 127.0.0.2 and 200 from 127.0.0.3 that send a header line every
/// second; the dripping stops when the returned task is dropped.
async fn attack(ingress: SocketAddr) -> AbortOnDrop {
    use tokio::io::AsyncWriteExt as _;
    let connect = |source: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(format!("{source}:0").parse().ok()?).ok()?;
        socket.connect(ingress).await.ok()
    };
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        idle.extend(connect("127.0.0.2").await);
    }
    let mut slow = Vec::new();
    for _ in 0..200 {
        if let Some(mut stream) = connect("127.0.0.3").await {
            let _ = stream.write_all(b"GET /1/ HTTP/1.1\r\nHost: x\r\n").await;
            slow.push(stream);
        }
    }
    AbortOnDrop(tokio::spawn(async move {
        let _idle = idle;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for stream in &mut slow {
                let _ = stream.write_all(b"X-Drip: 1\r\n").await;
            }
        }
    }))
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The app: answers `ok` to anything, keeping connections alive.
/// The app: `ok` to every request, on kept-alive connections.
async fn serve_ok(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors: give clients time to leave.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_request| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"ok",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `clients` clients asking `target` at `address` for `seconds`; every latency in microseconds.
async fn measure(
    path: Path,
    address: SocketAddr,
    target: &'static str,
    tls: Option<Arc<rustls::ClientConfig>>,
    clients: usize,
    seconds: u64,
) -> Result<Measured> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            client(address, target, tls, deadline).await
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("a client failed")??);
    }
    latencies.sort_unstable();
    let at = |p: usize| {
        latencies
            .get(latencies.len() * p / 100)
            .copied()
            .unwrap_or(0)
    };
    Ok(Measured {
        path,
        clients,
        requests: latencies.len(),
        requests_per_second: latencies.len() as f64 / seconds.max(1) as f64,
        p50_us: at(50),
        p99_us: at(99),
    })
}

/// One client on one kept-alive connection until `deadline`.
async fn client(
    address: SocketAddr,
    target: &'static str,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> Result<Vec<u64>> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::new();
    macro_rules! ask {
        ($io:expr) => {{
            let (mut sender, connection) = hyper::client::conn::http1::handshake($io).await?;
            tokio::spawn(connection);
            while Instant::now() < deadline {
                let started = Instant::now();
                let request = Request::get(target)
                    .header(hyper::header::HOST, "localhost")
                    .body(Empty::<Bytes>::new())?;
                let response = sender.send_request(request).await?;
                anyhow::ensure!(response.status() == 200, "HTTP {}", response.status());
                response.into_body().collect().await?;
                latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
        }};
    }
    match tls {
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("worker.invalid")?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await?;
            ask!(TokioIo::new(stream));
        }
        None => ask!(TokioIo::new(stream)),
    }
    Ok(latencies)
}

fn text(report: &IngressReport) -> String {
    let mut out = format!(
        "{} s per path, app in a {}, {}\n{:<12} {:>8} {:>10} {:>10} {:>9} {:>9}\n",
        report.seconds,
        report.app,
        report.machine,
        "path",
        "clients",
        "requests",
        "req/s",
        "p50 µs",
        "p99 µs"
    );
    for m in &report.measured {
        let path = match m.path {
            Path::Direct => "direct",
            Path::Ingress => "ingress",
            Path::IngressTls => "ingress+tls",
            Path::IngressUnderAttack => "attacked",
        };
        out.push_str(&format!(
            "{path:<12} {:>8} {:>10} {:>10.0} {:>9} {:>9}\n",
            m.clients, m.requests, m.requests_per_second, m.p50_us, m.p99_us
        ));
    }
    for (clients, ratio) in &report.tls_over_direct_p50 {
        out.push_str(&format!(
            "TLS ingress p50 / direct p50 at {clients} client(s): {ratio:.2}x\n"
        ));
    }
    out
}
