//! The in-memory chunk index: where each chunk is stored, in about 50 bytes per chunk.
//!
//! A `HashMap<ObjectId, BlobLocation>` costs 108 bytes of payload per chunk (the id twice, the
//! pack id, three lengths) plus a hash table's slack: 125 to 250 bytes per chunk depending on
//! where its capacity stands. Here each pack id is stored once, in a table; a chunk's entry is
//! its id and 16 bytes (pack number, offset, length, raw length), 48 bytes in all, kept in a
//! vector sorted by id (binary search), sized exactly. Chunks added since the last merge wait in
//! a small hash map beside it, merged in once they number an eighth of the vector, so adding a
//! snapshot's chunks costs amortised O(log n) each and the map never holds more than a fraction
//! of the chunks. `bench`: at a million chunks, see `examples/index_memory.rs` and BENCHMARKS.md.

use crate::format::{BlobEntry, IdMap, ObjectId};

/// Where one chunk is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: ObjectId,
    pub entry: BlobEntry,
}

/// A chunk's place, its pack by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    pack: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: ObjectId,
    slot: Slot,
}

/// Recent chunks are merged into the sorted vector once they are this share of it (1/8) and
/// at least [`MERGE_AT_LEAST`] of them.
const MERGE_SHARE: usize = 8;
const MERGE_AT_LEAST: usize = 4096;

/// Chunk id -> where it is stored.
#[derive(Default)]
pub struct ChunkIndex {
    pack_ids: Vec<ObjectId>,
    pack_numbers: IdMap<u32>,
    sorted: Vec<Entry>,
    recent: IdMap<Slot>,
}

/// An id's first eight bytes, in the order ids sort.
fn prefix(id: &ObjectId) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(bytes)
}

impl ChunkIndex {
    /// How many chunks are indexed.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where chunk `id` is stored.
    pub fn get(&self, id: &ObjectId) -> Option<BlobLocation> {
        let slot = match self.recent.get(id) {
            Some(slot) => *slot,
            None => self.sorted[self.position(id).ok()?].slot,
        };
        Some(self.location(id, slot))
    }

    /// Index chunk `entry` as stored in `pack`. Where the chunk is indexed already,
    /// `replaces(pack of the indexed copy)` says whether this copy takes its place.
    pub fn insert(
        &mut self,
        pack: ObjectId,
        entry: &BlobEntry,
        replaces: impl Fn(&ObjectId) -> bool,
    ) {
        if let Some(indexed) = self.recent.get(&entry.id).map(|slot| slot.pack) {
            if replaces(&self.pack_ids[indexed as usize]) {
                let slot = self.slot(pack, entry);
                self.recent.insert(entry.id, slot);
            }
            return;
        }
        match self.position(&entry.id) {
            Ok(at) => {
                if replaces(&self.pack_ids[self.sorted[at].slot.pack as usize]) {
                    self.sorted[at].slot = self.slot(pack, entry);
                }
            }
            Err(_) => {
                let slot = self.slot(pack, entry);
                self.recent.insert(entry.id, slot);
                if self.recent.len() >= MERGE_AT_LEAST
                    && self.recent.len() * MERGE_SHARE >= self.sorted.len()
                {
                    self.merge(Vec::new(), &|_, _| false);
                }
            }
        }
    }

    /// Index every chunk of `packs` (pack id, its chunks). Where a chunk is indexed already,
    /// `replaces(this copy's pack, the indexed copy's pack)` says whether this copy takes its
    /// place (and among copies listed here, the first stays unless a later one replaces it).
    /// Many chunks at once (a new process loading its index) are sorted and merged in one
    /// pass; a few go in one by one.
    pub fn insert_all<'a>(
        &mut self,
        packs: impl IntoIterator<Item = (ObjectId, &'a [BlobEntry])> + Clone,
        replaces: impl Fn(&ObjectId, &ObjectId) -> bool,
    ) {
        let count: usize = packs
            .clone()
            .into_iter()
            .map(|(_, blobs)| blobs.len())
            .sum();
        if count < MERGE_AT_LEAST || count * MERGE_SHARE < self.sorted.len() {
            for (pack, blobs) in packs {
                for blob in blobs {
                    self.insert(pack, blob, |indexed| replaces(&pack, indexed));
                }
            }
            return;
        }
        let mut fresh: Vec<Entry> = Vec::with_capacity(count);
        for (pack, blobs) in packs {
            for blob in blobs {
                if self.recent.contains_key(&blob.id) {
                    self.insert(pack, blob, |indexed| replaces(&pack, indexed));
                } else {
                    let slot = self.slot(pack, blob);
                    fresh.push(Entry { id: blob.id, slot });
                }
            }
        }
        // Stable: copies of one chunk stay in the order they were listed.
        fresh.sort_by_key(|e| e.id);
        let pack_ids = std::mem::take(&mut self.pack_ids);
        let replaces_slot = |new: &Slot, old: &Slot| {
            replaces(&pack_ids[new.pack as usize], &pack_ids[old.pack as usize])
        };
        fresh.dedup_by(|later, first| {
            if later.id != first.id {
                return false;
            }
            if replaces_slot(&later.slot, &first.slot) {
                first.slot = later.slot;
            }
            true
        });
        self.merge(fresh, &replaces_slot);
        self.pack_ids = pack_ids;
    }

    /// Bytes this index holds on the heap (capacities, as allocated).
    pub fn heap_bytes(&self) -> usize {
        // A hash table holds `capacity` in 7/8 of a power-of-two number of buckets, each with
        // one control byte.
        let map_bytes = |capacity: usize, entry: usize| {
            let buckets = if capacity == 0 {
                0
            } else {
                (capacity * 8 / 7).next_power_of_two()
            };
            buckets * (entry + 1)
        };
        self.pack_ids.capacity() * std::mem::size_of::<ObjectId>()
            + map_bytes(self.pack_numbers.capacity(), 36)
            + self.sorted.capacity() * std::mem::size_of::<Entry>()
            + map_bytes(self.recent.capacity(), 48)
    }

    /// Where `id` is in `sorted` (or would go). Ids are hashes, uniform over their range, so
    /// the id's first eight bytes say about where it sits: the search starts in a window
    /// around that guess, a few cache lines wide, and falls back to the whole vector when the
    /// window does not hold the id's place (ids a damaged index made uneven cost a binary
    /// search, never a wrong answer). Comparing ids by that prefix first spares a `memcmp`
    /// call per step: lookups were 5.5% of a verify's CPU.
    fn position(&self, id: &ObjectId) -> Result<usize, usize> {
        let key = prefix(id);
        let compare = |e: &Entry| prefix(&e.id).cmp(&key).then_with(|| e.id.cmp(id));
        let n = self.sorted.len();
        if n >= 256 {
            let guess = ((u128::from(key) * n as u128) >> 64) as usize;
            let reach = (n as f64).sqrt() as usize * 2 + 16;
            let (lo, hi) = (guess.saturating_sub(reach), (guess + reach).min(n));
            let starts_after = lo == 0 || compare(&self.sorted[lo - 1]).is_lt();
            let ends_before = hi == n || compare(&self.sorted[hi]).is_gt();
            if starts_after && ends_before {
                return match self.sorted[lo..hi].binary_search_by(compare) {
                    Ok(at) => Ok(lo + at),
                    Err(at) => Err(lo + at),
                };
            }
        }
        self.sorted.binary_search_by(compare)
    }

    fn location(&self, id: &ObjectId, slot: Slot) -> BlobLocation {
        BlobLocation {
            pack: self.pack_ids[slot.pack as usize],
            entry: BlobEntry {
                id: *id,
                offset: slot.offset,
                length: slot.length,
                raw_length: slot.raw_length,
            },
        }
    }

    fn pack_number(&mut self, pack: ObjectId) -> u32 {
        if let Some(number) = self.pack_numbers.get(&pack) {
            return *number;
        }
        // Every pack holds at least one chunk of at least a byte: 4 billion packs would be
        // more chunks than any memory holds.
        let number = u32::try_from(self.pack_ids.len()).expect("fewer than 2^32 packs");
        self.pack_ids.push(pack);
        self.pack_numbers.insert(pack, number);
        number
    }

    fn slot(&mut self, pack: ObjectId, entry: &BlobEntry) -> Slot {
        Slot {
            pack: self.pack_number(pack),
            offset: entry.offset,
            length: entry.length,
            raw_length: entry.raw_length,
        }
    }

    /// The recent chunks and `fresh` (sorted, none of them recent) into the sorted vector,
    /// in one exactly sized allocation. Where `fresh` holds a chunk the vector holds,
    /// `replaces(fresh slot, indexed slot)` says which stays.
    fn merge(&mut self, fresh: Vec<Entry>, replaces: &dyn Fn(&Slot, &Slot) -> bool) {
        let mut recent: Vec<Entry> = std::mem::take(&mut self.recent)
            .into_iter()
            .map(|(id, slot)| Entry { id, slot })
            .collect();
        recent.sort_unstable_by_key(|e| e.id);
        // Recent chunks are in neither `fresh` nor the vector: a plain merge of the two new lists.
        let fresh = merge_sorted(recent, fresh, &|_, _| false);
        let old = std::mem::take(&mut self.sorted);
        self.sorted = merge_sorted(old, fresh, replaces);
    }
}

/// Two lists sorted by id into one, sized exactly; where both hold an id, the first list's
/// entry stays unless `replaces(second's slot, first's slot)`.
fn merge_sorted(
    first: Vec<Entry>,
    second: Vec<Entry>,
    replaces: &dyn Fn(&Slot, &Slot) -> bool,
) -> Vec<Entry> {
    if second.is_empty() {
        return first;
    }
    let mut merged = Vec::with_capacity(first.len() + second.len());
    let (mut a, mut b) = (first.into_iter().peekable(), second.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.id < y.id => a.next(),
            (Some(x), Some(y)) if x.id == y.id => {
                let (x, y) = (a.next().unwrap(), b.next().unwrap());
                Some(if replaces(&y.slot, &x.slot) { y } else { x })
            }
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        merged.extend(next);
    }
    merged.shrink_to_fit();
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn id(n: u64) -> ObjectId {
        ObjectId::of(&n.to_le_bytes())
    }

    fn entry(n: u64, offset: u32) -> BlobEntry {
        BlobEntry {
            id: id(n),
            offset,
            length: 10,
            raw_length: 20,
        }
    }

    #[test]
    fn it_answers_as_a_hash_map_would_across_merges_and_replacements() {
        let mut index = ChunkIndex::default();
        let mut model: HashMap<ObjectId, BlobLocation> = HashMap::new();
        let avoided = ObjectId([9; 32]);
        // Enough chunks for several merges; every fifth one stored again in another pack,
        // replacing the first copy only when that one sits in the avoided pack.
        for n in 0..40_000u64 {
            let pack = if n % 7 == 0 {
                avoided
            } else {
                ObjectId([(n % 5) as u8; 32])
            };
            let e = entry(n, n as u32);
            index.insert(pack, &e, |_| false);
            model.entry(e.id).or_insert(BlobLocation { pack, entry: e });
            if n % 5 == 0 {
                let again = entry(n, 7);
                let other = ObjectId([42; 32]);
                index.insert(other, &again, |p| *p == avoided);
                if model[&again.id].pack == avoided {
                    model.insert(
                        again.id,
                        BlobLocation {
                            pack: other,
                            entry: again,
                        },
                    );
                }
            }
        }
        assert_eq!(index.len(), model.len());
        assert!(
            index.sorted.len() > index.recent.len(),
            "merged along the way"
        );
        for (id, location) in &model {
            assert_eq!(index.get(id), Some(*location));
        }
        assert_eq!(index.get(&id(1_000_000)), None);
    }

    #[test]
    fn uneven_ids_are_found_as_even_ones_are() {
        // Ids a damaged or hostile index made: many sharing their first bytes, bunched at
        // either end of the range, beside even ones. Every one is found where it is, and an
        // absent one (among them or between them) is not.
        let mut index = ChunkIndex::default();
        let mut ids = Vec::new();
        for n in 0..20_000u64 {
            let mut bytes = id(n).0;
            match n % 4 {
                0 => bytes[..8].fill(0),
                1 => bytes[..6].fill(0xff),
                _ => {}
            }
            ids.push(ObjectId(bytes));
        }
        for (n, id) in ids.iter().enumerate() {
            let e = BlobEntry {
                id: *id,
                offset: n as u32,
                length: 1,
                raw_length: 1,
            };
            index.insert(ObjectId([1; 32]), &e, |_| false);
        }
        index.merge(Vec::new(), &|_, _| false);
        assert!(index.recent.is_empty(), "every id is in the sorted vector");
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id).map(|l| l.entry.offset), Some(n as u32));
        }
        for n in 20_000..21_000u64 {
            let mut bytes = id(n).0;
            if n % 2 == 0 {
                bytes[..8].fill(0);
            }
            assert_eq!(index.get(&ObjectId(bytes)), None);
        }
        assert_eq!(index.get(&ObjectId([0; 32])), None);
        assert_eq!(index.get(&ObjectId([0xff; 32])), None);
    }

    #[test]
    fn many_chunks_at_once_are_merged_as_one_by_one_would_be() {
        // Files of every size: small ones go in one by one, large ones sorted and merged;
        // chunks repeat within a file and across files, some in the avoided pack.
        let avoided = ObjectId([9; 32]);
        let replaces =
            |this: &ObjectId, indexed: &ObjectId| *this != avoided && *indexed == avoided;
        let mut bulk = ChunkIndex::default();
        let mut single = ChunkIndex::default();
        let mut first = 0u64;
        for (file, size) in [10u64, 5000, 100, 30_000, 4096, 70_000, 3]
            .into_iter()
            .enumerate()
        {
            let packs: Vec<(ObjectId, Vec<BlobEntry>)> = (0..4u64)
                .map(|p| {
                    let pack = if (file as u64 + p) % 3 == 0 {
                        avoided
                    } else {
                        ObjectId([(file * 4 + p as usize) as u8; 32])
                    };
                    // Overlapping ranges: each file repeats part of the one before.
                    let blobs = (0..size / 4)
                        .map(|i| entry(first / 2 + i * 4 + p % 2, file as u32))
                        .collect();
                    (pack, blobs)
                })
                .collect();
            first += size;
            bulk.insert_all(packs.iter().map(|(p, b)| (*p, b.as_slice())), replaces);
            for (pack, blobs) in &packs {
                for blob in blobs {
                    single.insert(*pack, blob, |indexed| replaces(pack, indexed));
                }
            }
        }
        assert_eq!(bulk.len(), single.len());
        for n in 0..first {
            assert_eq!(bulk.get(&id(n)), single.get(&id(n)), "chunk {n}");
        }
    }

    #[test]
    fn a_million_chunks_cost_under_100_bytes_each() {
        let mut index = ChunkIndex::default();
        for n in 0..1_000_000u64 {
            // A pack of about 100 chunks, as a repository of small chunks has.
            let pack = ObjectId::of(format!("pack {}", n / 100).as_bytes());
            index.insert(pack, &entry(n, 0), |_| false);
        }
        let per_chunk = index.heap_bytes() as f64 / index.len() as f64;
        assert!(per_chunk < 100.0, "{per_chunk:.1} bytes per chunk");
    }
}
