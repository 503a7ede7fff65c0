//! Identifiers of on-chain objects, heights and epochs.
//!
//! Workers, apps, tasks and complaints are numbered by per-kind counters in chain state: the
//! numbers are deterministic (every validator assigns the same one), short enough for a DNS
//! label (`<app-id>.<worker domain>`) and easy to type.

use crate::{codec_enum, codec_newtype};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A block height. Height 0 is the genesis state; the first block is height 1.
pub type BlockNumber = u64;
/// An epoch: `height / epoch_length`. The unit of billing and of work proofs.
pub type EpochNumber = u64;
/// Milliseconds since the Unix epoch, as stamped in block headers.
pub type TimestampMs = u64;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        #[serde(transparent)]
        pub struct $name(pub u64);
        codec_newtype!($name);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, " {}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

numeric_id!(
    /// A worker cluster.
    WorkerId,
    "worker"
);
numeric_id!(
    /// A long-running app.
    AppId,
    "app"
);
numeric_id!(
    /// A one-off or periodic task.
    TaskId,
    "task"
);
numeric_id!(
    /// A complaint against a worker.
    ComplaintId,
    "complaint"
);

/// Something that occupies worker capacity: an app, or one run of a task.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// An app (all of its replicas).
    App {
        /// The app.
        app: AppId,
    },
    /// One run of a task.
    TaskRun {
        /// The task.
        task: TaskId,
        /// The run's number, from 1.
        run: u32,
    },
}
codec_enum!(Workload {
    0 => App { app },
    1 => TaskRun { task, run },
});

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::App { app } => write!(f, "app {app}"),
            Workload::TaskRun { task, run } => write!(f, "task {task} run {run}"),
        }
    }
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
