//! Chunk boundaries, pack and manifest encoding.

mod common;

use lightrag_backup::chunker::cut_points;
use lightrag_backup::format::{pack, ChunkerParams, Codec, ObjectId};
use std::collections::HashSet;

fn chunk_ids(data: &[u8], params: ChunkerParams) -> Vec<ObjectId> {
    let mut start = 0;
    cut_points(data, params, None)
        .into_iter()
        .map(|end| {
            let id = ObjectId::of(&data[start..end]);
            start = end;
            id
        })
        .collect()
}

#[test]
fn chunk_boundaries_are_deterministic() {
    let data = common::pseudo_random(12 << 20, 7);
    let params = ChunkerParams::default();
    let first = cut_points(&data, params, None);
    assert_eq!(first, cut_points(&data, params, None));
    assert_eq!(*first.last().unwrap(), data.len());
    let sizes: Vec<usize> = first.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(sizes.iter().all(|&s| s <= params.max_size as usize));
    assert!(sizes[..sizes.len() - 1]
        .iter()
        .all(|&s| s >= params.min_size as usize));
}

#[test]
fn chunks_survive_an_insertion_and_a_deletion() {
    let data = common::pseudo_random(16 << 20, 11);
    let params = ChunkerParams::default();
    let before: HashSet<ObjectId> = chunk_ids(&data, params).into_iter().collect();

    let mut inserted = data.clone();
    inserted.splice(
        5 << 20..5 << 20,
        b"a new record in the middle".iter().copied(),
    );
    let after = chunk_ids(&inserted, params);
    let changed = after.iter().filter(|id| !before.contains(id)).count();
    assert!(
        changed <= 2,
        "an insertion changed {changed} of {} chunks",
        after.len()
    );

    let mut deleted = data.clone();
    deleted.drain(9 << 20..(9 << 20) + 4096);
    let after = chunk_ids(&deleted, params);
    let changed = after.iter().filter(|id| !before.contains(id)).count();
    assert!(
        changed <= 2,
        "a deletion changed {changed} of {} chunks",
        after.len()
    );
}

#[test]
fn packs_round_trip_and_detect_corruption() {
    let master = lightrag_backup::keys::MasterKey::generate().unwrap();
    for codec in [
        Codec::plain(),
        Codec::encrypted(std::sync::Arc::new(master)),
    ] {
        packs_round_trip_under(&codec);
    }
}

fn packs_round_trip_under(codec: &Codec) {
    let chunks: Vec<Vec<u8>> = (0..5)
        .map(|i| common::pseudo_random(10_000 + i * 777, i as u64))
        .collect();
    let mut writer = pack::PackWriter::new();
    let mut encoder = codec.chunk_encoder(3).unwrap();
    for chunk in &chunks {
        let id = codec.chunk_id(chunk);
        writer.add(
            id,
            &encoder.encode(&id, chunk, false).unwrap(),
            chunk.len() as u32,
        );
    }
    let (id, bytes, entries) = writer.finish(codec).unwrap();
    assert_eq!(id, pack::pack_id(&bytes));
    assert_eq!(pack::read_trailer(&bytes, codec).unwrap(), entries);
    for (entry, chunk) in entries.iter().zip(&chunks) {
        let blob = &bytes[entry.offset as usize..(entry.offset + entry.length) as usize];
        assert_eq!(&codec.open_chunk(entry, blob).unwrap(), chunk);
    }
    // A flipped byte inside a blob is caught when the blob is opened.
    let mut damaged = bytes.clone();
    let entry = entries[2];
    damaged[entry.offset as usize + entry.length as usize / 2] ^= 0x40;
    let blob = &damaged[entry.offset as usize..(entry.offset + entry.length) as usize];
    assert!(codec.open_chunk(&entry, blob).is_err());
    // A truncated pack is refused.
    assert!(pack::read_trailer(&bytes[..bytes.len() - 3], codec).is_err());
    // So is a trailer one bit off (when sealed, before it is decompressed).
    let mut flipped = bytes.clone();
    let at = flipped.len() - 12;
    flipped[at] ^= 1;
    assert!(pack::read_trailer(&flipped, codec).is_err());
}

#[test]
fn pattern_counts_match_the_graph() {
    use lightrag_backup::graph_stats::FileCounter;
    let mut counter = FileCounter::for_file("kv_store_full_docs.json");
    for piece in
        b"{\n  \"doc-1\": {\n    \"x\": \"a\\n  \\\"b\"\n  },\n  \"doc-2\": {}\n}".chunks(3)
    {
        counter.feed(piece);
    }
    let mut map = serde_json::Map::new();
    counter.record(&mut map);
    assert_eq!(map["documents"], 2);
}
