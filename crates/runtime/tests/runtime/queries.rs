//! The state's lists as the RPC answers them: in pages, in key order, an owner's from their
//! own index.

use wetee_runtime::query;
use wetee_runtime::testing::*;
use wetee_types::rpc::{MAX_PAGE, PageRequest};
use wetee_types::{AppId, TaskId, TeeKind};

fn page<C>(after: Option<C>, limit: u32) -> PageRequest<C> {
    PageRequest {
        after,
        limit: Some(limit),
    }
}

fn app(chain: &mut TestChain, owner: &str) -> AppId {
    chain.create_app(
        owner,
        TestChain::app_spec(100, 64, TeeKind::Simulated, None),
        tokens(20),
    )
}

#[test]
fn apps_page_in_id_order_and_an_owners_page_holds_only_theirs() {
    let mut chain = TestChain::new();
    let mut alice = Vec::new();
    let mut everyone = Vec::new();
    for i in 0..12 {
        let owner = if i % 3 == 0 { "bob" } else { "alice" };
        let id = app(&mut chain, owner);
        everyone.push(id);
        if owner == "alice" {
            alice.push(id);
        }
    }

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let answer = query::apps_page(&chain.state, None, &page(after, 5)).unwrap();
        assert!(answer.items.len() <= 5);
        seen.extend(answer.items.iter().map(|a| a.id));
        pages += 1;
        match answer.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, everyone);
    assert_eq!(pages, 3);

    let owner = chain.who("alice");
    let first = query::apps_page(&chain.state, Some(&owner), &page(None, 3)).unwrap();
    assert_eq!(
        first.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        alice[..3]
    );
    assert!(first.items.iter().all(|a| a.owner == owner));
    assert_eq!(first.next, Some(alice[2]));
    let rest = query::apps_page(&chain.state, Some(&owner), &page(first.next, 100)).unwrap();
    assert_eq!(
        rest.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        alice[3..]
    );
    assert_eq!(rest.next, None);

    // Past the end, and an owner with nothing: empty, and nothing after.
    let past = query::apps_page(&chain.state, None, &page(Some(AppId(u64::MAX)), 5)).unwrap();
    assert!(past.items.is_empty() && past.next.is_none());
    let nobody = chain.who("dave");
    let none = query::apps_page(&chain.state, Some(&nobody), &PageRequest::first()).unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
}

#[test]
fn a_limit_is_cut_to_the_largest_page_and_zero_still_moves() {
    let mut chain = TestChain::new();
    for _ in 0..3 {
        app(&mut chain, "alice");
    }
    assert_eq!(page::<AppId>(None, u32::MAX).size(), MAX_PAGE as usize);
    let one = query::apps_page(&chain.state, None, &page(None, 0)).unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.next, Some(one.items[0].id));
}

#[test]
fn tasks_and_their_runs_page_by_owner_and_by_run() {
    let mut chain = TestChain::new();
    chain.started_worker(
        "eve",
        chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
    );
    let spec = TestChain::task_spec(
        TeeKind::Simulated,
        wetee_types::manifest::Schedule::EveryBlocks { blocks: 1 },
        60,
        Some(3),
    );
    let mine: Vec<TaskId> = (0..4)
        .map(|_| chain.create_task("alice", spec.clone(), tokens(100)))
        .collect();
    chain.create_task("bob", spec, tokens(100));
    let owner = chain.who("alice");
    let first = query::tasks_page(&chain.state, Some(&owner), &page(None, 3)).unwrap();
    let rest = query::tasks_page(&chain.state, Some(&owner), &page(first.next, 3)).unwrap();
    let listed: Vec<TaskId> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, mine);
    assert_eq!(rest.next, None);

    chain.advance(3);
    let runs = query::task_runs(&chain.state, mine[0]).unwrap();
    assert!(runs.len() >= 2, "{runs:?}");
    let first = query::task_runs_page(&chain.state, mine[0], &page(None, 1)).unwrap();
    assert_eq!(first.items, runs[..1]);
    assert_eq!(first.next, Some(runs[0].run));
    let rest = query::task_runs_page(&chain.state, mine[0], &page(first.next, 100)).unwrap();
    assert_eq!(rest.items, runs[1..]);
}

#[test]
fn the_pending_queue_pages_front_first_with_each_reason() {
    let mut chain = TestChain::new();
    let waiting: Vec<AppId> = (0..5).map(|_| app(&mut chain, "alice")).collect();
    let first = query::pending_page(&chain.state, &page(None, 2)).unwrap();
    let second = query::pending_page(&chain.state, &page(first.next, 2)).unwrap();
    let third = query::pending_page(&chain.state, &page(second.next, 2)).unwrap();
    let all: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .chain(&third.items)
        .collect();
    assert_eq!(
        all.iter().map(|p| p.workload).collect::<Vec<_>>(),
        waiting
            .iter()
            .map(|&app| wetee_types::Workload::App { app })
            .collect::<Vec<_>>()
    );
    assert!(all.windows(2).all(|w| w[0].ticket < w[1].ticket));
    assert!(all.iter().all(|p| !p.reason.is_empty()));
    assert_eq!(third.next, None);
}

#[test]
fn workers_and_what_they_hold_page_in_order() {
    let mut chain = TestChain::new();
    let workers: Vec<_> = ["eve", "ferdie", "charlie"]
        .iter()
        .map(|name| {
            chain.started_worker(
                name,
                chain.profile("eu", &[TeeKind::Simulated], 8000, 16384),
            )
        })
        .collect();
    let first = query::workers_page(&chain.state, &page(None, 2)).unwrap();
    let rest = query::workers_page(&chain.state, &page(first.next, 2)).unwrap();
    let listed: Vec<_> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|w| w.id)
        .collect();
    assert_eq!(listed, workers);
    assert_eq!(rest.next, None);

    for _ in 0..4 {
        app(&mut chain, "alice");
    }
    let mut held = Vec::new();
    for &worker in &workers {
        let mut after = None;
        loop {
            let answer = query::workloads_page(&chain.state, worker, &page(after, 1)).unwrap();
            held.extend(answer.items);
            match answer.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    assert_eq!(held.len(), 4);
}
