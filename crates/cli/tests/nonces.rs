//! Two programs sending from one account at the same moment, each through its own connection
//! with the SDK: every transaction of both is finalized, none is lost to a nonce clash.

mod support;

use std::time::Duration;

use futures::future::join_all;
use wetee_client::keys::dev_keypair;
use wetee_client::rpc::Client;
use wetee_types::transaction::BalancesCall;
use wetee_types::{Balance, Call};

use support::{Processes, free_ports, start};

const PER_CLIENT: usize = 20;

#[test]
fn two_clients_sending_from_one_account_at_once_get_every_transaction_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let args: Vec<String> = [
        "dev",
        "--no-worker",
        "--data-dir",
        &dir.path().join("dev").display().to_string(),
        "--rpc-port",
        &ports[0].to_string(),
        "--p2p-port",
        &ports[1].to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut processes = Processes::default();
    let (dev, _) = start(&args, &dir.path().join("dev.log"));
    processes.0.push(dev);
    let rpc = format!("ws://127.0.0.1:{}", ports[0]);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let alice = dev_keypair("Alice");
        let bob = dev_keypair("Bob").account_id();
        let first = Client::connect(&rpc).await.unwrap();
        let second = Client::connect(&rpc).await.unwrap();
        let before = first.account(&alice.account_id()).await.unwrap();
        let sends = [&first, &second].into_iter().flat_map(|client| {
            (0..PER_CLIENT).map(|_| {
                client.send(
                    &alice,
                    Call::Balances(BalancesCall::Transfer {
                        to: bob,
                        amount: Balance(1),
                    }),
                    |_| {},
                )
            })
        });
        let outcomes = tokio::time::timeout(Duration::from_secs(180), join_all(sends))
            .await
            .expect("all sends end");
        let failed: Vec<String> = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().err().map(|e| e.to_string()))
            .collect();
        assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
        let after = first.account(&alice.account_id()).await.unwrap();
        assert_eq!(after.nonce, before.nonce + 2 * PER_CLIENT as u64);
    });
}
