//! Property tests of every decoder of the format: random bytes, and real encodings mutated
//! (bytes flipped, cut short, lengths rewritten), never panic, never allocate past the format's
//! limits (an object inflates to at most 256 times its size plus 1 MiB), and always end in a typed error (`Integrity`, or `UnsupportedFormat` for a version
//! byte from the future). A longer run lives in `fuzz/` (see DEVELOP.md).

use lightrag_backup::format::{
    self, decode, limits, BlobEntry, ChunkRef, FileEncoding, FileEntry, IndexFile, IndexPack,
    ObjectId, PointSnapshot, RecoveryPoint, SnapshotManifest,
};
use lightrag_backup::Error;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Records the largest single allocation made while the test binary runs.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// No input of these tests is over 64 KiB (the bombs' frames included): nothing decoding one
/// may take more than this in one allocation. A metadata object may inflate to 256 times its
/// size plus 1 MiB (17 MiB for 64 KiB), into a buffer that grows by doubling.
const ALLOCATION_BOUND: usize = 36 << 20;

fn assert_typed<T: std::fmt::Debug>(result: Result<T, Error>) {
    if let Err(error) = result {
        assert!(
            matches!(
                error,
                Error::Integrity { .. } | Error::UnsupportedFormat { .. }
            ),
            "an untyped failure: {error:?}"
        );
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= ALLOCATION_BOUND,
        "an allocation of {largest} bytes"
    );
}

fn id(seed: u8) -> ObjectId {
    ObjectId::of(&[seed])
}

fn manifest(files: usize, chunk_length: u32) -> SnapshotManifest {
    let files: Vec<FileEntry> = (0..files)
        .map(|i| {
            let chunks = vec![
                ChunkRef {
                    id: id(i as u8),
                    length: chunk_length,
                };
                3
            ];
            FileEntry {
                path: format!("kv_store_{i}.json"),
                size: 3 * chunk_length as u64,
                mtime_ns: 1,
                mode: 0o644,
                uid: Some(1000),
                gid: Some(1000),
                digest: id(200),
                chunks,
                encoding: FileEncoding::Raw,
            }
        })
        .collect();
    SnapshotManifest {
        snapshot_id: "2b1b0c8e-4a57-4a57-8d1b-0c8e4a574a57".to_string(),
        graph_id: "g".to_string(),
        time: "2026-12-01T00:00:00Z".to_string(),
        hostname: "h".to_string(),
        description: None,
        tags: vec![],
        metadata_json: "{}".to_string(),
        data_hash: SnapshotManifest::compute_data_hash(&files),
        files,
        logical_size: 0,
        added_size: 0,
        added_raw_size: 0,
    }
}

fn index(blobs: &[(u32, u32, u32)], size: u64) -> IndexFile {
    IndexFile {
        packs: vec![IndexPack {
            id: id(7),
            size,
            blobs: blobs
                .iter()
                .enumerate()
                .map(|(i, &(offset, length, raw_length))| BlobEntry {
                    id: id(i as u8),
                    offset,
                    length,
                    raw_length,
                })
                .collect(),
        }],
    }
}

fn pack(chunks: &[&[u8]]) -> Vec<u8> {
    let mut writer = format::pack::PackWriter::new();
    for chunk in chunks {
        let compressed = zstd::bulk::compress(chunk, 1).unwrap();
        writer.add(ObjectId::of(chunk), &compressed, chunk.len() as u32);
    }
    writer
        .finish(&lightrag_backup::format::Codec::plain())
        .unwrap()
        .1
}

fn point() -> RecoveryPoint {
    let mut graphs = std::collections::BTreeMap::new();
    graphs.insert(
        "g".to_string(),
        PointSnapshot {
            snapshot_id: "2b1b0c8e-4a57-4a57-8d1b-0c8e4a574a57".to_string(),
            data_hash: id(1),
            time: "2026-12-01T00:00:00Z".to_string(),
        },
    );
    RecoveryPoint {
        checkpoint_id: "3c1b0c8e-4a57-4a57-8d1b-0c8e4a574a57".to_string(),
        timestamp: "2026-12-01T00:00:00Z".to_string(),
        hostname: "h".to_string(),
        description: None,
        created_by: None,
        graphs,
        metadata_json: "{}".to_string(),
    }
}

/// Every decoder, on the same bytes.
fn decode_all(bytes: &[u8]) {
    assert_typed(decode::manifest(bytes));
    assert_typed(decode::index(bytes, limits::MAX_ROW_CHUNK));
    assert_typed(decode::pack_trailer(bytes));
    assert_typed(decode::recovery_point(bytes));
    assert_typed(decode::validation(bytes));
    assert_typed(decode::prune_marker(bytes));
    assert_typed(decode::damage_record(bytes));
    assert_typed(lightrag_backup::lease::decode_record(bytes, "slot"));
}

fn sealing_codec() -> lightrag_backup::format::Codec {
    static KEY: std::sync::OnceLock<std::sync::Arc<lightrag_backup::keys::MasterKey>> =
        std::sync::OnceLock::new();
    let key = KEY
        .get_or_init(|| std::sync::Arc::new(lightrag_backup::keys::MasterKey::generate().unwrap()));
    lightrag_backup::format::Codec::encrypted(key.clone())
}

/// Sealed encodings of a manifest, an index object and a recovery point: (magic, name, bytes).
fn sealed_originals(
    codec: &lightrag_backup::format::Codec,
) -> Vec<([u8; 4], &'static str, Vec<u8>)> {
    vec![
        (
            *b"LRBS",
            "snapshots/g/x",
            codec
                .encode_object(b"LRBS", "snapshots/g/x", &manifest(3, 100))
                .unwrap(),
        ),
        (
            *b"LRBI",
            "",
            codec
                .encode_object(b"LRBI", "", &index(&[(8, 20, 100)], 1000))
                .unwrap(),
        ),
        (
            *b"LRBP",
            "recovery/p/point",
            codec
                .encode_object(b"LRBP", "recovery/p/point", &point())
                .unwrap(),
        ),
    ]
}

/// A real encoding of each kind.
fn originals() -> Vec<Vec<u8>> {
    vec![
        decode::encode_manifest(&manifest(3, 100)).unwrap(),
        decode::encode_index(&index(&[(8, 20, 100), (28, 20, 100)], 1000)).unwrap(),
        pack(&[b"first chunk of text", b"second chunk", &[7u8; 5000]]),
        decode::encode_recovery_point(&point()).unwrap(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Cut { at: usize },
    Put { at: usize, value: u32 },
    Splice { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
        (any::<usize>(), any::<u32>()).prop_map(|(at, value)| Mutation::Put { at, value }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(at, bytes)| Mutation::Splice { at, bytes }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for change in mutations {
        if bytes.is_empty() {
            break;
        }
        match change {
            Mutation::Flip { at, bits } => {
                let at = at % bytes.len();
                bytes[at] ^= bits;
            }
            Mutation::Cut { at } => bytes.truncate(at % bytes.len()),
            Mutation::Put { at, value } => {
                let at = at % bytes.len();
                for (i, b) in value.to_le_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = b;
                    }
                }
            }
            Mutation::Splice { at, bytes: more } => {
                let at = at % bytes.len();
                bytes.splice(at..at, more.iter().copied());
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_end_in_a_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_bytes_behind_every_magic_end_in_a_typed_error(
        magic in prop_oneof![Just(*b"LRBS"), Just(*b"LRBI"), Just(*b"LRBP"), Just(*b"LRBV"), Just(*b"LRBM"), Just(*b"LRBD")],
        version in 0u8..8,
        body in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let mut bytes = magic.to_vec();
        bytes.push(version);
        bytes.extend(body);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_real_objects_end_in_a_typed_error(
        which in 0usize..4,
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let bytes = mutate(originals()[which].clone(), &mutations);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_sealed_objects_end_in_a_typed_error_never_a_decoded_object(
        which in 0usize..3,
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let codec = sealing_codec();
        let (magic, name, original) = &sealed_originals(&codec)[which];
        let bytes = mutate(original.clone(), &mutations);
        let decoded = codec.decode_object::<serde_json::Value>(magic, name, &bytes, "object");
        if bytes != *original {
            prop_assert!(decoded.is_err(), "a changed sealed object decoded");
        }
        assert_typed(decoded);
    }

    #[test]
    fn index_entries_with_any_lengths_are_checked_before_use(
        blobs in proptest::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 1..32),
        size in any::<u64>(),
    ) {
        let bytes = decode::encode_index(&index(&blobs, size)).unwrap();
        match decode::index(&bytes, limits::MAX_ROW_CHUNK) {
            Ok(file) => {
                for blob in &file.packs[0].blobs {
                    prop_assert!(blob.raw_length <= limits::MAX_ROW_CHUNK);
                    prop_assert!(blob.length as u64 <= limits::max_compressed(blob.raw_length));
                    prop_assert!(blob.offset as u64 + blob.length as u64 <= size);
                }
            }
            Err(error) => prop_assert!(matches!(error, Error::Integrity { .. }), "{error:?}"),
        }
        assert_typed(Ok::<(), Error>(()));
    }

    #[test]
    fn manifest_chunks_of_any_length_are_checked(chunk_length in any::<u32>(), files in 0usize..4) {
        let bytes = decode::encode_manifest(&manifest(files, chunk_length)).unwrap();
        match decode::manifest(&bytes) {
            Ok(manifest) => prop_assert!(manifest
                .files
                .iter()
                .flat_map(|f| &f.chunks)
                .all(|c| c.length <= limits::MAX_CHUNK)),
            Err(error) => prop_assert!(matches!(error, Error::Integrity { .. }), "{error:?}"),
        }
    }
}

#[test]
fn zstd_bombs_inflate_no_further_than_the_limits() {
    // 1 GiB of zeros in a few tens of KiB, with its size declared in the frame and without,
    // written a MiB at a time (this test allocates nothing big either).
    let bomb = |declared: bool| {
        let mut frame = Vec::new();
        let mut encoder = zstd::stream::write::Encoder::new(&mut frame, 1).unwrap();
        encoder.include_contentsize(declared).unwrap();
        if declared {
            encoder.set_pledged_src_size(Some(1 << 30)).unwrap();
        }
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            std::io::Write::write_all(&mut encoder, &zeros).unwrap();
        }
        encoder.finish().unwrap();
        frame
    };
    let (declared, streamed) = (bomb(true), bomb(false));
    assert!(declared.len() < 64 << 10 && streamed.len() < 64 << 10);
    for frame in [&declared, &streamed] {
        for magic in [b"LRBS", b"LRBI", b"LRBP"] {
            let mut bytes = magic.to_vec();
            bytes.push(format::FORMAT_VERSION as u8);
            bytes.extend_from_slice(frame);
            decode_all(&bytes);
        }
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= ALLOCATION_BOUND,
        "an allocation of {largest} bytes"
    );
}

#[test]
fn the_originals_decode() {
    let originals = originals();
    decode::manifest(&originals[0]).unwrap();
    decode::index(&originals[1], limits::MAX_ROW_CHUNK).unwrap();
    assert_eq!(decode::pack_trailer(&originals[2]).unwrap().len(), 3);
    decode::recovery_point(&originals[3]).unwrap();
}
