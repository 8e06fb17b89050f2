//! What the in-memory index costs per chunk, measured by counting every heap allocation.
//!
//!     cargo run --release --example index_memory [CHUNKS]
//!
//! A repository whose index lists CHUNKS chunks (default a million) in packs of 100 chunks is
//! opened afresh, as a new process does; the bytes the open holds on the heap afterwards,
//! divided by the chunks, are the figure (`BENCHMARKS.md`, "Index memory"). Beside it, the same
//! chunks in the map the index used before (`HashMap<ObjectId, BlobLocation>`).

use lightrag_backup::format::{BlobEntry, IdMap, IndexFile, IndexPack, ObjectId};
use lightrag_backup::repository::BlobLocation;
use lightrag_backup::{Backend, Repository};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size, Ordering::Relaxed);
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn held() -> usize {
    HELD.load(Ordering::Relaxed)
}

fn main() {
    let chunks: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("CHUNKS is a number"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("repo");
    let file = IndexFile {
        packs: (0..chunks.div_ceil(100))
            .map(|p| IndexPack {
                id: ObjectId::of(format!("pack {p}").as_bytes()),
                size: 100 * 4096 + 65_536,
                blobs: (p * 100..((p + 1) * 100).min(chunks))
                    .map(|n| BlobEntry {
                        id: ObjectId::of(&n.to_le_bytes()),
                        offset: 64 + (n % 100) as u32 * 4096,
                        length: 4096,
                        raw_length: 8192,
                    })
                    .collect(),
            })
            .collect(),
    };
    {
        let repo = Repository::open(Backend::open(location.to_str().unwrap()).unwrap(), true)
            .expect("a new repository");
        repo.write_index(&file).expect("index written");
    }

    // A new process's view: open the repository, which loads its index.
    let before = held();
    let started = std::time::Instant::now();
    let repo = Repository::open(Backend::open(location.to_str().unwrap()).unwrap(), false)
        .expect("the repository opens");
    repo.refresh_index().expect("the index loads");
    assert!(
        repo.unreadable_index_objects().is_empty(),
        "{:?}",
        repo.unreadable_index_objects()
    );
    let after = held();
    let load_seconds = started.elapsed().as_secs_f64();
    let (estimated, indexed) = repo.chunk_index_size();
    assert_eq!(indexed as u64, chunks);
    let per_chunk = (after - before) as f64 / chunks as f64;
    println!(
        "index of {chunks} chunks in {} packs: {:.1} MB held after opening the repository, {per_chunk:.1} bytes per chunk (chunk index alone {:.1}), loaded in {load_seconds:.2} s",
        file.packs.len(),
        (after - before) as f64 / 1e6,
        estimated as f64 / chunks as f64
    );

    // Inserting alone, then the map the index used before, for comparison.
    let started = std::time::Instant::now();
    let mut alone = lightrag_backup::chunk_index::ChunkIndex::default();
    for pack in &file.packs {
        for blob in &pack.blobs {
            alone.insert(pack.id, blob, |_| false);
        }
    }
    println!(
        "inserting {} chunks alone: {:.2} s",
        alone.len(),
        started.elapsed().as_secs_f64()
    );
    drop(alone);
    let before = held();
    let started = std::time::Instant::now();
    let mut map: IdMap<BlobLocation> = IdMap::default();
    for pack in &file.packs {
        for blob in &pack.blobs {
            map.insert(
                blob.id,
                BlobLocation {
                    pack: pack.id,
                    entry: *blob,
                },
            );
        }
    }
    let old = (held() - before) as f64 / chunks as f64;
    println!(
        "the same chunks in a HashMap<ObjectId, BlobLocation>: {old:.1} bytes per chunk, inserted in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(map);
    drop(repo);
}
