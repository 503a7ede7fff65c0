//! The console's server on a real socket: the app's page at `/` and at any app route, its
//! files with their types, `/config.json`, and a clear 404 for a file of another build.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wetee_console::{ConsoleConfig, serve};

async fn get(address: std::net::SocketAddr, path: &str) -> (String, String) {
    request(
        address,
        &format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"),
    )
    .await
}

async fn post(
    address: std::net::SocketAddr,
    path: &str,
    headers: &str,
    body: &str,
) -> (String, String) {
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\ncontent-length: {}\r\n{headers}\r\n",
        body.len()
    );
    request(address, &format!("{head}{body}")).await
}

async fn request(address: std::net::SocketAddr, text: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_ascii_lowercase(), body.to_string())
}

/// A console for a dev chain at the default RPC address, on a free port.
async fn start() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = ConsoleConfig {
        rpc: "ws://127.0.0.1:9944".into(),
        dev: true,
        genesis: None,
    };
    tokio::spawn(serve(listener, config, None, std::future::pending()));
    address
}

#[tokio::test]
async fn the_console_serves_its_page_files_and_configuration() {
    let address = start().await;

    let (head, page) = get(address, "/").await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(page.contains("<div id=\"app\">"), "{page}");
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    // An app route is the same page: the app routes in the browser.
    let (head, routed) = get(address, "/apps/7").await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert_eq!(routed, page);

    // The page's script, as the page names it.
    let script = page
        .split('"')
        .find(|part| part.starts_with("/assets/") && part.ends_with(".js"))
        .expect("the page loads a script");
    let (head, body) = get(address, script).await;
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(head.contains("immutable"), "{head}");
    assert!(!body.is_empty());
    let (head, _) = get(address, "/assets/from-another-build.js").await;
    assert!(head.starts_with("http/1.0 404"), "{head}");

    let (head, body) = get(address, "/config.json").await;
    assert!(head.contains("content-type: application/json"), "{head}");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        config,
        serde_json::json!({ "rpc": "ws://127.0.0.1:9944", "dev": true, "genesis": null })
    );
}

#[tokio::test]
async fn the_api_answers_only_the_consoles_own_page() {
    let address = start().await;
    let manifest = "kind = \"app\"\nname = \"x\"\n";

    // A form on another site can post here, but cannot add a header without a preflight.
    let (head, body) = post(address, "/api/manifest", "", manifest).await;
    assert!(head.starts_with("http/1.0 403"), "{head}");
    assert!(body.contains("x-wetee-console"), "{body}");

    let (head, body) = post(address, "/api/manifest", "x-wetee-console: 1\r\n", manifest).await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    let problems: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        problems["problems"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{body}"
    );

    // A site rebound to 127.0.0.1 sends its own name as the host.
    let rebound = format!(
        "POST /api/manifest HTTP/1.0\r\nHost: evil.example:9955\r\nx-wetee-console: 1\r\n\
         content-length: {}\r\n\r\n{manifest}",
        manifest.len()
    );
    let (head, body) = request(address, &rebound).await;
    assert!(head.starts_with("http/1.0 403"), "{head}");
    assert!(body.contains("evil.example"), "{body}");

    let huge = "#".repeat(wetee_console::MAX_MANIFEST_BYTES + 1);
    let (head, _) = post(address, "/api/manifest", "x-wetee-console: 1\r\n", &huge).await;
    assert!(head.starts_with("http/1.0 413"), "{head}");
}

#[tokio::test]
async fn what_must_be_proven_is_refused_without_a_chain_to_trust() {
    let address = start().await;
    let api = |path: &str| {
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nx-wetee-console: 1\r\n\r\n")
    };
    for path in [
        "/api/workers/1/trust",
        "/api/apps/1/seal-target?owner=0x0101010101010101010101010101010101010101010101010101010101010101",
        "/api/owner/1/apps/1/logs?follow=1",
        "/api/accounts/0x0101010101010101010101010101010101010101010101010101010101010101/sealing-key",
    ] {
        let (head, body) = request(address, &api(path)).await;
        assert!(head.starts_with("http/1.0 503"), "{path}: {head}");
        assert!(body.contains("--genesis-hash"), "{path}: {body}");
    }
    // Only a workload's logs and an app's status are relayed, whatever the chain.
    let (head, body) = request(address, &api("/api/owner/1/apps/1/secrets")).await;
    assert!(head.starts_with("http/1.0 404"), "{head}");
    assert!(body.contains("logs"), "{body}");
}
