//! Prune: unused data goes, in two phases; data any snapshot needs never does, even with
//! backups and prunes running at the same time.

mod common;

use lightrag_backup::format::SnapshotManifest;
use lightrag_backup::prune::{prune, PruneOptions};
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn open(dir: &Path) -> Repository {
    Repository::open(Backend::open(dir.to_str().unwrap()).unwrap(), true).unwrap()
}

fn snapshot(repo: &Repository, dir: &Path) -> Result<SnapshotManifest, Error> {
    create_snapshot(repo, "g", dir, &SnapshotOptions::default(), &NoProgress)
}

fn data_bytes(repo_dir: &Path) -> u64 {
    walk(&repo_dir.join("data"))
}

fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn options(grace_seconds: u64) -> PruneOptions {
    PruneOptions {
        grace_seconds,
        ..Default::default()
    }
}

use common::{assert_all_restore, Expected};

#[test]
fn forgotten_data_is_freed_and_kept_data_stays_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let first = snapshot(&repo, &graph).unwrap();
    common::write_graph(&graph, 2);
    let second = snapshot(&repo, &graph).unwrap();
    let expected = BTreeMap::from([(second.snapshot_id.clone(), common::graph_files(&graph))]);
    let before = data_bytes(&repo_dir);

    // Nothing is unused yet: a prune changes nothing.
    let report = prune(&repo, &options(0), &NoProgress).unwrap();
    assert_eq!(
        (report.packs_marked, report.packs_deleted),
        (0, 0),
        "{report:?}"
    );

    repo.delete_snapshot("g", &first.snapshot_id).unwrap();
    let dry = prune(
        &repo,
        &PruneOptions {
            dry_run: true,
            ..options(0)
        },
        &NoProgress,
    )
    .unwrap();
    assert!(dry.bytes_marked > 0, "{dry:?}");
    assert_eq!(data_bytes(&repo_dir), before, "a dry run changes nothing");

    let report = prune(&repo, &options(0), &NoProgress).unwrap();
    assert!(
        report.packs_deleted > 0 && report.bytes_deleted > 0,
        "{report:?}"
    );
    let after = data_bytes(&repo_dir);
    assert!(
        after < before - first.added_size / 2,
        "the first snapshot's own data is gone: {before} -> {after}"
    );
    assert!(
        !repo_dir.join("locks/prune").exists(),
        "the lock is released"
    );
    assert_all_restore(&open(&repo_dir), &expected);
    assert_all_restore(&repo, &expected);

    // Pruning again finds nothing more (and does not repack its own packs over and over).
    let again = prune(&repo, &options(0), &NoProgress).unwrap();
    assert_eq!(
        (
            again.packs_marked,
            again.packs_repacked,
            again.packs_deleted
        ),
        (0, 0, 0),
        "{again:?}"
    );
}

#[test]
fn marked_packs_wait_out_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 3);
    let first = snapshot(&repo, &graph).unwrap();
    repo.delete_snapshot("g", &first.snapshot_id).unwrap();

    let marked = prune(&repo, &options(2), &NoProgress).unwrap();
    assert!(
        marked.packs_marked > 0 && marked.packs_deleted == 0,
        "{marked:?}"
    );
    let waiting = prune(&repo, &options(2), &NoProgress).unwrap();
    assert!(
        waiting.packs_waiting > 0 && waiting.packs_deleted == 0,
        "{waiting:?}"
    );

    // A snapshot taken now does not reuse the marked packs: it stores its data again. (One more
    // file makes its pack differ: packs are content-addressed, and a byte-identical pack would
    // be the marked one, rightly spared by the sweep.)
    std::fs::write(graph.join("kv_store_extra.json"), b"{\"k\": 1}").unwrap();
    let again = snapshot(&repo, &graph).unwrap();
    assert!(
        again.added_size > first.added_size / 2,
        "marked data is not reused ({} vs {})",
        again.added_size,
        first.added_size
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let swept = prune(&repo, &options(2), &NoProgress).unwrap();
    assert!(
        swept.packs_deleted > 0 && swept.markers_swept == 1,
        "{swept:?}"
    );
    let expected = BTreeMap::from([(again.snapshot_id.clone(), common::graph_files(&graph))]);
    assert_all_restore(&open(&repo_dir), &expected);
}

#[test]
fn a_snapshot_committed_during_the_grace_period_keeps_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 4);
    let long_running = snapshot(&repo, &graph).unwrap();
    let files = common::graph_files(&graph);
    // As if this snapshot were still being taken when the prune looked: its manifest is
    // not there yet, so its packs look unused and are marked...
    repo.delete_snapshot("g", &long_running.snapshot_id)
        .unwrap();
    let marked = prune(&repo, &options(1), &NoProgress).unwrap();
    assert!(marked.packs_marked > 0, "{marked:?}");
    // ... and then it commits, within the grace period.
    repo.write_snapshot(&long_running).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let swept = prune(&repo, &options(1), &NoProgress).unwrap();
    assert!(
        swept.packs_spared > 0 && swept.packs_deleted == 0,
        "{swept:?}"
    );
    assert_all_restore(
        &open(&repo_dir),
        &BTreeMap::from([(long_running.snapshot_id.clone(), files)]),
    );
}

#[test]
fn a_late_commit_that_reuses_marked_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = open(&tmp.path().join("repo"));
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 5);
    let manifest = snapshot(&repo, &graph).unwrap();
    repo.delete_snapshot("g", &manifest.snapshot_id).unwrap();
    // A marker with no grace: a commit that started before it must not land.
    prune(
        &repo,
        &PruneOptions {
            grace_seconds: 0,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    let error = repo
        .check_commit(&manifest, &Default::default())
        .unwrap_err();
    assert!(matches!(error, Error::Conflict { .. }), "{error}");
    assert!(error.is_retryable());
}

#[test]
fn mostly_unused_packs_are_repacked() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let graph = tmp.path().join("graph");
    // One pack holding two files; forgetting the snapshot with the big one leaves the small
    // one's chunks in a mostly unused pack.
    common::write_graph(&graph, 6);
    let both = snapshot(&repo, &graph).unwrap();
    std::fs::remove_file(graph.join("vdb_entities.json")).unwrap();
    let small = snapshot(&repo, &graph).unwrap();
    repo.delete_snapshot("g", &both.snapshot_id).unwrap();
    let report = prune(&repo, &options(0), &NoProgress).unwrap();
    assert!(
        report.packs_repacked > 0 && report.packs_deleted > 0,
        "{report:?}"
    );
    assert!(data_bytes(&repo_dir) < both.added_size / 2);
    assert_all_restore(
        &open(&repo_dir),
        &BTreeMap::from([(small.snapshot_id.clone(), common::graph_files(&graph))]),
    );
}

#[test]
fn one_prune_at_a_time_and_dead_holders_are_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let lock = |pid: u32| {
        std::fs::create_dir_all(repo_dir.join("locks")).unwrap();
        std::fs::write(
            repo_dir.join("locks/prune"),
            format!(
                r#"{{"hostname": "{}", "pid": {pid}, "created_at": "{}"}}"#,
                host.trim(),
                chrono::Utc::now().to_rfc3339()
            ),
        )
        .unwrap();
    };
    lock(std::process::id());
    let error = prune(&repo, &options(0), &NoProgress).unwrap_err();
    assert!(matches!(error, Error::Conflict { .. }), "{error}");
    assert!(
        error.to_string().contains("another prune is running"),
        "{error}"
    );
    // A pid that cannot exist: the holder is gone, its lock is taken over.
    lock(u32::MAX / 2);
    prune(&repo, &options(0), &NoProgress).unwrap();
}

#[test]
fn backups_and_prunes_running_together_never_lose_a_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = Arc::new(open(&repo_dir));
    let expected: Arc<Mutex<Expected>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let graph = tmp.path().join("graph");

    let backups = {
        let (repo, expected, done, graph) =
            (repo.clone(), expected.clone(), done.clone(), graph.clone());
        std::thread::spawn(move || {
            let mut conflicts = 0;
            // At least 24 rounds, and long enough (4 s) for markers to pass their 1 s grace
            // and be swept while backups still run, however fast a backup is.
            let started = std::time::Instant::now();
            let mut rounds = 0u64;
            while rounds < 24 || (started.elapsed().as_secs_f64() < 4.0 && rounds < 2000) {
                let round = rounds;
                rounds += 1;
                common::write_graph(&graph, 100 + round % 5);
                match snapshot(&repo, &graph) {
                    Ok(manifest) => {
                        expected
                            .lock()
                            .unwrap()
                            .insert(manifest.snapshot_id.clone(), common::graph_files(&graph));
                    }
                    Err(Error::Conflict { .. }) => conflicts += 1,
                    Err(other) => panic!("snapshot failed: {other}"),
                }
                // Keep the newest three: older data becomes garbage for the prunes.
                let mut listed = repo.list_snapshots("g").unwrap();
                while listed.len() > 3 {
                    let old = listed.remove(0);
                    repo.delete_snapshot("g", &old.snapshot_id).unwrap();
                    expected.lock().unwrap().remove(&old.snapshot_id);
                }
            }
            done.store(true, Ordering::SeqCst);
            (conflicts, rounds)
        })
    };
    let pruners: Vec<_> = (0..2)
        .map(|_| {
            let (repo_dir, done) = (repo_dir.clone(), done.clone());
            std::thread::spawn(move || {
                // Its own repository handle, as another process would have.
                let repo = open(&repo_dir);
                let mut deleted = 0;
                while !done.load(Ordering::SeqCst) {
                    match prune(&repo, &options(1), &NoProgress) {
                        Ok(report) => deleted += report.packs_deleted,
                        Err(Error::Conflict { .. }) => {}
                        Err(other) => panic!("prune failed: {other}"),
                    }
                    std::thread::sleep(std::time::Duration::from_millis(150));
                }
                deleted
            })
        })
        .collect();
    let (conflicts, rounds) = backups.join().unwrap();
    let deleted: usize = pruners.into_iter().map(|p| p.join().unwrap()).sum();
    assert!(
        conflicts * 2 < rounds,
        "most snapshots commit ({conflicts} conflicts in {rounds} rounds)"
    );
    assert!(deleted > 0, "the prunes freed data while backups ran");
    let expected = expected.lock().unwrap().clone();
    assert_eq!(expected.len(), 3);
    assert_all_restore(&open(&repo_dir), &expected);
    // A final prune after everything settled, then everything still restores.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let repo = open(&repo_dir);
    prune(&repo, &options(1), &NoProgress).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    prune(&repo, &options(1), &NoProgress).unwrap();
    assert_all_restore(&repo, &expected);
}

#[test]
fn a_snapshots_cost_does_not_grow_with_the_packs_of_the_repository() {
    // Many packs from many snapshots: the next snapshot lists the index, the prune markers and
    // the damage records (to see what is new), never every pack in `data/`.
    let tmp = tempfile::tempdir().unwrap();
    let repo = open(&tmp.path().join("repo"));
    let graph = tmp.path().join("graph");
    for seed in 0..4 {
        common::write_graph(&graph, 100 + seed);
        snapshot(&repo, &graph).unwrap();
    }
    common::write_graph(&graph, 200);
    let before = repo.backend().requests();
    let manifest = snapshot(&repo, &graph).unwrap();
    let spent = repo.backend().requests().since(&before);
    assert!(!spent.lists.contains_key("data"), "{spent:?}");
    assert!(spent.puts > 0 && spent.lists_total() > 0, "{spent:?}");
    // And the commit check alone reads nothing it has not seen.
    let before = repo.backend().requests();
    repo.check_commit(&manifest, &Default::default()).unwrap();
    let spent = repo.backend().requests().since(&before);
    assert_eq!((spent.gets, spent.puts), (0, 0), "{spent:?}");
    assert!(!spent.lists.contains_key("data"), "{spent:?}");
}

#[test]
fn a_prune_with_no_grace_between_a_snapshots_check_and_its_write_cannot_leave_it_pointing_at_deleted_data(
) {
    // The window the commit check alone leaves open: a snapshot checked its data, then a prune
    // with grace 0 (another process) marks and deletes a pack the snapshot reuses, before the
    // manifest is written. The check after the write sees it and takes the manifest back.
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open(&repo_dir);
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let first = snapshot(&repo, &graph).unwrap();
    // Its data is now unused: a prune would delete it, but the next snapshot reuses it.
    repo.delete_snapshot("g", &first.snapshot_id).unwrap();
    let pruned = Arc::new(Mutex::new(None));
    {
        let (repo_dir, pruned) = (repo_dir.clone(), pruned.clone());
        repo.set_between_check_and_write(Some(Arc::new(move || {
            let report = prune(&open(&repo_dir), &options(0), &NoProgress).unwrap();
            *pruned.lock().unwrap() = Some(report);
        })));
    }
    let error = snapshot(&repo, &graph).unwrap_err();
    repo.set_between_check_and_write(None);
    let report = pruned.lock().unwrap().take().unwrap();
    assert!(
        report.packs_deleted > 0,
        "the prune took the reused data: {report:?}"
    );
    assert!(matches!(error, Error::Conflict { .. }), "{error}");
    assert!(
        repo.list_snapshots("g").unwrap().is_empty(),
        "nothing was committed"
    );
    // Run again, the snapshot uploads its data afresh and restores.
    let manifest = snapshot(&repo, &graph).unwrap();
    let expected: Expected = [(manifest.snapshot_id.clone(), common::graph_files(&graph))].into();
    assert_all_restore(&open(&repo_dir), &expected);
}
