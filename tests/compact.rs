//! Index compaction: the index objects one per snapshot merge into few, every chunk stays
//! indexed throughout, an interrupted compaction converges, and backups go on meanwhile.

mod common;

use lightrag_backup::compact::{compact, AUTO_COMPACT_AT};
use lightrag_backup::prune::{prune, PruneOptions};
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn open(dir: &Path) -> Repository {
    Repository::open(Backend::open(dir.to_str().unwrap()).unwrap(), true).unwrap()
}

/// A small graph whose files differ with `seed`: each snapshot writes a pack of its own.
fn write_small_graph(dir: &Path, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("kv_store_full_docs.json"),
        format!("{{\"doc-{seed}\": {{\"content\": \"document of round {seed}\"}}}}"),
    )
    .unwrap();
    std::fs::write(
        dir.join("vdb_entities.json"),
        common::pseudo_random(4096, seed),
    )
    .unwrap();
}

use common::Expected;

fn snapshots(repo: &Repository, graph: &Path, seeds: std::ops::Range<u64>) -> Expected {
    let mut expected = Expected::new();
    for seed in seeds {
        write_small_graph(graph, seed);
        let manifest =
            create_snapshot(repo, "g", graph, &SnapshotOptions::default(), &NoProgress).unwrap();
        expected.insert(manifest.snapshot_id, common::graph_files(graph));
    }
    expected
}

fn index_objects(repo_dir: &Path) -> Vec<PathBuf> {
    common::files_under(&repo_dir.join("index"))
}

/// Every snapshot verifies with all its data read, and restores what was backed up, from a
/// repository opened afresh (as another process would).
fn assert_all_restore(repo_dir: &Path, expected: &Expected) {
    let repo = open(repo_dir);
    assert_eq!(repo.list_snapshots("g").unwrap().len(), expected.len());
    common::assert_all_restore(&repo, expected);
}

#[test]
fn the_index_objects_of_many_snapshots_merge_into_one_and_every_snapshot_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let expected = snapshots(&repo, &tmp.path().join("graph"), 0..12);
    assert_eq!(
        index_objects(&repo_dir).len(),
        12,
        "one index object per snapshot"
    );

    let report = compact(&repo, &NoProgress).unwrap();
    assert_eq!(
        (report.index_objects_before, report.merged, report.written),
        (12, 12, 1)
    );
    assert_eq!(report.index_objects_after, 1);
    assert_eq!(index_objects(&repo_dir).len(), 1);
    assert_eq!(repo.index_objects(), 1, "this process's index follows");
    assert_all_restore(&repo_dir, &expected);

    // Nothing left to merge: a second run changes nothing.
    let again = compact(&repo, &NoProgress).unwrap();
    assert_eq!((again.merged, again.written), (0, 0));
    assert_eq!(index_objects(&repo_dir).len(), 1);
}

#[test]
fn a_compaction_killed_before_it_deleted_its_sources_leaves_a_valid_repository_and_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let graph = tmp.path().join("graph");
    let mut expected = snapshots(&repo, &graph, 0..8);
    let sources: Vec<(PathBuf, Vec<u8>)> = index_objects(&repo_dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    compact(&repo, &NoProgress).unwrap();
    // The state a SIGKILL between writing the union and deleting the sources leaves: both.
    for (path, bytes) in &sources {
        std::fs::write(path, bytes).unwrap();
    }
    assert_eq!(index_objects(&repo_dir).len(), 9);
    assert_all_restore(&repo_dir, &expected);
    // Snapshots go on from that state, and the next compaction converges to one object
    // holding every pack once (its union is the earlier one plus the new packs).
    let repo = open(&repo_dir);
    expected.extend(snapshots(&repo, &graph, 8..10));
    let report = compact(&repo, &NoProgress).unwrap();
    assert_eq!(report.index_objects_after, 1, "{report:?}");
    assert_eq!(index_objects(&repo_dir).len(), 1);
    assert_all_restore(&repo_dir, &expected);
    // Killed again in the same place, with nothing new: the merge is the union itself, which
    // stays (it is not deleted as one of its own sources).
    let union = index_objects(&repo_dir);
    for (path, bytes) in &sources {
        std::fs::write(path, bytes).unwrap();
    }
    let report = compact(&open(&repo_dir), &NoProgress).unwrap();
    assert_eq!(index_objects(&repo_dir), union, "{report:?}");
    assert_all_restore(&repo_dir, &expected);
}

#[test]
fn snapshots_compact_the_index_on_their_own_and_its_objects_stay_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let graph = tmp.path().join("graph");
    let rounds = AUTO_COMPACT_AT as u64 * 2 + 10;
    let mut most = 0;
    let mut expected = Expected::new();
    for seed in 0..rounds {
        expected.extend(snapshots(&repo, &graph, seed..seed + 1));
        most = most.max(index_objects(&repo_dir).len());
    }
    assert!(
        most <= AUTO_COMPACT_AT,
        "at most {AUTO_COMPACT_AT} index objects at any time, not {most}"
    );
    assert!(index_objects(&repo_dir).len() < 20);
    assert_all_restore(&repo_dir, &expected);
}

#[test]
fn a_compaction_waits_for_no_one_and_a_prune_waits_for_a_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    snapshots(&repo, &tmp.path().join("graph"), 0..3);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let lock = |purpose: &str| {
        std::fs::create_dir_all(repo_dir.join("locks")).unwrap();
        std::fs::write(
            repo_dir.join("locks/prune"),
            format!(
                r#"{{"hostname": "{}", "pid": {}, "created_at": "{}"{purpose}}}"#,
                host.trim(),
                std::process::id(),
                chrono::Utc::now().to_rfc3339()
            ),
        )
        .unwrap();
    };
    // A live prune holds the lock: the compaction refuses at once, naming it.
    lock("");
    let error = compact(&repo, &NoProgress).unwrap_err();
    assert!(matches!(error, Error::Conflict { .. }), "{error}");
    assert!(
        error.to_string().contains("another prune is running"),
        "{error}"
    );
    assert_eq!(index_objects(&repo_dir).len(), 3, "nothing merged");
    // A live compaction holds it: a prune waits until it is released, then runs.
    lock(r#", "purpose": "compaction""#);
    let releaser = {
        let path = repo_dir.join("locks/prune");
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(600));
            std::fs::remove_file(path).unwrap();
        })
    };
    let started = std::time::Instant::now();
    let report = prune(
        &repo,
        &PruneOptions {
            grace_seconds: 0,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    releaser.join().unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    assert_eq!(
        report.index_objects_merged, 3,
        "the prune ends by compacting"
    );
    assert_eq!(index_objects(&repo_dir).len(), 1);
}

#[test]
fn backups_compactions_and_readers_running_together_never_lose_a_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = Arc::new(open(&repo_dir));
    let expected: Arc<Mutex<Expected>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..2u64)
        .map(|writer| {
            let (repo_dir, expected, graph) = (
                repo_dir.clone(),
                expected.clone(),
                tmp.path().join(format!("graph-{writer}")),
            );
            std::thread::spawn(move || {
                // Each writer its own handle, as another host would have.
                let repo = open(&repo_dir);
                for round in 0..40 {
                    let made = snapshots(
                        &repo,
                        &graph,
                        writer * 1000 + round..writer * 1000 + round + 1,
                    );
                    expected.lock().unwrap().extend(made);
                }
            })
        })
        .collect();
    let compactor = {
        let (repo, done) = (repo.clone(), done.clone());
        std::thread::spawn(move || {
            let mut merged = 0;
            while !done.load(Ordering::SeqCst) {
                match compact(&repo, &NoProgress) {
                    Ok(report) => merged += report.merged,
                    Err(Error::Conflict { .. }) => {}
                    Err(other) => panic!("compaction failed: {other}"),
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            merged
        })
    };
    let reader = {
        let (repo_dir, done) = (repo_dir.clone(), done.clone());
        std::thread::spawn(move || {
            // A reader that keeps its index current while objects come and go.
            let repo = open(&repo_dir);
            let mut refreshes = 0;
            while !done.load(Ordering::SeqCst) {
                repo.refresh_index().unwrap();
                refreshes += 1;
            }
            refreshes
        })
    };
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let merged = compactor.join().unwrap();
    assert!(reader.join().unwrap() > 0);
    assert!(merged > 0, "compactions ran while backups did");
    let expected = expected.lock().unwrap().clone();
    assert_eq!(expected.len(), 80);
    assert_all_restore(&repo_dir, &expected);
}
