//! The key-value store the runtime reads and writes.
//!
//! Keys are ordered bytes and iteration is in key order, so every validator walks the same
//! entries in the same order. [`MemoryState`] backs tests and benchmarks; the node provides a
//! persistent implementation. [`Overlay`] buffers a call's writes so a failed call can be
//! discarded as a whole; [`Layer`] collects a block's writes over a state it never modifies.

use std::collections::BTreeMap;
use std::ops::Bound;
use wetee_types::Hash;

/// Ordered key-value state.
pub trait State {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Sets `key` to `value`.
    fn put(&mut self, key: &[u8], value: &[u8]);
    /// Removes `key`.
    fn delete(&mut self, key: &[u8]);
    /// Entries with keys at or after `start`, in ascending key order.
    fn scan_from<'a>(&'a self, start: &[u8]) -> Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a>;
}

/// State held in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryState {
    /// An empty state.
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A digest of every entry in key order: equal states have equal digests.
    pub fn digest(&self) -> Hash {
        let mut hasher = blake3_hasher();
        for (key, value) in &self.entries {
            hasher.update(&(key.len() as u64).to_be_bytes());
            hasher.update(key);
            hasher.update(&(value.len() as u64).to_be_bytes());
            hasher.update(value);
        }
        Hash(*hasher.finalize().as_bytes())
    }
}

fn blake3_hasher() -> wetee_types::crypto::Blake3 {
    wetee_types::crypto::Blake3::new()
}

impl State for MemoryState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.entries.insert(key.to_vec(), value.to_vec());
    }

    fn delete(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }

    fn scan_from<'a>(&'a self, start: &[u8]) -> Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a> {
        Box::new(
            self.entries
                .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
                .map(|(k, v)| (k.clone(), v.clone())),
        )
    }
}

/// Writes buffered over a base state: [`Overlay::commit`] applies them, dropping discards them.
pub struct Overlay<'a> {
    base: &'a mut dyn State,
    changes: Changes,
}

impl std::fmt::Debug for Overlay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("changes", &self.changes.len())
            .finish()
    }
}

impl<'a> Overlay<'a> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a mut dyn State) -> Overlay<'a> {
        Overlay {
            base,
            changes: Changes::new(),
        }
    }

    /// Applies the buffered writes to the base state.
    pub fn commit(self) {
        for (key, value) in self.changes {
            match value {
                Some(value) => self.base.put(&key, &value),
                None => self.base.delete(&key),
            }
        }
    }
}

impl State for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        read_through(&self.changes, &*self.base, key)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.changes.insert(key.to_vec(), Some(value.to_vec()));
    }

    fn delete(&mut self, key: &[u8]) {
        self.changes.insert(key.to_vec(), None);
    }

    fn scan_from<'b>(&'b self, start: &[u8]) -> Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'b> {
        scan_through(&self.changes, &*self.base, start)
    }
}

/// A set of writes: `Some` sets a key, `None` deletes it.
pub type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Writes collected over a base state that is only read: a block executed speculatively on top
/// of its parent's state, whose changes are kept apart until the block is finalized.
pub struct Layer<'a> {
    base: &'a dyn State,
    changes: Changes,
}

impl std::fmt::Debug for Layer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("changes", &self.changes.len())
            .finish()
    }
}

impl<'a> Layer<'a> {
    /// No changes yet over `base`.
    pub fn new(base: &'a dyn State) -> Layer<'a> {
        Layer::with_changes(base, Changes::new())
    }

    /// `changes` applied over `base`.
    pub fn with_changes(base: &'a dyn State, changes: Changes) -> Layer<'a> {
        Layer { base, changes }
    }

    /// The writes made through this layer.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The writes made through this layer, taken out.
    pub fn into_changes(self) -> Changes {
        self.changes
    }
}

impl State for Layer<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        read_through(&self.changes, self.base, key)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.changes.insert(key.to_vec(), Some(value.to_vec()));
    }

    fn delete(&mut self, key: &[u8]) {
        self.changes.insert(key.to_vec(), None);
    }

    fn scan_from<'b>(&'b self, start: &[u8]) -> Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'b> {
        scan_through(&self.changes, self.base, start)
    }
}

/// A key's value as `changes` over `base` shows it (shared by [`Overlay`] and [`Layer`]).
fn read_through(changes: &Changes, base: &dyn State, key: &[u8]) -> Option<Vec<u8>> {
    match changes.get(key) {
        Some(change) => change.clone(),
        None => base.get(key),
    }
}

/// Entries from `start` as `changes` over `base` shows them, in key order.
fn scan_through<'b>(
    changes: &'b Changes,
    base: &'b dyn State,
    start: &[u8],
) -> Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'b> {
    let changes = changes
        .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
        .map(|(k, v)| (k.clone(), v.clone()));
    Box::new(MergedScan {
        base: base.scan_from(start).peekable(),
        changes: changes.peekable(),
    })
}

/// Merges the base's entries with the overlay's changes, the overlay winning on equal keys and
/// deletions hiding base entries.
struct MergedScan<B: Iterator, C: Iterator> {
    base: std::iter::Peekable<B>,
    changes: std::iter::Peekable<C>,
}

impl<B, C> Iterator for MergedScan<B, C>
where
    B: Iterator<Item = (Vec<u8>, Vec<u8>)>,
    C: Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
{
    type Item = (Vec<u8>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        use std::cmp::Ordering;
        loop {
            let order = match (self.base.peek(), self.changes.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((base_key, _)), Some((change_key, _))) => base_key.cmp(change_key),
            };
            match order {
                Ordering::Less => return self.base.next(),
                Ordering::Equal => {
                    // The overlay's change replaces the base entry.
                    self.base.next();
                }
                Ordering::Greater => {}
            }
            if let Some((key, Some(value))) = self.changes.next() {
                return Some((key, value));
            }
            // A deletion: skip it and keep merging.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(state: &dyn State, start: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        state.scan_from(start).collect()
    }

    #[test]
    fn layers_stack_without_touching_their_base() {
        let mut base = MemoryState::new();
        base.put(b"a", b"0");
        base.put(b"b", b"0");
        let mut parent = Layer::new(&base);
        parent.put(b"a", b"1");
        parent.delete(b"b");
        let parent_changes = parent.changes().clone();
        let mut child = Layer::new(&parent);
        child.put(b"c", b"2");
        assert_eq!(child.get(b"a").unwrap(), b"1");
        assert_eq!(child.get(b"b"), None);
        assert_eq!(
            collect(&child, b""),
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"c".to_vec(), b"2".to_vec())
            ]
        );
        let child_changes = child.into_changes();
        assert_eq!(child_changes.len(), 1);
        assert_eq!(parent_changes.len(), 2);
        assert_eq!(base.get(b"b").unwrap(), b"0");
    }

    #[test]
    fn overlay_reads_its_own_writes_and_merges_scans_in_order() {
        let mut base = MemoryState::new();
        for k in [b"a", b"c", b"e", b"g"] {
            base.put(k, b"base");
        }
        let mut overlay = Overlay::new(&mut base);
        overlay.put(b"b", b"new");
        overlay.put(b"c", b"changed");
        overlay.delete(b"e");
        overlay.put(b"h", b"new");
        assert_eq!(overlay.get(b"c").unwrap(), b"changed");
        assert_eq!(overlay.get(b"e"), None);
        let keys: Vec<_> = collect(&overlay, b"b")
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("b".into(), "new".into()),
                ("c".into(), "changed".into()),
                ("g".into(), "base".into()),
                ("h".into(), "new".into())
            ]
        );
    }

    #[test]
    fn a_dropped_overlay_changes_nothing_and_a_committed_one_applies() {
        let mut base = MemoryState::new();
        base.put(b"k", b"v");
        let before = base.clone();
        {
            let mut overlay = Overlay::new(&mut base);
            overlay.put(b"k", b"w");
            overlay.delete(b"k");
            overlay.put(b"x", b"y");
        }
        assert_eq!(base, before);
        let mut overlay = Overlay::new(&mut base);
        overlay.delete(b"k");
        overlay.put(b"x", b"y");
        overlay.commit();
        assert_eq!(base.get(b"k"), None);
        assert_eq!(base.get(b"x").unwrap(), b"y");
    }

    #[test]
    fn deleting_every_base_entry_in_a_range_yields_nothing() {
        let mut base = MemoryState::new();
        base.put(b"a1", b"");
        base.put(b"a2", b"");
        let mut overlay = Overlay::new(&mut base);
        overlay.delete(b"a1");
        overlay.delete(b"a2");
        assert!(collect(&overlay, b"a").is_empty());
    }

    #[test]
    fn digest_depends_on_every_entry() {
        let mut a = MemoryState::new();
        a.put(b"k", b"v");
        let mut b = MemoryState::new();
        b.put(b"k", b"w");
        assert_ne!(a.digest(), b.digest());
        b.put(b"k", b"v");
        assert_eq!(a.digest(), b.digest());
    }
}
