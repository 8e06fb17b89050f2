//! Copying snapshots into another repository: only what the target lacks, checked on arrival,
//! the manifest last, resumable, refused for an incompatible target.

mod common;

use lightrag_backup::format::{ChunkerParams, SnapshotManifest};
use lightrag_backup::progress::Progress;
use lightrag_backup::replication::{copy_graph, CopyOptions};
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

fn local(dir: &Path) -> Repository {
    Repository::open(Backend::open(dir.to_str().unwrap()).unwrap(), true).unwrap()
}

fn like(dir: &Path, source: &Repository) -> Repository {
    Repository::init_like(Backend::open(dir.to_str().unwrap()).unwrap(), source).unwrap()
}

fn all() -> CopyOptions {
    CopyOptions::default()
}

fn snap(repo: &Repository, dir: &Path, options: &SnapshotOptions) -> SnapshotManifest {
    create_snapshot(repo, "g", dir, options, &NoProgress).unwrap()
}

#[test]
fn a_copy_sends_only_what_the_target_lacks_and_restores_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 11);
    let source = local(&tmp.path().join("source"));
    let first = snap(&source, &graph, &SnapshotOptions::default());
    let target = like(&tmp.path().join("target"), &source);
    assert_eq!(target.config().chunker, source.config().chunker);
    assert_ne!(target.config().repository_id, source.config().repository_id);

    let planned = copy_graph(
        &source,
        &target,
        "g",
        &CopyOptions {
            dry_run: true,
            ..all()
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(planned.snapshots[0].status, "planned");
    assert!(
        target.list_snapshots("g").unwrap().is_empty(),
        "a dry run commits nothing"
    );

    let synced = copy_graph(&source, &target, "g", &all(), &NoProgress).unwrap();
    assert_eq!(synced.snapshots.len(), 1);
    assert!(synced.snapshots[0].verified && synced.bytes_sent > 0);
    assert_eq!(synced.snapshots[0].data_hash, first.data_hash.to_hex());
    common::assert_verifies_and_restores(
        &target,
        std::slice::from_ref(&first),
        &first.snapshot_id,
        &graph,
    );

    // A change step: only the changed chunks travel.
    std::fs::write(
        graph.join("kv_store_text_chunks.json"),
        "{\n  \"chunk-1\": {},\n  \"chunk-3\": {}\n}",
    )
    .unwrap();
    let second = snap(&source, &graph, &SnapshotOptions::default());
    let delta = copy_graph(&source, &target, "g", &all(), &NoProgress).unwrap();
    let statuses: Vec<&str> = delta.snapshots.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(statuses, ["present", "copied"]);
    assert!(
        delta.bytes_sent * 20 < synced.bytes_sent,
        "{} vs {}",
        delta.bytes_sent,
        synced.bytes_sent
    );
    common::assert_verifies_and_restores(
        &target,
        &target.list_snapshots("g").unwrap(),
        &second.snapshot_id,
        &graph,
    );

    // Idempotent: nothing left to send.
    let again = copy_graph(&source, &target, "g", &all(), &NoProgress).unwrap();
    assert_eq!(again.bytes_sent, 0);
    assert!(again.snapshots.iter().all(|s| s.status == "present"));
}

/// Stops the operation once `limit` bytes went by (a connection cut mid-transfer).
struct CutAfter {
    limit: u64,
    seen: AtomicU64,
}

impl Progress for CutAfter {
    fn advance(&self, done: u64) {
        self.seen.fetch_add(done, Ordering::SeqCst);
    }
    fn cancelled(&self) -> bool {
        self.seen.load(Ordering::SeqCst) >= self.limit
    }
}

#[test]
fn an_interrupted_copy_commits_nothing_and_the_next_one_sends_only_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 12);
    let source = local(&tmp.path().join("source"));
    let snapshot = snap(&source, &graph, &SnapshotOptions::default());
    let other = tmp.path().join("other");
    common::write_graph(&other, 13);
    let later = snap(
        &source,
        &other,
        &SnapshotOptions {
            adopt: true,
            ..Default::default()
        },
    );
    let target = like(&tmp.path().join("target"), &source);
    let cut = CutAfter {
        limit: 1,
        seen: AtomicU64::new(0),
    };
    let first_try = copy_graph(&source, &target, "g", &all(), &cut);
    assert!(
        matches!(first_try, Err(Error::Cancelled { .. })),
        "{first_try:?}"
    );
    let committed: Vec<String> = target
        .list_snapshots("g")
        .unwrap()
        .into_iter()
        .map(|m| m.snapshot_id)
        .collect();
    // Cut during the second snapshot: the first is committed whole, the second not at all.
    assert_eq!(
        committed,
        std::slice::from_ref(&snapshot.snapshot_id),
        "the cut snapshot was committed"
    );
    let rest = copy_graph(&source, &target, "g", &all(), &NoProgress).unwrap();
    assert!(rest.snapshots.iter().all(|s| s.verified));
    let full = copy_graph(
        &source,
        &like(&tmp.path().join("fresh"), &source),
        "g",
        &all(),
        &NoProgress,
    )
    .unwrap();
    assert!(
        rest.bytes_sent < full.bytes_sent,
        "the retry sent again what had arrived"
    );
    assert_eq!(
        rest.snapshots
            .iter()
            .map(|s| s.status.as_str())
            .collect::<Vec<_>>(),
        ["present", "copied"]
    );
    common::assert_verifies_and_restores(
        &target,
        &target.list_snapshots("g").unwrap(),
        &snapshot.snapshot_id,
        &graph,
    );
    common::assert_verifies_and_restores(
        &target,
        &target.list_snapshots("g").unwrap(),
        &later.snapshot_id,
        &other,
    );
}

#[test]
fn an_incompatible_target_is_refused_before_anything_moves_and_damage_never_travels() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 14);
    let source = local(&tmp.path().join("source"));
    snap(&source, &graph, &SnapshotOptions::default());
    let other_chunks = ChunkerParams {
        min_size: 4096,
        avg_size: 16384,
        max_size: 65536,
    };
    let odd = Repository::init(
        Backend::open(tmp.path().join("odd").to_str().unwrap()).unwrap(),
        other_chunks,
    )
    .unwrap();
    let refused = copy_graph(&source, &odd, "g", &all(), &NoProgress).unwrap_err();
    assert!(
        matches!(refused, Error::IncompatibleTarget { .. }),
        "{refused}"
    );
    assert!(refused
        .to_string()
        .contains("chunks files with other parameters"));
    assert!(std::fs::read_dir(tmp.path().join("odd").join("data"))
        .map_or(true, |mut d| d.next().is_none()));

    // A source chunk that does not match its id stops the copy: nothing is committed.
    for shard in std::fs::read_dir(tmp.path().join("source/data")).unwrap() {
        for pack in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let pack = pack.unwrap().path();
            let mut bytes = std::fs::read(&pack).unwrap();
            let at = bytes.len() / 3;
            bytes[at] ^= 0x77;
            std::fs::write(&pack, bytes).unwrap();
        }
    }
    let target = like(&tmp.path().join("target"), &source);
    let damaged = copy_graph(&source, &target, "g", &all(), &NoProgress).unwrap_err();
    assert!(matches!(damaged, Error::Integrity { .. }), "{damaged}");
    assert!(target.list_snapshots("g").unwrap().is_empty());
}

#[test]
fn a_target_that_changed_on_its_own_is_refused_or_kept_as_diverged_never_lost() {
    use lightrag_backup::replication::conflict::{self, ConflictPolicy};
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 21);
    let source = local(&tmp.path().join("source"));
    let first = snap(&source, &graph, &SnapshotOptions::default());
    let target = like(&tmp.path().join("target"), &source);
    copy_graph(&source, &target, "g", &all(), &NoProgress).unwrap();

    // The standby's graph changes on its own and is backed up there.
    let standby_graph = tmp.path().join("standby-graph");
    common::write_graph(&standby_graph, 22);
    let own = snap(&target, &standby_graph, &SnapshotOptions::default());
    // The primary moves on too.
    std::fs::write(graph.join("kv_store_text_chunks.json"), "{\"chunk-9\": {}}").unwrap();
    let second = snap(&source, &graph, &SnapshotOptions::default());

    let before: Vec<String> = names(&target);
    match copy_graph(&source, &target, "g", &all(), &NoProgress) {
        Err(Error::Refused { kind, message, .. }) => {
            assert_eq!(kind, "conflict");
            assert!(message.contains(&own.snapshot_id), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(names(&target), before, "a rejected push changes nothing");

    // The data a head check guards: a commit planned on a stale head is refused.
    match conflict::settle(
        &target,
        "g",
        &second.snapshot_id,
        Some(&first.snapshot_id),
        &[],
    ) {
        Err(Error::Refused { kind, .. }) => assert_eq!(kind, "conflict"),
        other => panic!("expected a conflict, got {other:?}"),
    }

    let wins = CopyOptions {
        conflict_policy: ConflictPolicy::SourceWins,
        ..all()
    };
    let report = copy_graph(&source, &target, "g", &wins, &NoProgress).unwrap();
    assert_eq!(report.diverged, vec![own.snapshot_id.clone()]);
    let after = target.list_snapshots("g").unwrap();
    assert_eq!(after.len(), 3, "every snapshot is kept: {after:?}");
    let diverged: Vec<&SnapshotManifest> = after
        .iter()
        .filter(|m| m.tags.iter().any(|t| t == "diverged"))
        .collect();
    assert_eq!(diverged.len(), 1);
    assert_eq!(diverged[0].data_hash, own.data_hash, "same content, new id");
    assert!(diverged[0].metadata_json.contains(&own.snapshot_id));
    let listed = conflict::listing(&target, "g").unwrap();
    assert_eq!(
        conflict::head(&listed).unwrap().snapshot_id,
        second.snapshot_id,
        "the pushed snapshot is the head"
    );
    common::assert_verifies_and_restores(
        &target,
        std::slice::from_ref(diverged[0]),
        &diverged[0].snapshot_id,
        &standby_graph,
    );
    // Pushing again finds no conflict: what diverged stays diverged.
    let again = copy_graph(&source, &target, "g", &all(), &NoProgress).unwrap();
    assert!(again.diverged.is_empty() && again.bytes_sent == 0);
}

fn names(repo: &Repository) -> Vec<String> {
    repo.list_snapshot_names(Some("g"))
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}
