//! A node's Prometheus metrics are served on a listener of their own, never on its RPC port:
//! an operator can keep them private while the RPC is public.

mod support;

use std::net::SocketAddr;

use support::{DevNode, http_exchange};

/// `GET path` from `address`: the status code and the body.
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    http_exchange(address, &format!("GET {path} HTTP/1.1"), &[])
}

#[test]
fn metrics_are_served_on_their_own_listener_and_not_on_the_rpc_port() {
    let home = tempfile::tempdir().expect("temp dir");
    let node = DevNode::start(home.path(), 42_000, 47_000);
    let url = node.banner["metrics"]
        .as_str()
        .unwrap_or_else(|| panic!("no metrics address in {}", node.banner));
    let address: SocketAddr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("not an http://ADDRESS/metrics URL: {url}"));
    assert_ne!(address.port(), node.port);

    let (status, body) = get(address, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("# TYPE"),
        "not the Prometheus text format: {body}"
    );

    let rpc = SocketAddr::from(([127, 0, 0, 1], node.port));
    let (status, body) = get(rpc, "/metrics");
    assert!(
        !body.contains("# TYPE"),
        "the RPC port serves metrics ({status}): {body}"
    );
}
