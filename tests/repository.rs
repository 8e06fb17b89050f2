//! Snapshot, restore, verify and crash safety on real local and in-memory repositories.

mod common;

use lightrag_backup::format::{FileEncoding, SnapshotManifest};
use lightrag_backup::operations::{restore_snapshot, RestoreOptions};
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::verify::{verify_snapshots, VerifyOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use std::path::Path;

const READ_ALL: VerifyOptions = VerifyOptions {
    read_data: true,
    read_data_subset: None,
};

fn open_local(dir: &Path) -> Repository {
    Repository::open(Backend::open(dir.to_str().unwrap()).unwrap(), true).unwrap()
}

fn snapshot(
    repo: &Repository,
    graph: &str,
    dir: &Path,
) -> lightrag_backup::format::SnapshotManifest {
    create_snapshot(repo, graph, dir, &SnapshotOptions::default(), &NoProgress).unwrap()
}

/// A graph written into `tmp/graph`, a local repository in `tmp/repo` and one snapshot of it.
fn graph_in_local_repository(tmp: &Path) -> (std::path::PathBuf, Repository, SnapshotManifest) {
    let graph = tmp.join("graph");
    common::write_graph(&graph, 1);
    let repo = open_local(&tmp.join("repo"));
    let manifest = snapshot(&repo, "g1", &graph);
    (graph, repo, manifest)
}

#[test]
fn snapshot_restore_round_trip_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let (graph, repo, manifest) = graph_in_local_repository(tmp.path());
    assert_eq!(
        manifest.files.len(),
        4,
        "temp files and sub-folders are not graph files"
    );
    let metadata: serde_json::Value = serde_json::from_str(&manifest.metadata_json).unwrap();
    assert_eq!(metadata["entities"], 2);
    assert_eq!(metadata["relations"], 1);
    assert_eq!(metadata["documents"], 51);
    assert_eq!(metadata["chunks"], 2);

    let target = tmp.path().join("restored");
    restore_snapshot(
        &repo,
        "g1",
        &manifest.snapshot_id[..8],
        &target,
        RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    assert_eq!(
        mtime(&target.join("vdb_entities.json")),
        mtime(&graph.join("vdb_entities.json"))
    );

    // A reopened repository (a new process) sees the same snapshot.
    let reopened = open_local(&tmp.path().join("repo"));
    assert_eq!(reopened.list_snapshots("g1").unwrap(), vec![manifest]);
}

#[test]
fn identical_data_is_stored_once_across_snapshots_and_graphs() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 2);
    let repo = Repository::open(Backend::open("memory://").unwrap(), true).unwrap();
    let first = snapshot(&repo, "g1", &graph);
    assert!(first.added_size > 0);
    let again = snapshot(&repo, "g1", &graph);
    assert_eq!(again.added_size, 0);
    assert_eq!(again.data_hash, first.data_hash);
    let other_graph = snapshot(&repo, "g2", &graph);
    assert_eq!(
        other_graph.added_size, 0,
        "a second graph with the same files stores nothing new"
    );

    // Append to the big file: only the tail is new.
    let mut vdb = std::fs::read(graph.join("vdb_entities.json")).unwrap();
    vdb.extend_from_slice(&common::pseudo_random(100_000, 99));
    std::fs::write(graph.join("vdb_entities.json"), vdb).unwrap();
    let changed = snapshot(&repo, "g1", &graph);
    assert_ne!(changed.data_hash, first.data_hash);
    assert!(
        changed.added_raw_size < 2 * 1024 * 1024,
        "added {} bytes",
        changed.added_raw_size
    );
}

/// A small graph (seed 3) snapshotted as "g1" into a fresh local repository.
fn snapshotted_graph(
    tmp: &Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    Repository,
    SnapshotManifest,
) {
    let graph = tmp.join("graph");
    common::write_graph(&graph, 3);
    let repo_dir = tmp.join("repo");
    let repo = open_local(&repo_dir);
    let manifest = snapshot(&repo, "g1", &graph);
    (graph, repo_dir, repo, manifest)
}

fn biggest_pack(repo_dir: &Path) -> std::path::PathBuf {
    walk(&repo_dir.join("data"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

#[test]
fn a_flipped_byte_is_reported_by_verify_and_refused_by_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let (_graph, repo_dir, repo, manifest) = snapshotted_graph(tmp.path());
    assert!(
        verify_snapshots(
            &repo,
            std::slice::from_ref(&manifest),
            READ_ALL,
            &NoProgress
        )
        .unwrap()
        .ok
    );

    // Flip one byte in the middle of the biggest pack.
    let pack = biggest_pack(&repo_dir);
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&pack, bytes).unwrap();

    let structural = verify_snapshots(
        &repo,
        std::slice::from_ref(&manifest),
        VerifyOptions {
            read_data: false,
            read_data_subset: None,
        },
        &NoProgress,
    )
    .unwrap();
    assert!(
        structural.ok,
        "structure is intact: {:?}",
        structural.errors
    );
    let report = verify_snapshots(
        &repo,
        std::slice::from_ref(&manifest),
        READ_ALL,
        &NoProgress,
    )
    .unwrap();
    assert!(!report.ok);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("does not match its hash")),
        "{:?}",
        report.errors
    );

    // Restore into a folder holding other data: refused, folder untouched.
    let target = tmp.path().join("target");
    common::write_graph(&target, 4);
    let before = common::graph_files(&target);
    let error = restore_snapshot(
        &repo,
        "g1",
        &manifest.snapshot_id,
        &target,
        RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(error, Error::Integrity { .. }), "{error}");
    assert_eq!(common::graph_files(&target), before);
    assert!(std::fs::read_dir(&target).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".lightrag-backup")));
}

#[test]
fn a_truncated_or_missing_pack_is_refused_by_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let (graph, repo_dir, repo, manifest) = snapshotted_graph(tmp.path());
    let pack = biggest_pack(&repo_dir);
    let whole = std::fs::read(&pack).unwrap();
    let target = tmp.path().join("target");
    common::write_graph(&target, 4);
    let before = common::graph_files(&target);
    // No safety snapshot: it would stop at the missing pack first (rightly), before the read.
    let options = RestoreOptions {
        safety_snapshot: false,
        ..RestoreOptions::default()
    };
    let restore = || {
        restore_snapshot(
            &repo,
            "g1",
            &manifest.snapshot_id,
            &target,
            options,
            &NoProgress,
        )
    };
    let refused = |expected: &str| {
        let error = restore().unwrap_err();
        assert!(matches!(error, Error::Integrity { .. }), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
        assert_eq!(common::graph_files(&target), before);
    };

    std::fs::write(&pack, &whole[..whole.len() / 2]).unwrap();
    refused("shorter than the index says");
    std::fs::remove_file(&pack).unwrap();
    refused("missing from the repository");

    // Put back, the same snapshot restores byte for byte.
    std::fs::write(&pack, &whole).unwrap();
    restore().unwrap();
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));
}

#[test]
fn missing_and_foreign_snapshot_ids_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 5);
    let repo = Repository::open(Backend::open("memory://").unwrap(), true).unwrap();
    let manifest = snapshot(&repo, "g1", &graph);
    let error = repo.load_snapshot("g2", &manifest.snapshot_id).unwrap_err();
    assert!(
        error.to_string().contains("belongs to graph \"g1\""),
        "{error}"
    );
    assert!(matches!(
        repo.load_snapshot("g1", "0123abcd"),
        Err(Error::SnapshotNotFound { .. })
    ));
    assert!(matches!(
        repo.load_snapshot("g1", "../../etc"),
        Err(Error::SnapshotNotFound { .. })
    ));
    assert!(matches!(
        repo.load_snapshot("../g1", "0123"),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        create_snapshot(
            &repo,
            "g1",
            &tmp.path().join("missing"),
            &SnapshotOptions::default(),
            &NoProgress
        ),
        Err(Error::GraphDirNotFound { .. })
    ));
    assert!(matches!(
        Repository::open(Backend::open("memory://").unwrap(), false),
        Err(Error::RepositoryNotFound { .. })
    ));
}

#[test]
fn an_interrupted_snapshot_leaves_a_valid_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 6);
    let repo_dir = tmp.path().join("repo");
    let repo = open_local(&repo_dir);
    let first = snapshot(&repo, "g1", &graph);

    // A run that died after writing packs, before its index and manifest: simulate by
    // writing the packs of a changed graph, then dropping the index and manifest it wrote.
    let mut vdb = std::fs::read(graph.join("vdb_entities.json")).unwrap();
    vdb.splice(0..0, common::pseudo_random(2 << 20, 77));
    std::fs::write(graph.join("vdb_entities.json"), vdb).unwrap();
    let index_before: Vec<_> = walk(&repo_dir.join("index"));
    let second = snapshot(&repo, "g1", &graph);
    for path in walk(&repo_dir.join("index")) {
        if !index_before.contains(&path) {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::remove_file(repo_dir.join("snapshots/g1").join(&second.snapshot_id)).unwrap();
    // And a half-written temp file, as a crash in the middle of a put leaves.
    std::fs::write(repo_dir.join("data/partial#1"), b"garbage").unwrap();

    let repo = open_local(&repo_dir);
    assert_eq!(repo.list_snapshots("g1").unwrap(), vec![first.clone()]);
    assert!(
        verify_snapshots(&repo, std::slice::from_ref(&first), READ_ALL, &NoProgress)
            .unwrap()
            .ok
    );
    let again = snapshot(&repo, "g1", &graph);
    assert!(
        verify_snapshots(&repo, &[first, again.clone()], READ_ALL, &NoProgress)
            .unwrap()
            .ok
    );
    let target = tmp.path().join("restored");
    restore_snapshot(
        &repo,
        "g1",
        &again.snapshot_id,
        &target,
        RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));
}

#[test]
fn restore_keeps_the_replaced_state_and_removes_files_the_snapshot_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 8);
    let repo = Repository::open(Backend::open("memory://").unwrap(), true).unwrap();
    let first = snapshot(&repo, "g1", &graph);
    let original = common::graph_files(&graph);
    std::fs::write(graph.join("kv_store_extra.json"), b"{}").unwrap();
    std::fs::write(
        graph.join("kv_store_full_docs.json"),
        b"{\n  \"changed\": {}\n}",
    )
    .unwrap();
    let changed = common::graph_files(&graph);

    let outcome = restore_snapshot(
        &repo,
        "g1",
        &first.snapshot_id,
        &graph,
        RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(common::graph_files(&graph), original);
    assert!(
        graph
            .join("other_workspace/kv_store_full_docs.json")
            .exists(),
        "other workspaces are left alone"
    );
    let safety = outcome.safety_snapshot.expect("the replaced state is kept");
    assert_eq!(safety.tags, vec!["pre-restore".to_string()]);
    // Undo the restore from the safety snapshot.
    restore_snapshot(
        &repo,
        "g1",
        &safety.snapshot_id,
        &graph,
        RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(common::graph_files(&graph), changed);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_deleted_vector_row_costs_a_chunk_not_the_rest_of_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    std::fs::create_dir_all(&graph).unwrap();
    let rows: Vec<u32> = (0..3000).collect();
    std::fs::write(
        graph.join("vdb_entities.json"),
        common::nano_vdb(&rows, 1024),
    )
    .unwrap();
    let repo = Repository::open(Backend::open("memory://").unwrap(), true).unwrap();
    let first = snapshot(&repo, "g", &graph);
    assert!(
        matches!(first.files[0].encoding, FileEncoding::NanoVdbMatrix { .. }),
        "{:?}",
        first.files[0].encoding
    );
    let first_bytes = std::fs::read(graph.join("vdb_entities.json")).unwrap();

    // Delete three rows spread over the matrix: the base64 framing shifts after each.
    let fewer: Vec<u32> = rows
        .iter()
        .copied()
        .filter(|r| ![700, 1500, 2400].contains(r))
        .collect();
    std::fs::write(
        graph.join("vdb_entities.json"),
        common::nano_vdb(&fewer, 1024),
    )
    .unwrap();
    let second = snapshot(&repo, "g", &graph);
    let file_size = second.logical_size;
    assert!(
        second.added_raw_size * 20 < file_size,
        "a 3-row delete added {} bytes of a {} byte file",
        second.added_raw_size,
        file_size
    );

    for (manifest, bytes) in [
        (&first, first_bytes),
        (
            &second,
            std::fs::read(graph.join("vdb_entities.json")).unwrap(),
        ),
    ] {
        let target = tmp.path().join(&manifest.snapshot_id);
        let options = RestoreOptions {
            safety_snapshot: false,
            dry_run: false,
        };
        restore_snapshot(
            &repo,
            "g",
            &manifest.snapshot_id,
            &target,
            options,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(
            std::fs::read(target.join("vdb_entities.json")).unwrap(),
            bytes
        );
    }
    assert!(
        verify_snapshots(&repo, &[first, second], READ_ALL, &NoProgress)
            .unwrap()
            .ok
    );
}

#[test]
fn an_unchanged_graph_can_be_skipped() {
    use lightrag_backup::snapshot::{snapshot_or_skip, SnapshotOutcome};
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 40);
    let repo = Repository::open(Backend::open("memory://").unwrap(), true).unwrap();
    let options = SnapshotOptions {
        skip_if_unchanged: true,
        ..Default::default()
    };
    let first = match snapshot_or_skip(&repo, "g", &graph, &options, &NoProgress).unwrap() {
        SnapshotOutcome::Created(manifest) => manifest,
        other => panic!("the first snapshot is created: {other:?}"),
    };
    let again = snapshot_or_skip(&repo, "g", &graph, &options, &NoProgress).unwrap();
    assert_eq!(again, SnapshotOutcome::Unchanged(first.clone()));
    assert_eq!(repo.list_snapshots("g").unwrap().len(), 1);
    // Without the option the same data gives a new snapshot (with the same data hash).
    let forced = snapshot(&repo, "g", &graph);
    assert_eq!(forced.data_hash, first.data_hash);
    std::fs::write(graph.join("kv_store_text_chunks.json"), "{}").unwrap();
    assert!(matches!(
        snapshot_or_skip(&repo, "g", &graph, &options, &NoProgress).unwrap(),
        SnapshotOutcome::Created(_)
    ));
}

#[test]
fn settings_keep_their_newest_version_and_can_be_removed() {
    use lightrag_backup::settings::{put_setting, settings};
    use serde_json::json;
    let repo = Repository::open(Backend::open("memory://").unwrap(), true).unwrap();
    assert!(settings(&repo, "schedules").unwrap().is_empty());
    put_setting(&repo, "schedules", "g1", Some(&json!({"every": 3600}))).unwrap();
    put_setting(
        &repo,
        "schedules",
        "g2",
        Some(&json!({"cron": "0 3 * * *"})),
    )
    .unwrap();
    put_setting(&repo, "schedules", "g1", Some(&json!({"every": 60}))).unwrap();
    let found = settings(&repo, "schedules").unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found["g1"], json!({"every": 60}));
    // Superseded versions are gone: one object per setting.
    let objects =
        lightrag_backup::runtime::block_on(repo.backend().list("settings/schedules/g1")).unwrap();
    assert_eq!(objects.len(), 1);
    put_setting(&repo, "schedules", "g2", None).unwrap();
    assert_eq!(
        settings(&repo, "schedules")
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["g1"]
    );
    assert!(put_setting(&repo, "schedules", "../x", None).is_err());
    assert!(settings(&repo, "a/b").is_err());
}

#[test]
fn a_restore_removes_staging_folders_killed_restores_left_and_keeps_those_of_live_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (graph, repo, manifest) = graph_in_local_repository(tmp.path());
    let target = tmp.path().join("restored");
    let stage = |name: &str| {
        let dir = target.join(format!(".lightrag-backup-restore-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kv_store_full_docs.json"), b"{\"half\": ").unwrap();
        dir
    };
    // Killed: its lock file is there, nobody holds it.
    let killed = stage("killed");
    std::fs::write(killed.join(".owner"), b"").unwrap();
    // Live: another restore holds the lock of its lock file.
    let live = stage("live");
    let held = std::fs::File::create(live.join(".owner")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor `held` keeps open.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    // No lock file: an old one goes, a recent one (its owner may be about to lock it) stays.
    let old = stage("old");
    let recent = stage("recent");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();

    restore_snapshot(
        &repo,
        "g1",
        &manifest.snapshot_id,
        &target,
        RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));
    assert!(!killed.exists(), "a killed restore's staging folder stays");
    assert!(
        !old.exists(),
        "an old staging folder without a lock file stays"
    );
    assert!(live.exists(), "a live restore's staging folder was removed");
    assert!(
        recent.exists(),
        "a recent staging folder without a lock file was removed"
    );
    drop(held);
}

#[test]
fn a_snapshot_file_reads_as_its_bytes_and_a_vector_file_without_its_matrix() {
    use lightrag_backup::file_reader::SnapshotFile;
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    std::fs::create_dir_all(&graph).unwrap();
    // Big enough for several windows; the vector file stored with its matrix decoded.
    let rows: Vec<u32> = (0..3000).collect();
    std::fs::write(
        graph.join("vdb_entities.json"),
        common::nano_vdb(&rows, 1024),
    )
    .unwrap();
    std::fs::write(
        graph.join("kv_store_text_chunks.json"),
        common::pseudo_random(9 << 20, 5),
    )
    .unwrap();
    let repo = open_local(&tmp.path().join("repo"));
    let manifest = snapshot(&repo, "g1", &graph);
    for entry in &manifest.files {
        let mut read = Vec::new();
        SnapshotFile::open(&repo, "g1", &manifest.snapshot_id, entry)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(
            read,
            std::fs::read(graph.join(&entry.path)).unwrap(),
            "{}",
            entry.path
        );
    }
    let vectors = manifest
        .files
        .iter()
        .find(|f| f.path == "vdb_entities.json")
        .unwrap();
    assert!(matches!(
        vectors.encoding,
        FileEncoding::NanoVdbMatrix { .. }
    ));
    let mut text = Vec::new();
    SnapshotFile::without_matrix(&repo, "g1", &manifest.snapshot_id, vectors)
        .unwrap()
        .read_to_end(&mut text)
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(json["matrix"], "", "the matrix is left out, the JSON whole");
    assert_eq!(json["data"].as_array().unwrap().len(), 3000);
    assert!(text.len() < 3000 * 1024, "no matrix chunk was read");
}

/// The records fixture of the Python suite: a database-backed graph's records snapshot.
fn records_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests_py/fixtures/records-v1")
}

#[test]
fn a_records_snapshot_diffs_like_a_file_graph() {
    use lightrag_backup::kg_diff::{deleted_documents, diff_versions};
    let tmp = tempfile::tempdir().unwrap();
    let before = tmp.path().join("before");
    let after = tmp.path().join("after");
    std::fs::create_dir_all(&before).unwrap();
    std::fs::create_dir_all(&after).unwrap();
    for entry in std::fs::read_dir(records_fixture()).unwrap().flatten() {
        std::fs::copy(entry.path(), before.join(entry.file_name())).unwrap();
        std::fs::copy(entry.path(), after.join(entry.file_name())).unwrap();
    }
    // One document gone, with the one entity only it mentioned; another entity edited.
    let drop_line = |file: &str, starts: &str| {
        let text = std::fs::read_to_string(after.join(file)).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with(starts)).collect();
        assert!(kept.len() < text.lines().count(), "{file} holds {starts}");
        std::fs::write(after.join(file), kept.join("\n") + "\n").unwrap();
    };
    let doc = "doc-76d2425919005cc6b230dc706c00f700";
    drop_line("records_doc_status.jsonl", &format!("[\"{doc}\""));
    drop_line("records_full_docs.jsonl", &format!("[\"{doc}\""));
    drop_line("records_graph_nodes.jsonl", "[\"Alice S0\"");
    let nodes = std::fs::read_to_string(after.join("records_graph_nodes.jsonl")).unwrap();
    std::fs::write(
        after.join("records_graph_nodes.jsonl"),
        nodes.replacen("Dana Y1 as described", "Dana Y1, edited,", 1),
    )
    .unwrap();
    let repo = open_local(&tmp.path().join("repo"));
    let first = snapshot(&repo, "db", &before);
    let second = create_snapshot(
        &repo,
        "db",
        &after,
        &SnapshotOptions {
            adopt: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    let diff = diff_versions(&repo, &first, Some(&second), None).unwrap();
    let removed: Vec<&str> = diff
        .documents
        .removed
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(removed, [doc]);
    assert!(diff.documents.added.is_empty());
    assert_eq!(diff.entities.removed, ["Alice S0"]);
    let changed: Vec<(String, Vec<String>)> = diff
        .entities
        .changed
        .iter()
        .map(|c| (c.name[0].clone(), c.fields.clone()))
        .collect();
    assert_eq!(
        changed,
        [("Dana Y1".to_string(), vec!["description".to_string()])]
    );
    assert_eq!(diff.totals["documents"], [2, 1]);
    assert!(diff_versions(&repo, &first, Some(&first), None)
        .unwrap()
        .is_empty());
    // The records snapshot against the folder it was taken of: nothing changed.
    assert!(diff_versions(&repo, &second, None, Some(after.clone()))
        .unwrap()
        .is_empty());
    // A recovery point names a version too: the point's snapshot of the graph.
    use lightrag_backup::kg_diff::load_version;
    let point = lightrag_backup::recovery::create_point(
        &repo,
        &[("db".to_string(), first.snapshot_id.clone())]
            .into_iter()
            .collect(),
        None,
        None,
        "{}",
    )
    .unwrap();
    let from_point = load_version(&repo, "db", &point.checkpoint_id[..8]).unwrap();
    assert_eq!(from_point.snapshot_id, first.snapshot_id);
    assert_eq!(
        diff_versions(&repo, &from_point, Some(&second), None).unwrap(),
        diff
    );
    assert!(matches!(
        load_version(&repo, "other", &point.checkpoint_id),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        load_version(&repo, "db", "0123abcd"),
        Err(Error::SnapshotNotFound { .. })
    ));
    let gone = deleted_documents(&repo, &[first.clone(), second.clone()], None).unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (gone[0].id.as_str(), gone[0].snapshot_id.as_str()),
        (doc, first.snapshot_id.as_str())
    );
}

#[test]
fn a_damaged_chunk_met_by_a_diff_is_damage_not_bad_input() {
    use lightrag_backup::kg_diff::diff_versions;
    // Only the GraphML holds data chunks here, so every pack is the GraphML's.
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    std::fs::create_dir_all(&graph).unwrap();
    let mut xml = String::from(
        "<?xml version='1.0' encoding='utf-8'?>\n<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n\
         <key id=\"d0\" for=\"node\" attr.name=\"description\" attr.type=\"string\"/>\n<graph edgedefault=\"undirected\">\n",
    );
    for n in 0..20_000 {
        xml.push_str(&format!(
            "<node id=\"Entity {n}\"><data key=\"d0\">entity {n} described at length, {}</data></node>\n",
            n * 7919 % 104_729
        ));
    }
    xml.push_str("</graph></graphml>\n");
    std::fs::write(graph.join("graph_chunk_entity_relation.graphml"), xml).unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open_local(&repo_dir);
    let manifest = snapshot(&repo, "g", &graph);
    assert!(diff_versions(&repo, &manifest, None, Some(graph.clone()))
        .unwrap()
        .entities
        .added
        .is_empty());
    for pack in walk(&repo_dir.join("data")) {
        let mut bytes = std::fs::read(&pack).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&pack, bytes).unwrap();
    }
    let repo = open_local(&repo_dir);
    match diff_versions(&repo, &manifest, None, Some(graph.clone())) {
        Err(lightrag_backup::Error::Integrity { message }) => {
            assert!(message.contains("graphml"), "{message}")
        }
        other => panic!("a damaged chunk must be an integrity error: {other:?}"),
    }
}
