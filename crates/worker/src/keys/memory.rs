//! Keys that are never written anywhere: a restarted worker has new keys, which it registers
//! on chain in place of the old ones (its evidence binds them); the apps whose secrets were
//! sealed to the old key wait for their owners to reseal, as after a move.

use super::{KeyMaterial, KeyStore, KeyStoreError, Protection};

/// Keeps nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryOnly;

impl KeyStore for MemoryOnly {
    fn protection(&self) -> Protection {
        Protection::MemoryOnly
    }

    fn load(&self) -> Result<Option<KeyMaterial>, KeyStoreError> {
        Ok(None)
    }

    fn save(&self, _keys: &KeyMaterial) -> Result<(), KeyStoreError> {
        Ok(())
    }
}
