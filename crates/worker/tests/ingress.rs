//! The ingress under abuse, with an app served by an in-process HTTP server: idle, slowloris
//! and oversized clients are cut with the right status while a normal client keeps getting
//! answers, and nothing malformed makes it panic or disturbs others.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use wetee_types::AppId;
use wetee_worker::ingress::{Ingress, IngressLimits, Routes};

/// An app: `/` answers `ok`, `/echo` the length of the body it read, `/slow` after 30 s,
/// `/big` 64 MiB.
async fn app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let text = match request.uri().path() {
                            "/echo" => {
                                let body = request.into_body().collect().await?.to_bytes();
                                format!("read {}", body.len())
                            }
                            "/slow" => {
                                tokio::time::sleep(Duration::from_secs(30)).await;
                                "late".into()
                            }
                            "/big" => "x".repeat(64 << 20),
                            _ => "ok".into(),
                        };
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(text))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

const LIMITS: IngressLimits = IngressLimits {
    max_connections: 4096,
    max_connections_per_ip: 256,
    header_timeout_ms: 1_000,
    body_timeout_ms: 1_000,
    response_timeout_ms: 1_500,
    write_timeout_ms: 1_000,
    max_body_bytes: 1 << 20,
    max_header_bytes: 8 << 10,
};

/// An ingress routing app 1 to `app`; its address and handle.
async fn ingress(app: SocketAddr, limits: IngressLimits) -> (SocketAddr, Arc<Ingress>) {
    let routes = Arc::new(Routes::default());
    routes.replace(BTreeMap::from([(AppId(1), vec![app])]));
    let ingress = Arc::new(Ingress::new(routes, "localhost", limits));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(Arc::clone(&ingress).serve(listener, std::future::pending()));
    (address, ingress)
}

/// Sends `raw` on a new connection from 127.0.0.1 and reads the answer to its end.
async fn exchange(address: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("none")
}

/// A connection to `address` from `source` (another loopback address: another client).
async fn connect_from(source: &str, address: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    socket.connect(address).await.ok()
}

/// Whether the server closed `stream` within `within`.
async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 256];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut byte)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A status line (408 and the like) before closing.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_clients_are_cut_while_a_normal_client_is_served() {
    let (address, ingress) = ingress(app().await, LIMITS).await;

    // 2,000 idle connections from one address (only its share is accepted) and 200 slowloris
    // connections from another, sending a header line every 300 ms.
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        if let Some(stream) = connect_from("127.0.0.2", address).await {
            idle.push(stream);
        }
    }
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = connect_from("127.0.0.3", address).await.expect("connects");
        stream
            .write_all(b"GET /1/ HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let dripping = tokio::spawn(async move {
        let mut cut = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cut = 0;
            for stream in &mut slow {
                if stream.write_all(b"X-Drip: 1\r\n").await.is_err() {
                    cut += 1;
                }
            }
        }
        (cut, slow)
    });

    // Meanwhile, a normal client.
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let answer = exchange(
            address,
            b"GET /1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        latencies.push(started.elapsed());
        assert_eq!(status(&answer), "200", "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
    }
    latencies.sort();
    println!(
        "normal client under attack: p50 {:?}, p99 {:?} over {} requests",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
        latencies.len()
    );

    // Each idle connection is closed: at once past the address's share, else by the timeout.
    let refused = ingress
        .stats()
        .refused_connections
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        refused >= 2_000 - 256,
        "{refused} connections refused past the share"
    );
    for stream in &mut idle {
        assert!(
            closed(stream, Duration::from_secs(5)).await,
            "an idle connection stayed open"
        );
    }
    // And the slowloris ones, though they keep sending.
    let (cut, mut slow) = dripping.await.unwrap();
    assert_eq!(cut, 200, "slowloris connections kept open");
    for stream in &mut slow {
        assert!(closed(stream, Duration::from_secs(5)).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_slow_requests_get_their_status() {
    let (address, _ingress) = ingress(app().await, LIMITS).await;
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("garbage", b"GARBAGE\r\n\r\n".to_vec(), "400"),
        (
            "an unknown app",
            b"GET /2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            "503",
        ),
        (
            "no app named",
            b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".to_vec(),
            "404",
        ),
        (
            "a declared body over the limit",
            format!(
                "POST /1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                2 << 20
            )
            .into_bytes(),
            "413",
        ),
        (
            "a head over the limit",
            format!(
                "GET /1/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
                "a".repeat(16 << 10)
            )
            .into_bytes(),
            "431",
        ),
        (
            "an app that does not answer",
            b"GET /1/slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            "504",
        ),
    ];
    for (what, raw, expected) in cases {
        let answer = exchange(address, &raw).await;
        assert_eq!(status(&answer), expected, "{what}: {answer}");
    }

    // A chunked body that grows past the limit.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"POST /1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
    for _ in 0..20 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status(&answer), "413", "{answer}");

    // A body that stops coming.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"POST /1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status(&answer), "408", "{answer}");

    // And a body within the limit reaches the app whole.
    let body = "b".repeat(100_000);
    let answer = exchange(
        address,
        format!(
            "POST /echo HTTP/1.1\r\nHost: 1.localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert!(answer.ends_with("read 100000"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_and_its_slot_freed() {
    let app = app().await;
    let limits = IngressLimits {
        max_connections_per_ip: 1,
        ..LIMITS
    };
    let (address, _ingress) = ingress(app, limits).await;
    // Asks for 64 MiB and reads none of it: the ingress's writes stall.
    let mut stalled = connect_from("127.0.0.3", address).await.unwrap();
    stalled
        .write_all(b"GET /1/big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Its one slot is taken: another connection from it is closed at once.
    let mut second = connect_from("127.0.0.3", address).await.unwrap();
    assert!(closed(&mut second, Duration::from_millis(500)).await);
    // After the write timeout the stalled connection is gone, and the client is served again.
    let served = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Some(mut stream) = connect_from("127.0.0.3", address).await else {
                continue;
            };
            let _ = stream
                .write_all(b"GET /1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            if String::from_utf8_lossy(&answer).contains(" 200 ") {
                return;
            }
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .is_ok(),
        "the stalled client still holds its slot"
    );
}
