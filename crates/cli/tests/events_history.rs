//! `events_history` on a real dev node: an account's past events newest first, page by page,
//! without anyone scanning blocks, and the same answer after the node restarts.

mod support;

use std::time::{Duration, Instant};

use wetee_client::keys::dev_keypair;
use wetee_client::rpc::{Client, ClientError};
use wetee_types::rpc::{EventFilter, HistoryPage};
use wetee_types::transaction::BalancesCall;
use wetee_types::{Balance, Call, Event};

use support::{Processes, free_ports, start};

#[test]
fn an_accounts_past_events_come_newest_first_page_by_page_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let args: Vec<String> = [
        "dev",
        "--no-worker",
        "--no-console",
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
    let alice = dev_keypair("Alice");
    let bob = dev_keypair("Bob").account_id();
    let bobs = EventFilter {
        account: Some(bob),
        ..EventFilter::default()
    };

    let first = runtime.block_on(async {
        let client = Client::connect(&rpc).await.unwrap();
        for amount in [1, 2, 3] {
            client
                .send(
                    &alice,
                    Call::Balances(BalancesCall::Transfer {
                        to: bob,
                        amount: Balance(amount),
                    }),
                    |_| {},
                )
                .await
                .unwrap();
        }
        let everything = client
            .event_history(&bobs, &HistoryPage::default())
            .await
            .unwrap();
        let amounts: Vec<u128> = everything
            .records
            .iter()
            .filter_map(|record| match record.event {
                Event::Transferred { amount, .. } => Some(amount.0),
                _ => None,
            })
            .collect();
        assert_eq!(amounts, [3, 2, 1], "newest first");
        assert_eq!(everything.next_before, None);
        assert!(everything.covered_from.is_some_and(|from| from <= 1));

        // Page by page: each ends at a block, the next starts below it.
        let mut pages = Vec::new();
        let mut page = HistoryPage {
            before: None,
            limit: Some(1),
        };
        loop {
            let answer = client.event_history(&bobs, &page).await.unwrap();
            pages.extend(answer.records);
            match answer.next_before {
                Some(before) => page.before = Some(before),
                None => break,
            }
        }
        assert_eq!(pages, everything.records);

        // A filter naming nothing would be the whole chain: refused with the reason.
        let refused = client
            .event_history(&EventFilter::default(), &HistoryPage::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, ClientError::Rpc { code: -32602, message } if message.contains("name an account")),
            "{refused}"
        );
        everything.records
    });

    // The same history after a restart, once the node has filled its window again.
    drop(processes);
    let (dev, _) = start(&args, &dir.path().join("dev-restarted.log"));
    let _processes = Processes(vec![dev]);
    runtime.block_on(async {
        let client = Client::connect(&rpc).await.unwrap();
        let started = Instant::now();
        loop {
            let answer = client
                .event_history(&bobs, &HistoryPage::default())
                .await
                .unwrap();
            if answer.records == first {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "after a restart: {:?}",
                answer.records
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
