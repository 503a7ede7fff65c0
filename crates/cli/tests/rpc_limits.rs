//! One address cannot take a node's RPC from everyone else: it holds at most its share of
//! connections, and calls beyond its rate are refused with when to retry, while other addresses
//! are served and the chain goes on. (Loopback is held to the limits here on purpose; callers
//! from 127.0.0.2 are another address.)

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};

use support::{DevNode, eventually, rpc_post};

/// One JSON-RPC request over HTTP to the node on `port`, sent from `source`: the parsed answer,
/// or `None` when the node closed the connection without one.
fn rpc_from(source: IpAddr, port: u16, request: &Value) -> Option<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(source, 0)).expect("bind");
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("connect")
            .into_std()
            .expect("std stream")
    });
    stream.set_nonblocking(false).expect("blocking");
    exchange(stream, request)
}

fn exchange(mut stream: TcpStream, request: &Value) -> Option<Value> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = request.to_string();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Opens a WebSocket to the node at `address`: the socket once the node switched protocols,
/// `None` if it closed the connection instead.
fn websocket(address: SocketAddr) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = [0u8; 512];
    let read = stream.read(&mut answer).ok()?;
    String::from_utf8_lossy(&answer[..read])
        .starts_with("HTTP/1.1 101")
        .then_some(stream)
}

fn health() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "system_health", "params": []})
}

fn height(answer: &Value) -> Option<u64> {
    answer["result"]["finalized"]["height"].as_u64()
}

#[test]
fn one_address_keeps_to_its_share_of_connections_and_calls() {
    let home = tempfile::tempdir().expect("temp dir");
    let node = DevNode::start_with(
        home.path(),
        43_000,
        48_000,
        &[
            "--rpc-limit-loopback",
            "--rpc-connections-per-ip",
            "4",
            "--rpc-calls-per-second",
            "5",
            "--rpc-burst",
            "40",
        ],
    );
    let port = node.port;
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let address = SocketAddr::from(([127, 0, 0, 1], port));

    // Four connections held open: a fifth from the same address is closed unanswered, while
    // another address is served.
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(address).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let fifth = TcpStream::connect(address).expect("the kernel accepts");
    assert_eq!(exchange(fifth, &health()), None);
    let served = rpc_from(other, port, &health()).expect("another address is served");
    assert!(height(&served).is_some(), "{served}");
    // A connection given up frees its place.
    drop(held);
    eventually("a freed connection slot", 30, || {
        rpc_from(local, port, &health()).filter(|a| height(a).is_some())
    });
    // WebSockets count as long as they are open, not only while they upgrade.
    let sockets: Vec<TcpStream> = (0..4)
        .map(|i| websocket(address).unwrap_or_else(|| panic!("WebSocket {i} opens")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        websocket(address).is_none(),
        "a fifth WebSocket from one address is refused"
    );
    drop(sockets);
    eventually("the WebSockets' slots given back", 30, || {
        websocket(address)
    });

    // Calls beyond the rate are refused, saying when to retry; other addresses are served.
    let refused = (0..200)
        .find_map(|_| {
            let answer = rpc_from(local, port, &health()).expect("an answer");
            answer.get("error").is_some().then_some(answer)
        })
        .expect("the rate holds");
    assert_eq!(refused["error"]["code"], 1008, "{refused}");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(message.contains("too many calls"), "{message}");
    let retry_ms = refused["error"]["data"]["retry_after_ms"]
        .as_u64()
        .expect("when to retry");
    assert!((1..=1_000).contains(&retry_ms), "{refused}");
    let before = height(&rpc_from(other, port, &health()).expect("other")).expect("height");
    std::thread::sleep(Duration::from_millis(retry_ms + 50));
    let again = rpc_from(local, port, &health()).expect("an answer");
    assert!(height(&again).is_some(), "after waiting, served: {again}");

    // A batch costing more than an address may ever spend at once says to split it.
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "state_getProof", "params": [[]]}))
        .collect();
    let answer = rpc_from(other, port, &Value::Array(batch)).expect("an answer");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("smaller batches"), "{answer}");

    // The chain went on throughout.
    eventually("the chain to go on", 30, || {
        let (_, body) = rpc_post(port, health().to_string().as_bytes());
        let answer: Value = serde_json::from_str(&body).ok()?;
        height(&answer).filter(|h| *h > before)
    });
}
