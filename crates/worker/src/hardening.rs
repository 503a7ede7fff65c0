//! What the worker does to its own process before it holds a key or a secret: no core dumps (a
//! crash would write its memory, keys and secrets included, where the operator can read it),
//! and not dumpable (other processes of the operator's user can neither trace it nor read its
//! memory through `/proc`). Also: as many open files as the system allows, for the ingress.

use rustix::process::{DumpableBehavior, Resource, Rlimit, getrlimit, setrlimit};

/// Why the process could not be hardened.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what}: {error}")]
pub struct HardeningError {
    what: &'static str,
    error: std::io::Error,
}

/// Turns core dumps off and makes the process non-dumpable; raises the open-files limit to its
/// maximum.
pub fn harden_process() -> Result<(), HardeningError> {
    let fail = |what| {
        move |error: rustix::io::Errno| HardeningError {
            what,
            error: error.into(),
        }
    };
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(fail("turn core dumps off"))?;
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(fail("make the process non-dumpable"))?;
    let files = getrlimit(Resource::Nofile);
    if files.current < files.maximum {
        // More connections before `accept` runs out; not fatal when refused.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: files.maximum,
                maximum: files.maximum,
            },
        );
    }
    Ok(())
}

/// Whether [`harden_process`] holds for this process.
pub fn is_hardened() -> bool {
    getrlimit(Resource::Core).maximum == Some(0)
        && matches!(
            rustix::process::dumpable_behavior(),
            Ok(DumpableBehavior::NotDumpable)
        )
}
