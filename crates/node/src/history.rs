//! Which recent finalized blocks hold events about an account, app, worker or task, so that
//! `events_history` answers "what happened to app 7" by reading only those blocks' outcomes,
//! never by scanning the chain.
//!
//! The index is in memory and bounded: it covers at most [`HISTORY_BLOCKS`] blocks, newest
//! first. It fills as blocks are finalized and, after a restart, backwards from the head
//! (`backfill`), so a restarted node answers for the same window again once that is done;
//! `covered_from` says how far back an answer is complete.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use wetee_runtime::BlockOutcome;
use wetee_types::rpc::{BlockRef, EventFilter, EventRecord, event_records};
use wetee_types::{AccountId, AppId, BlockNumber, TaskId, WorkerId};

/// Finalized blocks the index covers: at 250 ms a block, the last 7 hours of a dev chain; at a
/// few seconds, several days.
pub const HISTORY_BLOCKS: u64 = 100_000;

/// The most records one `events_history` call asks for (a page ends at a block boundary, so
/// it may hold a few more).
pub const MAX_HISTORY_RECORDS: usize = 500;

/// The most subjects the index holds, over all its blocks: a flood of transfers to fresh
/// accounts fills it by memory before it fills it by blocks (about 40 bytes each, so at most
/// some 80 MB); the oldest blocks go first.
pub const MAX_INDEXED_SUBJECTS: usize = 2_000_000;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Account(AccountId),
    App(AppId),
    Worker(WorkerId),
    Task(TaskId),
}

/// Every subject of a block's events, and the signers of transactions with events.
fn subjects(outcome: &BlockOutcome) -> Vec<Subject> {
    let mut subjects = BTreeSet::new();
    let transactions = outcome.receipts.iter().flat_map(|receipt| {
        receipt
            .events
            .iter()
            .map(|event| (event, Some(receipt.signer)))
    });
    let hooks = outcome
        .begin_events
        .iter()
        .chain(&outcome.end_events)
        .map(|event| (event, None));
    for (event, signer) in hooks.chain(transactions) {
        subjects.extend(signer.map(Subject::Account));
        subjects.extend(event.accounts().into_iter().map(Subject::Account));
        subjects.extend(event.app().map(Subject::App));
        subjects.extend(event.worker().map(Subject::Worker));
        subjects.extend(event.task().map(Subject::Task));
    }
    subjects.into_iter().collect()
}

/// The subjects a filter names: a block must hold all of them to have a matching event.
fn wanted(filter: &EventFilter) -> Vec<Subject> {
    let mut wanted = Vec::new();
    wanted.extend(filter.account.map(Subject::Account));
    wanted.extend(filter.app.map(Subject::App));
    wanted.extend(filter.worker.map(Subject::Worker));
    wanted.extend(filter.task.map(Subject::Task));
    wanted
}

#[derive(Debug, Default)]
struct Index {
    /// Blocks with events, and the subjects of their events.
    blocks: BTreeMap<BlockNumber, Vec<Subject>>,
    /// The newest height indexed.
    newest: Option<BlockNumber>,
    /// Heights from here to `newest` are all indexed.
    covered_from: Option<BlockNumber>,
    /// Subjects held, over all blocks.
    subjects: usize,
}

impl Index {
    fn insert(&mut self, height: BlockNumber, subjects: Vec<Subject>) {
        if subjects.is_empty() {
            return;
        }
        self.subjects = self.subjects.saturating_add(subjects.len());
        if let Some(replaced) = self.blocks.insert(height, subjects) {
            self.subjects = self.subjects.saturating_sub(replaced.len());
        }
    }

    /// Drops what is older than the window, and the oldest blocks while too many subjects are
    /// held; coverage starts after what was dropped.
    fn forget_old(&mut self) {
        let Some(newest) = self.newest else { return };
        let mut oldest_kept = newest.saturating_sub(HISTORY_BLOCKS - 1);
        while let Some((&height, subjects)) = self.blocks.first_key_value() {
            if height >= oldest_kept && self.subjects <= MAX_INDEXED_SUBJECTS {
                break;
            }
            self.subjects = self.subjects.saturating_sub(subjects.len());
            self.blocks.pop_first();
            oldest_kept = oldest_kept.max(height.saturating_add(1));
        }
        if self.covered_from.is_some_and(|from| from < oldest_kept) {
            self.covered_from = Some(oldest_kept);
        }
    }
}

/// The index of recent events by subject.
#[derive(Debug, Default)]
pub struct History {
    index: Mutex<Index>,
}

/// Blocks whose outcomes may hold a filter's events, newest first, and how far back the
/// answer is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    /// Their heights, newest first.
    pub blocks: Vec<BlockNumber>,
    /// Every block from here on was considered (`None`: none yet).
    pub covered_from: Option<BlockNumber>,
}

impl History {
    /// Indexes a newly finalized block. Blocks come in order; a gap (a block the node did not
    /// see) restarts coverage from this one.
    pub fn finalized(&self, height: BlockNumber, outcome: &BlockOutcome) {
        let subjects = subjects(outcome);
        let mut index = lock(&self.index);
        let follows = index.newest.is_some_and(|n| n.saturating_add(1) == height);
        if !follows {
            index.covered_from = Some(height);
        }
        index.newest = Some(height);
        index.insert(height, subjects);
        index.forget_old();
    }

    /// Indexes an older block, just before the covered range (a restarted node filling its
    /// window backwards from its head; the first one fills an empty index). Returns false once
    /// the window is full or the block does not extend it.
    pub fn backfilled(&self, height: BlockNumber, outcome: &BlockOutcome) -> bool {
        let subjects = subjects(outcome);
        let mut index = lock(&self.index);
        let Some(newest) = index.newest else {
            index.newest = Some(height);
            index.covered_from = Some(height);
            index.insert(height, subjects);
            return true;
        };
        let extends = index
            .covered_from
            .is_some_and(|from| from == height.saturating_add(1));
        if !extends || newest.saturating_sub(height) >= HISTORY_BLOCKS {
            return false;
        }
        index.insert(height, subjects);
        index.covered_from = Some(height);
        index.forget_old();
        // Dropped at once when the index is full of newer blocks.
        index.covered_from == Some(height)
    }

    /// The oldest height indexed without a gap, if any.
    pub fn covered_from(&self) -> Option<BlockNumber> {
        lock(&self.index).covered_from
    }

    /// Blocks below `before` (all when `None`) that may hold events matching `filter`, newest
    /// first, at most `blocks`.
    pub fn candidates(
        &self,
        filter: &EventFilter,
        before: Option<BlockNumber>,
        blocks: usize,
    ) -> Candidates {
        let wanted = wanted(filter);
        let index = lock(&self.index);
        let range = index.blocks.range(..before.unwrap_or(BlockNumber::MAX));
        let blocks = range
            .rev()
            .filter(|(_, subjects)| wanted.iter().all(|s| subjects.binary_search(s).is_ok()))
            .take(blocks)
            .map(|(height, _)| *height)
            .collect();
        Candidates {
            blocks,
            covered_from: index.covered_from,
        }
    }
}

/// A block's records that match `filter`, newest first.
pub fn matching(at: BlockRef, outcome: &BlockOutcome, filter: &EventFilter) -> Vec<EventRecord> {
    let mut records: Vec<EventRecord> = event_records(
        at,
        &outcome.begin_events,
        &outcome.receipts,
        &outcome.end_events,
    )
    .into_iter()
    .filter(|(record, signer)| filter.matches(record, signer.as_ref()))
    .map(|(record, _)| record)
    .collect();
    records.reverse();
    records
}

fn lock(index: &Mutex<Index>) -> std::sync::MutexGuard<'_, Index> {
    index
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::{Balance, Event};

    fn at(height: BlockNumber) -> BlockRef {
        BlockRef {
            height,
            hash: wetee_types::Hash::of(&height.to_be_bytes()),
        }
    }

    fn paid(app: u64) -> BlockOutcome {
        BlockOutcome {
            begin_events: vec![],
            receipts: vec![],
            end_events: vec![Event::AppPaid {
                app: AppId(app),
                worker: WorkerId(1),
                epoch: 0,
                amount: Balance(10),
                protocol_fee: Balance(1),
            }],
        }
    }

    fn quiet() -> BlockOutcome {
        BlockOutcome {
            begin_events: vec![],
            receipts: vec![],
            end_events: vec![],
        }
    }

    fn app(id: u64) -> EventFilter {
        EventFilter {
            app: Some(AppId(id)),
            ..EventFilter::default()
        }
    }

    #[test]
    fn only_the_blocks_about_a_subject_are_candidates_newest_first() {
        let history = History::default();
        for height in 1..=10 {
            let outcome = match height % 3 {
                0 => paid(7),
                1 => paid(8),
                _ => quiet(),
            };
            history.finalized(height, &outcome);
        }
        let found = history.candidates(&app(7), None, 10);
        assert_eq!(found.blocks, [9, 6, 3]);
        assert_eq!(found.covered_from, Some(1));
        // The next page starts below the last block of this one.
        let next = history.candidates(&app(7), Some(6), 1);
        assert_eq!(next.blocks, [3]);
        // Both the worker and the app must match.
        let both = EventFilter {
            worker: Some(WorkerId(1)),
            ..app(8)
        };
        assert_eq!(history.candidates(&both, None, 10).blocks.len(), 4);
        assert_eq!(matching(at(9), &paid(7), &app(7)).len(), 1);
        assert!(matching(at(9), &paid(7), &app(8)).is_empty());
    }

    #[test]
    fn the_window_is_bounded_and_a_restart_fills_it_backwards() {
        let history = History::default();
        let newest = HISTORY_BLOCKS + 5;
        for height in 1..=newest {
            history.finalized(height, &paid(1));
        }
        let found = history.candidates(&app(1), None, usize::MAX);
        assert_eq!(found.blocks.len() as u64, HISTORY_BLOCKS);
        assert_eq!(found.covered_from, Some(6));

        // A restarted node: the live blocks first, then older ones backwards, without gaps.
        let restarted = History::default();
        assert!(
            restarted.backfilled(50, &paid(1)),
            "the head starts an empty index"
        );
        restarted.finalized(51, &quiet());
        assert!(restarted.backfilled(49, &paid(1)));
        assert!(!restarted.backfilled(47, &paid(1)), "a gap is not filled");
        assert!(restarted.backfilled(48, &quiet()));
        assert_eq!(restarted.covered_from(), Some(48));
        assert_eq!(restarted.candidates(&app(1), None, 10).blocks, [50, 49]);
        // A block after a gap restarts coverage from itself.
        restarted.finalized(60, &quiet());
        assert_eq!(restarted.covered_from(), Some(60));
    }

    #[test]
    fn the_index_holds_a_bounded_number_of_subjects_dropping_the_oldest_blocks() {
        // A hundred subjects a block: transfers from one account to 99 fresh ones.
        fn crowded(height: u64) -> BlockOutcome {
            let account = |n: u64| {
                let mut bytes = [0; 32];
                bytes[..8].copy_from_slice(&height.to_be_bytes());
                bytes[8..16].copy_from_slice(&n.to_be_bytes());
                AccountId(bytes)
            };
            BlockOutcome {
                begin_events: vec![],
                receipts: vec![],
                end_events: (1..100)
                    .map(|n| Event::Transferred {
                        from: AccountId([0; 32]),
                        to: account(n),
                        amount: Balance(1),
                    })
                    .collect(),
            }
        }
        let history = History::default();
        let full = (MAX_INDEXED_SUBJECTS / 100) as u64;
        for height in 1..=full + 10 {
            history.finalized(height, &crowded(height));
        }
        let index = lock(&history.index);
        assert!(index.subjects <= MAX_INDEXED_SUBJECTS);
        assert_eq!(index.blocks.len() as u64, full);
        assert_eq!(
            index.covered_from,
            Some(11),
            "coverage starts after what was dropped"
        );
    }
}
