//! Per-graph keys: a graph with a key of its own, shredded while every other graph restores as
//! before; the shred carried to a repository target; an interrupted shred finished.

mod common;

use lightrag_backup::format::{ObjectId, SnapshotManifest};
use lightrag_backup::operations::{restore_snapshot, RestoreOptions};
use lightrag_backup::prune::{prune, PruneOptions};
use lightrag_backup::replication::{copy_graph, CopyOptions};
use lightrag_backup::repository::Encryption;
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use std::collections::HashSet;
use std::path::Path;

const PASSWORD: &[u8] = b"tenant keys";

fn backend(dir: &Path) -> Backend {
    Backend::open(dir.to_str().unwrap()).unwrap()
}

fn create(dir: &Path, encryption: Encryption) -> Repository {
    Repository::open_with(backend(dir), Some(encryption), Some(PASSWORD)).unwrap()
}

fn reopen(dir: &Path) -> Repository {
    Repository::open_with(backend(dir), None, Some(PASSWORD)).unwrap()
}

fn snapshot_as(repo: &Repository, graph: &str, dir: &Path, own_key: bool) -> SnapshotManifest {
    let options = SnapshotOptions {
        own_key,
        ..Default::default()
    };
    create_snapshot(repo, graph, dir, &options, &NoProgress).unwrap()
}

fn restore(repo: &Repository, graph: &str, snapshot: &str) -> lightrag_backup::Result<()> {
    let target = tempfile::tempdir().unwrap();
    restore_snapshot(
        repo,
        graph,
        snapshot,
        target.path(),
        RestoreOptions {
            safety_snapshot: false,
            dry_run: false,
        },
        &NoProgress,
    )?;
    Ok(())
}

fn restores_identical(repo: &Repository, graph: &str, snapshot: &str, expected: &Path) {
    let target = tempfile::tempdir().unwrap();
    restore_snapshot(
        repo,
        graph,
        snapshot,
        target.path(),
        RestoreOptions {
            safety_snapshot: false,
            dry_run: false,
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        common::graph_files(target.path()),
        common::graph_files(expected)
    );
}

/// The graph with one small file changed (its 3 MiB vector file as it was).
fn changed(dir: &Path, round: u32) {
    std::fs::write(
        dir.join("kv_store_text_chunks.json"),
        format!("{{\n  \"chunk-{round}\": {{}}\n}}"),
    )
    .unwrap();
}

fn chunk_ids(manifest: &SnapshotManifest) -> HashSet<ObjectId> {
    manifest
        .files
        .iter()
        .flat_map(|f| f.chunks.iter().map(|c| c.id))
        .collect()
}

fn repo_bytes(dir: &Path) -> u64 {
    common::files_under(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn shredded(error: Error, graph: &str) {
    match error {
        Error::GraphShredded { graph_id, .. } => assert_eq!(graph_id, graph),
        other => panic!("expected GraphShredded, got {other}"),
    }
}

fn prune_now(repo: &Repository) {
    let options = PruneOptions {
        grace_seconds: 0,
        repack_threshold: 0.0,
        ..Default::default()
    };
    prune(repo, &options, &NoProgress).unwrap();
}

/// Two tenants with the same graph in a `--key-per-graph` repository: their chunks are
/// unrelated (no dedup across graphs); shredding one makes all its snapshots unreadable at
/// once, the other restores identical, verify stays clean, prune frees the shredded packs, and
/// the shredded id takes no new snapshot.
#[test]
fn a_shredded_graph_is_gone_and_the_others_restore_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo_dir, graph) = (tmp.path().join("repo"), tmp.path().join("graph"));
    common::write_graph(&graph, 1);
    let repo = create(&repo_dir, Encryption::KeyPerGraph(None));
    assert!(repo.config().key_per_graph);
    let a1 = snapshot_as(&repo, "tenant-a", &graph, false);
    let b1 = snapshot_as(&repo, "tenant-b", &graph, false);
    assert!(repo.has_own_key("tenant-a").unwrap() && repo.has_own_key("tenant-b").unwrap());
    assert!(
        chunk_ids(&a1).is_disjoint(&chunk_ids(&b1)),
        "the same data under two graph keys has unrelated chunk ids"
    );
    changed(&graph, 2);
    let a2 = snapshot_as(&repo, "tenant-a", &graph, false);
    assert!(a2.added_size < a1.added_size, "dedup holds within a graph");
    let size_before = repo_bytes(&repo_dir);

    let report = repo.shred_graph("tenant-a").unwrap();
    assert_eq!(report.snapshots_deleted.len(), 2);
    assert!(!report.already_shredded);
    assert!(!repo_dir.join("graphs/tenant-a/key").exists());
    assert!(repo_dir.join("graphs/tenant-a/shredded").exists());
    // In this process and in a new one: the snapshots refuse with the shred named.
    for repo in [&repo, &reopen(&repo_dir)] {
        shredded(
            restore(repo, "tenant-a", &a1.snapshot_id).unwrap_err(),
            "tenant-a",
        );
        shredded(
            repo.load_snapshot("tenant-a", "latest").unwrap_err(),
            "tenant-a",
        );
        let again = SnapshotOptions::default();
        shredded(
            create_snapshot(repo, "tenant-a", &graph, &again, &NoProgress).unwrap_err(),
            "tenant-a",
        );
        assert!(repo.list_snapshots("tenant-a").unwrap().is_empty());
        assert_eq!(
            repo.shredded_graphs().unwrap()[0].graph_id,
            "tenant-a".to_string()
        );
        let report = common::verify_all(repo);
        assert!(report.ok, "{report:?}");
    }
    // Its chunks are still in the packs until a prune, and no key opens them: not this
    // process's, not a new one's that read every graph key.
    let chunk = *chunk_ids(&a1).iter().next().unwrap();
    let fresh = reopen(&repo_dir);
    assert!(common::block_on_read(&fresh, &chunk).is_err());
    fresh.load_graph_keys().unwrap();
    shredded(
        common::block_on_read(&fresh, &chunk).unwrap_err(),
        "tenant-a",
    );
    shredded(
        common::block_on_read(&repo, &chunk).unwrap_err(),
        "tenant-a",
    );
    common::write_graph(&graph, 1);
    restores_identical(&repo, "tenant-b", &b1.snapshot_id, &graph);
    // Running it again finishes nothing new and says it was done.
    assert!(repo.shred_graph("tenant-a").unwrap().already_shredded);

    // Prune frees the shredded graph's packs: none of its chunks stays indexed.
    let repo = reopen(&repo_dir);
    prune_now(&repo);
    let repo = reopen(&repo_dir);
    assert!(chunk_ids(&a1).iter().all(|id| !repo.contains(id)));
    assert!(chunk_ids(&a2).iter().all(|id| !repo.contains(id)));
    assert!(
        repo_bytes(&repo_dir) < size_before * 7 / 10,
        "{} -> {}",
        size_before,
        repo_bytes(&repo_dir)
    );
    let report = common::verify_all(&repo);
    assert!(report.ok, "{report:?}");
    restores_identical(&repo, "tenant-b", &b1.snapshot_id, &graph);
}

/// In a repository without `--key-per-graph`, a graph asks for its key at its first snapshot;
/// a graph already under the shared key can neither get one later nor be shredded.
#[test]
fn a_key_of_its_own_is_chosen_at_a_graphs_first_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo_dir, graph) = (tmp.path().join("repo"), tmp.path().join("graph"));
    common::write_graph(&graph, 3);
    let repo = create(&repo_dir, Encryption::Password(None));
    let shared = snapshot_as(&repo, "shared", &graph, false);
    let own = snapshot_as(&repo, "own", &graph, true);
    assert!(!repo.has_own_key("shared").unwrap() && repo.has_own_key("own").unwrap());
    assert!(chunk_ids(&shared).is_disjoint(&chunk_ids(&own)));
    let options = SnapshotOptions {
        own_key: true,
        ..Default::default()
    };
    let error = create_snapshot(&repo, "shared", &graph, &options, &NoProgress).unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { message } if message.contains("first snapshot")),
        "{error}"
    );
    let error = repo.shred_graph("shared").unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { message } if message.contains("no key of its own")),
        "{error}"
    );
    // Later snapshots of a graph with its own key use it without being asked.
    changed(&graph, 4);
    let own2 = snapshot_as(&repo, "own", &graph, false);
    assert!(own2.added_size < own.added_size);
    repo.shred_graph("own").unwrap();
    restores_identical(&repo, "shared", &shared.snapshot_id, &{
        let expected = tmp.path().join("expected");
        common::write_graph(&expected, 3);
        expected
    });
    // An unencrypted repository has nothing to shred and no keys to give.
    let plain = create(&tmp.path().join("plain"), Encryption::None);
    assert!(matches!(
        create_snapshot(&plain, "g", &graph, &options, &NoProgress).unwrap_err(),
        Error::InvalidInput { .. }
    ));
    assert!(matches!(
        plain.shred_graph("g").unwrap_err(),
        Error::InvalidInput { .. }
    ));
}

/// A graph key object is bound to its graph: moved to another graph's name it is refused as
/// damage, never used.
#[test]
fn a_graph_key_moved_to_another_graph_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo_dir, graph) = (tmp.path().join("repo"), tmp.path().join("graph"));
    common::write_graph(&graph, 5);
    let repo = create(&repo_dir, Encryption::KeyPerGraph(None));
    snapshot_as(&repo, "a", &graph, false);
    let b = snapshot_as(&repo, "b", &graph, false);
    std::fs::copy(
        repo_dir.join("graphs/a/key"),
        repo_dir.join("graphs/b/key.moved"),
    )
    .unwrap();
    std::fs::rename(
        repo_dir.join("graphs/b/key.moved"),
        repo_dir.join("graphs/b/key"),
    )
    .unwrap();
    let repo = reopen(&repo_dir);
    let error = repo.load_snapshot("b", &b.snapshot_id).unwrap_err();
    assert!(error.is_damage(), "{error}");
    assert!(error.to_string().contains("graphs/b/key"), "{error}");
}

/// A shred interrupted after its record was written (the key, manifests and claim still
/// there): the graph already reads as shredded, and prune finishes the work.
#[test]
fn an_interrupted_shred_is_finished_by_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo_dir, graph) = (tmp.path().join("repo"), tmp.path().join("graph"));
    common::write_graph(&graph, 6);
    let repo = create(&repo_dir, Encryption::KeyPerGraph(None));
    let a = snapshot_as(&repo, "a", &graph, false);
    let key = std::fs::read(repo_dir.join("graphs/a/key")).unwrap();
    repo.shred_graph("a").unwrap();
    // Put back what the shred deleted after its record (as if it had died there).
    std::fs::write(repo_dir.join("graphs/a/key"), key).unwrap();
    let manifest = repo_dir.join(format!("snapshots/a/{}", a.snapshot_id));
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::write(&manifest, b"left by an interrupted shred").unwrap();
    let repo = reopen(&repo_dir);
    shredded(repo.load_snapshot("a", &a.snapshot_id).unwrap_err(), "a");
    let scan = repo.scan_snapshots(None).unwrap();
    assert!(scan.manifests.is_empty() && scan.unreadable.is_empty());
    prune_now(&repo);
    assert!(!repo_dir.join("graphs/a/key").exists());
    assert!(!manifest.exists());
}

/// A repository target made by replication takes a graph's key with its snapshots (dedup and
/// restores work there), then the shred: the graph is gone there too, the others stay.
#[test]
fn a_copy_carries_the_graph_key_and_then_the_shred() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo_dir, graph) = (tmp.path().join("repo"), tmp.path().join("graph"));
    common::write_graph(&graph, 7);
    let source = create(&repo_dir, Encryption::KeyPerGraph(None));
    let a = snapshot_as(&source, "a", &graph, false);
    let b = snapshot_as(&source, "b", &graph, false);
    let target_dir = tmp.path().join("target");
    let target = Repository::init_like(backend(&target_dir), &source).unwrap();
    for graph_id in ["a", "b"] {
        copy_graph(
            &source,
            &target,
            graph_id,
            &CopyOptions::default(),
            &NoProgress,
        )
        .unwrap();
    }
    assert_eq!(
        std::fs::read(target_dir.join("graphs/a/key")).unwrap(),
        std::fs::read(repo_dir.join("graphs/a/key")).unwrap()
    );
    let target = Repository::open_like(backend(&target_dir), &source).unwrap();
    restores_identical(&target, "a", &a.snapshot_id, &graph);

    source.shred_graph("a").unwrap();
    let report = copy_graph(&source, &target, "a", &CopyOptions::default(), &NoProgress).unwrap();
    assert!(report.shredded.is_some() && report.snapshots.is_empty());
    assert!(!target_dir.join("graphs/a/key").exists());
    let target = Repository::open_like(backend(&target_dir), &source).unwrap();
    shredded(restore(&target, "a", &a.snapshot_id).unwrap_err(), "a");
    restores_identical(&target, "b", &b.snapshot_id, &graph);
    // Again: nothing more to do, still shredded.
    copy_graph(&source, &target, "a", &CopyOptions::default(), &NoProgress).unwrap();
    prune_now(&target);
    assert!(chunk_ids(&a).iter().all(|id| !target.contains(id)));
    let report = common::verify_all(&target);
    assert!(report.ok, "{report:?}");
}
