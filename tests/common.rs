//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

/// Deterministic pseudo-random bytes (xorshift), so tests need no RNG seed handling.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A small folder that looks like a LightRAG graph: JSON KV files, a vdb file and GraphML.
pub fn write_graph(dir: &Path, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut docs = String::from("{\n");
    for i in 0..50 {
        docs.push_str(&format!("  \"doc-{i:04}-{seed}\": {{\n    \"content\": \"document {i} of seed {seed}\"\n  }},\n"));
    }
    docs.push_str("  \"last\": {}\n}");
    std::fs::write(dir.join("kv_store_full_docs.json"), docs).unwrap();
    std::fs::write(
        dir.join("kv_store_text_chunks.json"),
        "{\n  \"chunk-1\": {},\n  \"chunk-2\": {}\n}",
    )
    .unwrap();
    let matrix = pseudo_random(3 * 1024 * 1024, seed);
    std::fs::write(dir.join("vdb_entities.json"), &matrix).unwrap();
    std::fs::write(
        dir.join("graph_chunk_entity_relation.graphml"),
        "<graphml><graph><node id=\"A\"/><node id=\"B\"/><edge source=\"A\" target=\"B\"/></graph></graphml>",
    )
    .unwrap();
    // Not graph files: never captured.
    std::fs::write(dir.join("vdb_entities.json.tmp.1.2.x"), b"partial").unwrap();
    std::fs::create_dir_all(dir.join("other_workspace")).unwrap();
    std::fs::write(dir.join("other_workspace/kv_store_full_docs.json"), b"{}").unwrap();
}

/// Graph files of a folder, by name.
pub fn graph_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            lightrag_backup::source::is_graph_file(&name)
                .then(|| (name, std::fs::read(e.path()).unwrap()))
        })
        .collect()
}

/// A NanoVectorDB file as nano-vectordb writes it: rows in `data`, the matrix as one base64
/// string of little-endian float32.
pub fn nano_vdb(rows: &[u32], dim: usize) -> Vec<u8> {
    use base64::Engine;
    let mut data = Vec::new();
    let mut matrix = Vec::new();
    for &row in rows {
        data.push(format!(
            "{{\"__id__\": \"ent-{row:08}\", \"content\": \"entity {row}\"}}"
        ));
        let values = pseudo_random(dim * 4, row as u64 + 1);
        matrix.extend_from_slice(&values);
    }
    let text = base64::engine::general_purpose::STANDARD.encode(&matrix);
    format!(
        "{{\"embedding_dim\": {dim}, \"data\": [{}], \"matrix\": \"{text}\"}}",
        data.join(", ")
    )
    .into_bytes()
}

/// The snapshots verify with read-data, and `snapshot_id` of graph `g` restores exactly the
/// graph files now in `expected_dir`.
pub fn assert_verifies_and_restores(
    repo: &lightrag_backup::Repository,
    manifests: &[lightrag_backup::format::SnapshotManifest],
    snapshot_id: &str,
    expected_dir: &Path,
) {
    use lightrag_backup::operations::{restore_snapshot, RestoreOptions};
    use lightrag_backup::verify::{verify_snapshots, VerifyOptions};
    use lightrag_backup::NoProgress;
    let read_all = VerifyOptions {
        read_data: true,
        read_data_subset: None,
    };
    let report = verify_snapshots(repo, manifests, read_all, &NoProgress).unwrap();
    assert!(report.ok, "{report:?}");
    let target = tempfile::tempdir().unwrap();
    restore_snapshot(
        repo,
        "g",
        snapshot_id,
        target.path(),
        RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(graph_files(target.path()), graph_files(expected_dir));
}

/// Every file under `dir`, recursively, sorted (a repository's objects, as raw files).
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Verify every snapshot of the repository, reading all data (unreadable manifests and index
/// objects are errors of the report).
pub fn verify_all(repo: &lightrag_backup::Repository) -> lightrag_backup::verify::VerifyReport {
    let scan = repo.scan_snapshots(None).unwrap();
    let options = lightrag_backup::verify::VerifyOptions {
        read_data: true,
        read_data_subset: None,
    };
    lightrag_backup::verify::verify_scan(repo, &scan, options, &lightrag_backup::NoProgress)
        .unwrap()
}

/// Read one chunk by id (blocking).
#[allow(dead_code)]
pub fn block_on_read(
    repo: &lightrag_backup::Repository,
    id: &lightrag_backup::format::ObjectId,
) -> lightrag_backup::Result<Vec<u8>> {
    lightrag_backup::runtime::block_on(repo.read_chunk(id))
}

/// Snapshot id -> the graph files it must restore.
pub type Expected = std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<u8>>>;

/// Every snapshot of graph "g" verifies with all its data read and restores the files
/// `expected` holds for it.
pub fn assert_all_restore(repo: &lightrag_backup::Repository, expected: &Expected) {
    use lightrag_backup::operations::{restore_snapshot, RestoreOptions};
    use lightrag_backup::verify::{verify_snapshots, VerifyOptions};
    let manifests = repo.list_snapshots("g").unwrap();
    let read_all = VerifyOptions {
        read_data: true,
        read_data_subset: None,
    };
    let report =
        verify_snapshots(repo, &manifests, read_all, &lightrag_backup::NoProgress).unwrap();
    assert!(report.ok, "{report:?}");
    for manifest in manifests {
        let target = tempfile::tempdir().unwrap();
        restore_snapshot(
            repo,
            "g",
            &manifest.snapshot_id,
            target.path(),
            RestoreOptions::default(),
            &lightrag_backup::NoProgress,
        )
        .unwrap();
        assert_eq!(
            &graph_files(target.path()),
            &expected[&manifest.snapshot_id],
            "snapshot {} restores what was backed up",
            manifest.snapshot_id
        );
    }
}
