//! Opening a workload's logs as a worker's owner API serves them: records sealed to the owner
//! (`wetee_sealing::log_batch`), each framed with the epoch and position it was sealed at.
//!
//! ```text
//! frame = epoch: u64 BE ‖ index: u32 BE ‖ record
//! ```
//!
//! Every record opens only with the owner's account key, only if the worker's attested sealing
//! key sealed it, and only at the workload, epoch, position, worker and chain it was sealed
//! for; positions must run on from 0 in each epoch, epochs only go up. Records planted by the
//! operator (anyone can seal to the owner's public key), replayed, reordered or moved are
//! refused.

use wetee_sealing::log_batch;
use wetee_types::{AccountId, Hash, Keypair, WorkerId, Workload};
use zeroize::Zeroizing;

/// The media type of the answer.
pub const SEALED_LOGS_TYPE: &str = "application/vnd.wetee.sealed-logs.v1";

const FRAME_HEADER: usize = 12;

/// Why logs could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OwnerLogError {
    /// A record did not open: not sealed to this owner, or for another workload, epoch,
    /// position or worker, or altered.
    #[error(
        "record {index} of epoch {epoch} does not open with this key: it was sealed to another \
         owner or for another workload, worker or position, or it was altered"
    )]
    CannotOpen {
        /// Its epoch.
        epoch: u64,
        /// Its position.
        index: u32,
    },
    /// The stream is not made of frames.
    #[error("the worker's answer is not a stream of sealed log records")]
    Malformed,
    /// The stream ended inside a frame.
    #[error("the worker's answer ended inside a record")]
    Truncated,
    /// A record is not where the stream's order puts it (skipped, repeated or reordered).
    #[error(
        "record {index} of epoch {epoch} is out of order: records were skipped, repeated or reordered"
    )]
    OutOfOrder {
        /// Its epoch.
        epoch: u64,
        /// Its position.
        index: u32,
    },
}

/// Opens framed records as they arrive.
pub struct LogOpener {
    genesis_hash: Hash,
    worker: WorkerId,
    workload: Workload,
    owner: AccountId,
    secret: Zeroizing<[u8; 32]>,
    /// The worker's attested sealing key, from its record.
    worker_key: [u8; 32],
    /// The epoch and position the next record must have (any epoch first, from 0).
    next: Option<(u64, u32)>,
    buffer: Vec<u8>,
    /// The leaves of what was opened, per epoch, in order: the log roots to compare with the
    /// worker's reports.
    leaves: Vec<(u64, Hash)>,
}

impl std::fmt::Debug for LogOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogOpener({} on worker {})", self.workload, self.worker)
    }
}

impl LogOpener {
    /// An opener of `workload`'s logs from `worker` (whose attested sealing key, from its
    /// record read through the light client, is `worker_key`), for `owner`.
    pub fn new(
        owner: &Keypair,
        genesis_hash: Hash,
        worker: WorkerId,
        worker_key: [u8; 32],
        workload: Workload,
    ) -> LogOpener {
        LogOpener {
            genesis_hash,
            worker,
            workload,
            owner: owner.account_id(),
            secret: wetee_sealing::owner_secret(owner),
            worker_key,
            next: None,
            buffer: Vec::new(),
            leaves: Vec::new(),
        }
    }

    /// Takes the next bytes of the answer; returns the lines of every record they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, OwnerLogError> {
        self.buffer.extend_from_slice(bytes);
        let mut opened = Zeroizing::new(Vec::new());
        let mut consumed = 0;
        loop {
            let rest = &self.buffer[consumed..];
            let Some(header) = rest.get(..FRAME_HEADER) else {
                break;
            };
            let epoch = u64::from_be_bytes(header[..8].try_into().unwrap_or_default());
            let index = u32::from_be_bytes(header[8..].try_into().unwrap_or_default());
            let record_len = log_batch::record_len(&rest[FRAME_HEADER..])
                .map_err(|_| OwnerLogError::Malformed)?;
            let Some(record_len) = record_len else {
                break;
            };
            let record = &rest[FRAME_HEADER..FRAME_HEADER + record_len];
            let in_order = match self.next {
                None => index == 0,
                Some((expected_epoch, expected_index)) => {
                    (epoch == expected_epoch && index == expected_index)
                        || (epoch > expected_epoch && index == 0)
                }
            };
            if !in_order {
                return Err(OwnerLogError::OutOfOrder { epoch, index });
            }
            let binding = log_batch::Binding {
                genesis_hash: &self.genesis_hash,
                workload: self.workload,
                epoch,
                worker: self.worker,
                owner: &self.owner,
            };
            let lines = log_batch::open(&self.secret, &self.worker_key, &binding, index, record)
                .map_err(|_| OwnerLogError::CannotOpen { epoch, index })?;
            self.next = Some((epoch, index.saturating_add(1)));
            if let Some(leaf) = log_batch::leaf_of(record) {
                self.leaves.push((epoch, leaf));
            }
            opened.extend_from_slice(&lines);
            consumed += FRAME_HEADER + record_len;
        }
        self.buffer.drain(..consumed);
        Ok(opened)
    }

    /// Checks that the answer ended between records.
    pub fn finish(&self) -> Result<(), OwnerLogError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(OwnerLogError::Truncated)
        }
    }

    /// The Merkle root of what was opened of `epoch`: equal to the log root of the worker's
    /// report for it when every record of the epoch was read.
    pub fn root(&self, epoch: u64) -> Hash {
        let leaves: Vec<Hash> = self
            .leaves
            .iter()
            .filter(|(e, _)| *e == epoch)
            .map(|(_, leaf)| *leaf)
            .collect();
        wetee_types::block::merkle_root(&leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wetee_types::{AppId, KeyScheme};

    fn frame(epoch: u64, index: u32, record: &[u8]) -> Vec<u8> {
        [&epoch.to_be_bytes()[..], &index.to_be_bytes(), record].concat()
    }

    #[test]
    fn records_open_in_any_chunking_and_only_where_sealed() {
        let owner = Keypair::from_seed(KeyScheme::Sr25519, [9; 32]);
        let genesis = Hash::of(b"chain");
        let workload = Workload::App { app: AppId(2) };
        let account = owner.account_id();
        let key = wetee_sealing::public_key(&wetee_sealing::owner_secret(&owner));
        let binding = |epoch| log_batch::Binding {
            genesis_hash: &genesis,
            workload,
            epoch,
            worker: WorkerId(4),
            owner: &account,
        };
        let worker_secret = [3u8; 32];
        let worker_key = wetee_sealing::public_key(&worker_secret);
        let a = log_batch::seal(&binding(1), 0, &worker_secret, &key, b"first\n").unwrap();
        let b = log_batch::seal(&binding(1), 1, &worker_secret, &key, b"second\n").unwrap();
        let c = log_batch::seal(&binding(2), 0, &worker_secret, &key, b"third\n").unwrap();
        let stream = [frame(1, 0, &a), frame(1, 1, &b), frame(2, 0, &c)].concat();
        for chunk in [1, 7, 100, stream.len()] {
            let mut opener = LogOpener::new(&owner, genesis, WorkerId(4), worker_key, workload);
            let mut text = Vec::new();
            for piece in stream.chunks(chunk) {
                text.extend_from_slice(&opener.feed(piece).unwrap());
            }
            opener.finish().unwrap();
            assert_eq!(text, b"first\nsecond\nthird\n");
            let leaves = [
                log_batch::leaf_of(&a).unwrap(),
                log_batch::leaf_of(&b).unwrap(),
            ];
            assert_eq!(opener.root(1), wetee_types::block::merkle_root(&leaves));
        }
        // Swapped positions, another worker, a cut stream: refused.
        let swapped = [frame(1, 1, &a), frame(1, 0, &b)].concat();
        let mut opener = LogOpener::new(&owner, genesis, WorkerId(4), worker_key, workload);
        assert!(matches!(
            opener.feed(&swapped),
            Err(OwnerLogError::OutOfOrder { index: 1, .. })
        ));
        // A record repeated: refused.
        let skipping = [frame(1, 0, &a), frame(2, 0, &c), frame(2, 0, &c)].concat();
        let mut opener = LogOpener::new(&owner, genesis, WorkerId(4), worker_key, workload);
        assert!(matches!(
            opener.feed(&skipping),
            Err(OwnerLogError::OutOfOrder { epoch: 2, index: 0 })
        ));
        // Planted by someone else with the owner's public key: refused.
        let planted = log_batch::seal(&binding(1), 0, &[9u8; 32], &key, b"forged\n").unwrap();
        let mut opener = LogOpener::new(&owner, genesis, WorkerId(4), worker_key, workload);
        assert!(matches!(
            opener.feed(&frame(1, 0, &planted)),
            Err(OwnerLogError::CannotOpen { .. })
        ));
        let mut elsewhere = LogOpener::new(&owner, genesis, WorkerId(5), worker_key, workload);
        assert!(elsewhere.feed(&stream).is_err());
        let mut cut = LogOpener::new(&owner, genesis, WorkerId(4), worker_key, workload);
        cut.feed(&stream[..stream.len() - 3]).unwrap();
        assert!(matches!(cut.finish(), Err(OwnerLogError::Truncated)));
        let mut garbage = LogOpener::new(&owner, genesis, WorkerId(4), worker_key, workload);
        assert!(matches!(
            garbage.feed(&[0xff; 64]),
            Err(OwnerLogError::Malformed)
        ));
    }
}
