//! The ingress when the process runs out of file descriptors: `accept` fails while connections
//! wait in the kernel's queue, and the accept loop must wait, not spin, then serve again once
//! descriptors are free. Its own test binary: it lowers the whole process's limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rustix::process::{Resource, getrlimit, setrlimit};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use wetee_types::AppId;
use wetee_worker::ingress::{Ingress, IngressLimits, Routes};

fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accept_loop_waits_while_descriptors_run_out_and_serves_again() {
    let routes = Arc::new(Routes::default());
    routes.replace(BTreeMap::from([(AppId(1), vec![])]));
    let ingress = Arc::new(Ingress::new(routes, "localhost", IngressLimits::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();

    // 100 connections wait in the kernel's queue before the ingress accepts any.
    let mut waiting = Vec::new();
    for _ in 0..100 {
        waiting.push(std::net::TcpStream::connect(address).unwrap());
    }
    let limit = getrlimit(Resource::Nofile);
    let mut lowered = limit;
    lowered.current = Some(open_descriptors() + 10);
    setrlimit(Resource::Nofile, lowered).unwrap();
    tokio::spawn(Arc::clone(&ingress).serve(listener, std::future::pending()));

    // It accepts what fits, then `accept` fails with EMFILE for as long as the rest wait.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let errors = ingress.stats().accept_errors.load(Ordering::Relaxed);
    setrlimit(Resource::Nofile, limit).unwrap();
    assert!(
        errors > 0,
        "descriptors never ran out: the test proves nothing"
    );
    assert!(
        errors <= 30,
        "{errors} accept errors in a second: the loop spins"
    );

    // With descriptors back, it serves.
    drop(waiting);
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}
