//! Damage found by verify is recorded and never reused: the next backup heals it, and a repair
//! saves what is whole, heals the rest from the graph's files, and names what it cannot.

mod common;

use lightrag_backup::repair::{repair, RepairOptions};
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::verify::{verify_snapshots, VerifyOptions};
use lightrag_backup::{Backend, NoProgress, Repository};
use std::path::{Path, PathBuf};

const READ_ALL: VerifyOptions = VerifyOptions {
    read_data: true,
    read_data_subset: None,
};

fn open(dir: &Path) -> Repository {
    Repository::open(Backend::open(dir.to_str().unwrap()).unwrap(), true).unwrap()
}

fn packs(repo_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(repo_dir.join("data")).unwrap() {
        for pack in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            out.push(pack.unwrap().path());
        }
    }
    out.sort();
    out
}

/// Flip one byte in the middle of every pack: every chunk of the snapshot is at risk.
fn damage_every_pack(repo_dir: &Path) {
    for pack in packs(repo_dir) {
        let mut bytes = std::fs::read(&pack).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        std::fs::write(&pack, bytes).unwrap();
    }
}

fn verify_all(repo: &Repository) -> lightrag_backup::verify::VerifyReport {
    let manifests = repo.all_snapshots().unwrap();
    verify_snapshots(repo, &manifests, READ_ALL, &NoProgress).unwrap()
}

#[test]
fn damage_found_by_verify_is_not_reused_and_the_next_backup_heals_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (graph, repo_dir) = (tmp.path().join("graph"), tmp.path().join("repo"));
    common::write_graph(&graph, 5);
    let repo = open(&repo_dir);
    let first =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap();
    damage_every_pack(&repo_dir);
    let found = verify_all(&repo);
    assert!(!found.ok && !found.damaged_packs.is_empty(), "{found:?}");
    assert_eq!(
        std::fs::read_dir(repo_dir.join("damaged")).unwrap().count(),
        1
    );

    // Another process (a fresh open) reads the record: the next snapshot of the same healthy
    // files stores the damaged chunks again instead of deduplicating against them.
    let repo = open(&repo_dir);
    let second =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap();
    assert!(second.added_size > 0, "the damaged chunks were reused");
    assert_eq!(second.data_hash, first.data_hash);
    let repo = open(&repo_dir);
    let healed = verify_all(&repo);
    assert!(
        healed.ok,
        "both snapshots read from the healthy copies: {healed:?}"
    );
    common::assert_verifies_and_restores(
        &repo,
        std::slice::from_ref(&first),
        &first.snapshot_id,
        &graph,
    );
    // Verifying again records nothing new.
    assert_eq!(
        std::fs::read_dir(repo_dir.join("damaged")).unwrap().count(),
        1
    );
}

#[test]
fn repair_heals_from_the_graph_files_and_names_what_it_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let (graph, repo_dir) = (tmp.path().join("graph"), tmp.path().join("repo"));
    common::write_graph(&graph, 6);
    let repo = open(&repo_dir);
    let kept =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap();
    let gone_dir = tmp.path().join("gone");
    common::write_graph(&gone_dir, 7);
    let gone = create_snapshot(
        &repo,
        "h",
        &gone_dir,
        &SnapshotOptions::default(),
        &NoProgress,
    )
    .unwrap();
    std::fs::remove_dir_all(&gone_dir).unwrap(); // graph h's files exist nowhere else now
    damage_every_pack(&repo_dir);

    let plan = repair(
        &repo,
        &RepairOptions {
            dry_run: true,
            sources: vec![("g".into(), graph.clone())],
        },
        &NoProgress,
    )
    .unwrap();
    assert!(plan.dry_run && !plan.damaged_packs.is_empty());
    assert!(
        !repo_dir.join("damaged").exists(),
        "a dry run records nothing"
    );

    let done = repair(
        &open(&repo_dir),
        &RepairOptions {
            dry_run: false,
            sources: vec![("g".into(), graph.clone())],
        },
        &NoProgress,
    )
    .unwrap();
    assert!(
        done.chunks_healed > 0 && done.index_files_rewritten > 0,
        "{done:?}"
    );
    let by_id = |id: &str| done.snapshots.iter().find(|s| s.snapshot_id == id).unwrap();
    assert!(by_id(&kept.snapshot_id).healed);
    let lost = by_id(&gone.snapshot_id);
    assert!(!lost.healed && !lost.unrestorable_files.is_empty());
    assert_eq!(done.unhealed, vec![format!("h/{}", gone.snapshot_id)]);

    // The healed snapshot verifies and restores byte for byte; the lost one is said to be lost.
    let repo = open(&repo_dir);
    common::assert_verifies_and_restores(
        &repo,
        std::slice::from_ref(&kept),
        &kept.snapshot_id,
        &graph,
    );
    let still = verify_snapshots(&repo, &[gone], READ_ALL, &NoProgress).unwrap();
    assert!(!still.ok);
    // Running it again finds nothing more to do for graph g.
    let again = repair(
        &repo,
        &RepairOptions {
            dry_run: false,
            sources: vec![("g".into(), graph)],
        },
        &NoProgress,
    )
    .unwrap();
    assert!(
        again.snapshots.iter().all(|s| s.graph_id == "h"),
        "{again:?}"
    );
}
