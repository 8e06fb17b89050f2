//! Damaged and hostile repository objects, hostile graph folders and half-applied restores:
//! each scenario breaks something the way bit rot, a full disk or an attacker would, and checks
//! that the repository stays usable, nothing is allocated from a claimed size, and a restore is
//! all or nothing.

mod common;

use lightrag_backup::format::{self, SnapshotManifest};
use lightrag_backup::operations::{restore_snapshot, RestoreOptions};
use lightrag_backup::prune::{prune, PruneOptions};
use lightrag_backup::repair::{repair, RepairOptions};
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn open_local(dir: &Path) -> Repository {
    Repository::open(Backend::open(dir.to_str().unwrap()).unwrap(), true).unwrap()
}

fn snapshot(repo: &Repository, graph: &str, dir: &Path) -> SnapshotManifest {
    create_snapshot(repo, graph, dir, &SnapshotOptions::default(), &NoProgress).unwrap()
}

fn restore(repo: &Repository, graph: &str, id: &str, target: &Path) -> Result<(), Error> {
    restore_snapshot(
        repo,
        graph,
        id,
        target,
        RestoreOptions {
            safety_snapshot: false,
            dry_run: false,
        },
        &NoProgress,
    )
    .map(|_| ())
}

/// Commit `manifest` changed by `change` as a new snapshot (as a damaged or hostile writer
/// would have): returns it.
fn commit_altered(
    repo: &Repository,
    manifest: &SnapshotManifest,
    change: impl FnOnce(&mut SnapshotManifest),
) -> SnapshotManifest {
    let mut altered = manifest.clone();
    change(&mut altered);
    altered.snapshot_id = uuid::Uuid::new_v4().to_string();
    altered.data_hash = SnapshotManifest::compute_data_hash(&altered.files);
    repo.write_snapshot(&altered).unwrap();
    altered
}

fn manifest_path(repo_dir: &Path, manifest: &SnapshotManifest) -> PathBuf {
    repo_dir
        .join("snapshots")
        .join(&manifest.graph_id)
        .join(&manifest.snapshot_id)
}

use common::files_under;

/// Two snapshots of one graph, the older one's manifest truncated to 30 bytes.
fn repository_with_a_truncated_manifest(
    tmp: &Path,
) -> (PathBuf, Repository, SnapshotManifest, SnapshotManifest) {
    let graph = tmp.join("graph");
    common::write_graph(&graph, 1);
    let repo = open_local(&tmp.join("repo"));
    let older = snapshot(&repo, "g", &graph);
    common::write_graph(&graph, 2);
    let newer = snapshot(&repo, "g", &graph);
    let path = manifest_path(&tmp.join("repo"), &older);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..30]).unwrap();
    (graph, open_local(&tmp.join("repo")), older, newer)
}

#[test]
fn an_unreadable_manifest_is_reported_and_blocks_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let (graph, repo, older, newer) = repository_with_a_truncated_manifest(tmp.path());

    // Listing shows the rest and names the damaged one.
    let scan = repo.scan_snapshots(Some("g")).unwrap();
    let listed: Vec<&str> = scan
        .manifests
        .iter()
        .map(|m| m.snapshot_id.as_str())
        .collect();
    assert_eq!(listed, [newer.snapshot_id.as_str()]);
    assert_eq!(scan.unreadable.len(), 1);
    assert_eq!(scan.unreadable[0].snapshot_id, older.snapshot_id);
    assert!(scan.unreadable[0].reason.contains("cannot be decompressed"));
    assert_eq!(repo.list_snapshots("g").unwrap().len(), 1);
    assert_eq!(repo.all_snapshots().unwrap().len(), 1);

    // Verify fails, naming it; the readable snapshot still verifies.
    let report = common::verify_all(&repo);
    assert!(!report.ok);
    assert_eq!(report.snapshots_checked, 2);
    assert!(
        report.errors.iter().any(|e| e.contains(&older.snapshot_id)),
        "{report:?}"
    );
    assert_eq!(report.errors.len(), 1, "{report:?}");

    // Snapshots continue, restores of the others work.
    common::write_graph(&graph, 3);
    let third = snapshot(&repo, "g", &graph);
    let target = tmp.path().join("restored");
    restore(&repo, "g", "latest", &target).unwrap();
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));
    assert_eq!(
        repo.resolve_snapshot_id("g", "latest").unwrap(),
        third.snapshot_id
    );

    // Prune frees nothing while it cannot read what that snapshot needs, and says so.
    let error = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&older.snapshot_id), "{message}");
    assert!(message.contains("repair"), "{message}");
    assert!(message.contains("delete"), "{message}");

    // Delete removes it; prune then runs.
    lightrag_backup::recovery::delete_snapshot(&repo, "g", &older.snapshot_id).unwrap();
    assert!(repo.scan_snapshots(None).unwrap().unreadable.is_empty());
    prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    let report = common::verify_all(&repo);
    assert!(report.ok, "{report:?}");
}

#[test]
fn repair_sets_an_unreadable_manifest_aside_and_prune_runs_after() {
    let tmp = tempfile::tempdir().unwrap();
    let (_graph, repo, older, newer) = repository_with_a_truncated_manifest(tmp.path());
    let dry = repair(
        &repo,
        &RepairOptions {
            dry_run: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(dry.unreadable_objects.len(), 1);
    assert!(dry.set_aside.is_empty());
    assert_eq!(repo.scan_snapshots(None).unwrap().unreadable.len(), 1);

    let report = repair(&repo, &RepairOptions::default(), &NoProgress).unwrap();
    let path = format!("snapshots/g/{}", older.snapshot_id);
    assert_eq!(report.unreadable_objects, std::slice::from_ref(&path));
    assert_eq!(report.set_aside, [format!("quarantine/{path}")]);
    // Its bytes are kept for a post-mortem, out of every listing.
    let kept = tmp.path().join("repo").join("quarantine").join(&path);
    assert_eq!(std::fs::read(kept).unwrap().len(), 30);
    let scan = repo.scan_snapshots(None).unwrap();
    assert!(scan.unreadable.is_empty());
    assert_eq!(scan.manifests.len(), 1);
    prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    let target = tmp.path().join("restored");
    restore(&repo, "g", &newer.snapshot_id, &target).unwrap();
}

#[test]
fn an_unreadable_index_object_is_skipped_reported_and_rebuilt_by_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo_dir = tmp.path().join("repo");
    let repo = open_local(&repo_dir);
    let manifest = snapshot(&repo, "g", &graph);
    let index = files_under(&repo_dir.join("index"));
    assert_eq!(index.len(), 1);
    std::fs::write(&index[0], b"LRBI\x04garbage").unwrap();

    // The repository still opens; verify names the object; prune refuses.
    let repo = open_local(&repo_dir);
    let unreadable = repo.unreadable_index_objects();
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    let report = common::verify_all(&repo);
    assert!(!report.ok);
    assert_eq!(report.unreadable_objects.len(), 1, "{report:?}");
    let error = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap_err();
    assert!(error.to_string().contains("index object"), "{error}");
    // Snapshots still work (of other data here: the same data would store the very same pack
    // again, and a new index object would list it).
    let other = tmp.path().join("other");
    common::write_graph(&other, 2);
    snapshot(&repo, "h", &other);

    // Repair indexes the packs again from their own trailers and sets the object aside.
    let report = repair(&repo, &RepairOptions::default(), &NoProgress).unwrap();
    assert!(report.packs_reindexed >= 1, "{report:?}");
    assert_eq!(report.set_aside.len(), 1);
    let repo = open_local(&repo_dir);
    assert!(repo.unreadable_index_objects().is_empty());
    let report = common::verify_all(&repo);
    assert!(report.ok, "{report:?}");
    let target = tmp.path().join("restored");
    restore(&repo, "g", &manifest.snapshot_id, &target).unwrap();
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));
    prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
}

/// Rewrite the repository's one index object with every blob's lengths changed by `change`.
fn rewrite_index(repo_dir: &Path, change: impl Fn(&mut format::BlobEntry)) {
    let index = files_under(&repo_dir.join("index"));
    assert_eq!(index.len(), 1);
    let bytes = std::fs::read(&index[0]).unwrap();
    let packed = zstd::stream::decode_all(&bytes[5..]).unwrap();
    let mut file: format::IndexFile = rmp_serde::from_slice(&packed).unwrap();
    for pack in &mut file.packs {
        for blob in &mut pack.blobs {
            change(blob);
        }
    }
    let packed = rmp_serde::to_vec_named(&file).unwrap();
    let mut out = bytes[..5].to_vec();
    out.extend(zstd::bulk::compress(&packed, 3).unwrap());
    std::fs::remove_file(&index[0]).unwrap();
    // Named by its hash, as a writer would have: only the lengths are wrong.
    let name = format::ObjectId::of(&out).to_hex();
    std::fs::write(repo_dir.join("index").join(name), out).unwrap();
}

#[test]
fn a_chunk_the_index_places_where_its_pack_does_not_is_reported_by_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo_dir = tmp.path().join("repo");
    snapshot(&open_local(&repo_dir), "g", &graph);
    // The index says the first chunk starts one byte later than its pack's trailer does.
    let first = std::cell::Cell::new(true);
    let moved = std::cell::Cell::new(None);
    rewrite_index(&repo_dir, |blob| {
        if first.replace(false) {
            blob.offset += 1;
            moved.set(Some(blob.id));
        }
    });
    let repo = open_local(&repo_dir);
    assert!(repo.unreadable_index_objects().is_empty());
    let report = common::verify_all(&repo);
    assert!(!report.ok);
    let moved = moved.get().unwrap();
    let found: Vec<&String> = report
        .errors
        .iter()
        .filter(|e| e.contains("trailer does not list chunk") && e.contains(&moved.to_hex()))
        .collect();
    assert_eq!(found.len(), 1, "{:?}", report.errors);
    assert_eq!(report.damaged_packs.len(), 1, "{report:?}");
}

#[test]
fn claimed_sizes_are_checked_before_anything_is_allocated() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo_dir = tmp.path().join("repo");
    let manifest = snapshot(&open_local(&repo_dir), "g", &graph);
    rewrite_index(&repo_dir, |blob| blob.raw_length = 0xFFFF_FFF0);

    // Today's main aborted here ("memory allocation of 4294967280 bytes failed").
    let repo = open_local(&repo_dir);
    let unreadable = repo.unreadable_index_objects();
    assert_eq!(unreadable.len(), 1);
    assert!(
        unreadable[0].1.contains("more than the largest chunk"),
        "{unreadable:?}"
    );
    let error = restore(&repo, "g", "latest", &tmp.path().join("t")).unwrap_err();
    assert!(matches!(error, Error::Integrity { .. }), "{error}");
    assert!(!tmp
        .path()
        .join("t")
        .join("kv_store_full_docs.json")
        .exists());
    // Repair heals it from the packs' own trailers.
    let report = repair(&repo, &RepairOptions::default(), &NoProgress).unwrap();
    assert!(report.packs_reindexed >= 1);
    let repo = open_local(&repo_dir);
    restore(&repo, "g", &manifest.snapshot_id, &tmp.path().join("t")).unwrap();
    assert_eq!(
        common::graph_files(&tmp.path().join("t")),
        common::graph_files(&graph)
    );
}

#[test]
fn a_manifest_and_an_index_that_disagree_on_a_chunk_length_refuse_the_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo_dir = tmp.path().join("repo");
    snapshot(&open_local(&repo_dir), "g", &graph);
    // Within the format's limits, but not what the manifest says.
    rewrite_index(&repo_dir, |blob| {
        blob.raw_length = blob.raw_length.saturating_sub(1)
    });
    let repo = open_local(&repo_dir);
    let error = restore(&repo, "g", "latest", &tmp.path().join("t")).unwrap_err();
    assert!(error.to_string().contains("in the snapshot and"), "{error}");
    assert!(!tmp.path().join("t").join("vdb_entities.json").exists());
}

/// A graph snapshotted at version 1 (`old`), then moved on to version 2 in its folder: the
/// target of a restore that replaces it.
fn moved_on(tmp: &Path) -> (PathBuf, Repository, SnapshotManifest) {
    let graph = tmp.join("graph");
    common::write_graph(&graph, 1);
    let repo = open_local(&tmp.join("repo"));
    let old = snapshot(&repo, "g", &graph);
    common::write_graph(&graph, 2);
    (graph, repo, old)
}

/// `chattr FLAG path` (`+i`: immutable, even for root; needs root on ext4, as CI runs).
fn chattr(flag: &str, path: &Path) -> bool {
    std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .unwrap()
        .success()
}

fn staging_left(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".lightrag-backup"))
        .collect()
}

#[test]
fn a_restore_that_fails_half_way_is_rolled_back() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo = open_local(&tmp.path().join("repo"));
    let old = snapshot(&repo, "g", &graph);
    // The graph moves on and gains a file the snapshot lacks, which cannot be removed
    // (immutable): every other file is replaced before the restore reaches it.
    common::write_graph(&graph, 2);
    let stuck = graph.join("kv_store_llm_response_cache.json");
    std::fs::write(&stuck, b"{}").unwrap();
    let before = common::graph_files(&graph);
    let chattr = |flag: &str| chattr(flag, &stuck);
    assert!(chattr("+i"), "chattr +i needs root on ext4 (as CI runs)");
    let result = restore(&repo, "g", &old.snapshot_id, &graph);
    assert!(chattr("-i"));
    let message = result.unwrap_err().to_string();
    assert!(message.contains("rolled back"), "{message}");
    assert!(
        message.contains("kv_store_llm_response_cache.json"),
        "{message}"
    );
    // Every file as it was: the replaced ones were put back from the links kept for that.
    assert_eq!(common::graph_files(&graph), before);
    assert!(staging_left(&graph).is_empty());
    // With the obstacle gone, the same restore goes through.
    restore(&repo, "g", &old.snapshot_id, &graph).unwrap();
    assert!(!stuck.exists());
}

#[test]
fn an_immutable_file_the_restore_replaces_refuses_it_before_anything_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let (graph, repo, old) = moved_on(tmp.path());
    let before = common::graph_files(&graph);
    let stuck = graph.join("vdb_entities.json");
    let chattr = |flag: &str| chattr(flag, &stuck);
    assert!(chattr("+i"), "chattr +i needs root on ext4 (as CI runs)");
    let result = restore(&repo, "g", &old.snapshot_id, &graph);
    assert!(chattr("-i"));
    let message = result.unwrap_err().to_string();
    assert!(message.contains("changed nothing"), "{message}");
    assert_eq!(common::graph_files(&graph), before);
    assert!(staging_left(&graph).is_empty());
}

#[test]
fn a_folder_where_a_file_goes_refuses_the_restore_before_anything_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let (graph, repo, old) = moved_on(tmp.path());
    let before = common::graph_files(&graph);
    let blocker = graph.join("vdb_relationships.json");
    std::fs::create_dir(&blocker).unwrap();
    let manifest = commit_altered(&repo, &old, |m| {
        let mut extra = m.files[0].clone();
        extra.path = "vdb_relationships.json".to_string();
        m.files.push(extra);
    });

    let error = restore(&repo, "g", &manifest.snapshot_id, &graph).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("changed nothing"), "{message}");
    assert_eq!(common::graph_files(&graph), before);
    assert!(blocker.is_dir());
    assert!(staging_left(&graph).is_empty());
}

#[test]
fn a_manifest_naming_a_path_twice_is_refused_at_plan_time() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo = open_local(&tmp.path().join("repo"));
    let manifest = commit_altered(&repo, &snapshot(&repo, "g", &graph), |m| {
        m.files.push(m.files[0].clone());
    });
    let target = tmp.path().join("t");
    let error = restore(&repo, "g", &manifest.snapshot_id, &target).unwrap_err();
    assert!(error.to_string().contains("twice"), "{error}");
    assert!(!target.exists() || std::fs::read_dir(&target).unwrap().next().is_none());
}

#[test]
fn restored_modes_lose_set_id_sticky_and_world_write_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo = open_local(&tmp.path().join("repo"));
    let manifest = commit_altered(&repo, &snapshot(&repo, "g", &graph), |m| {
        for file in &mut m.files {
            file.mode = 0o6777;
        }
    });
    let target = tmp.path().join("t");
    restore(&repo, "g", &manifest.snapshot_id, &target).unwrap();
    for file in &manifest.files {
        let mode = std::fs::metadata(target.join(&file.path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o775, "{}", file.path);
    }
}

#[test]
fn links_fifos_and_devices_in_a_graph_folder_are_refused_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"root-only secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&secret, graph.join("kv_store_x.json")).unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = open_local(&repo_dir);
    let error =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::InvalidInput { .. }), "{message}");
    assert!(message.contains("kv_store_x.json"), "{message}");
    assert!(message.contains("symbolic link"), "{message}");
    assert!(repo.list_snapshots("g").unwrap().is_empty());
    // Nothing of the secret reached the repository.
    for file in files_under(&repo_dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes
            .windows(b"root-only secret".len())
            .any(|w| w == b"root-only secret"));
    }
    std::fs::remove_file(graph.join("kv_store_x.json")).unwrap();

    let fifo = graph.join("kv_store_fifo.json");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let error =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap_err();
    assert!(error.to_string().contains("a FIFO"), "{error}");
}

#[test]
fn a_local_repository_is_its_owners_only_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo_dir = tmp.path().join("repo");
    let old = unsafe { libc::umask(0o022) };
    let repo = open_local(&repo_dir);
    snapshot(&repo, "g", &graph);
    unsafe { libc::umask(old) };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&repo_dir), 0o700);
    let files = files_under(&repo_dir);
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        let mut dir = file.parent().unwrap();
        while dir != repo_dir {
            assert_eq!(mode(dir), 0o700, "{}", dir.display());
            dir = dir.parent().unwrap();
        }
    }
}

#[test]
fn a_config_with_chunk_sizes_out_of_range_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    open_local(&repo_dir);
    let path = repo_dir.join("config");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["chunker"]["max_size"] = serde_json::json!(0xFFFF_FFF0u32);
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let error = Repository::open(Backend::open(repo_dir.to_str().unwrap()).unwrap(), false)
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("out of the format's range"),
        "{error}"
    );
}

#[test]
fn of_two_first_snapshots_of_one_graph_id_from_two_folders_exactly_one_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    open_local(&repo_dir);
    for round in 0..5 {
        let graph_id = format!("g{round}");
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<Result<SnapshotManifest, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|name| {
                    let (barrier, graph_id, repo_dir) = (&barrier, &graph_id, &repo_dir);
                    let folder = tmp.path().join(format!("{name}{round}"));
                    common::write_graph(&folder, round);
                    scope.spawn(move || {
                        let repo = open_local(repo_dir);
                        let mut options = SnapshotOptions::default();
                        options
                            .metadata
                            .insert("working_dir".into(), folder.display().to_string().into());
                        barrier.wait();
                        create_snapshot(&repo, graph_id, &folder, &options, &NoProgress)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let committed = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(committed, 1, "{outcomes:?}");
        let refused = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
        assert_eq!(refused.kind(), "graph_source_conflict", "{refused}");
        assert_eq!(
            open_local(&repo_dir)
                .list_snapshots(&graph_id)
                .unwrap()
                .len(),
            1
        );
    }
}

#[test]
fn an_unreadable_recovery_point_stops_retention_until_it_is_deleted_or_set_aside() {
    use lightrag_backup::recovery;
    use lightrag_backup::retention::{forget, RetentionPolicy};
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    let repo_dir = tmp.path().join("repo");
    let repo = open_local(&repo_dir);
    let mut ids = Vec::new();
    for version in 1..=3 {
        common::write_graph(&graph, version);
        ids.push(snapshot(&repo, "g", &graph).snapshot_id);
    }
    let named = std::collections::BTreeMap::from([("g".to_string(), ids[0].clone())]);
    let point = recovery::create_point(&repo, &named, None, None, "{}").unwrap();
    let path = repo_dir
        .join("recovery")
        .join(&point.checkpoint_id)
        .join("point");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..20]).unwrap();

    // Listed without it; retention forgets nothing while it cannot know what the point names.
    assert!(recovery::list_points(&repo).unwrap().is_empty());
    assert_eq!(recovery::unreadable_points(&repo).unwrap().len(), 1);
    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let error = forget(&repo, Some("g"), &policy, false).unwrap_err();
    assert!(error.to_string().contains(&point.checkpoint_id), "{error}");
    assert_eq!(repo.list_snapshots("g").unwrap().len(), 3);

    // Deleted by its full id (the way out), retention goes on.
    recovery::delete_point(&repo, &point.checkpoint_id).unwrap();
    assert!(recovery::unreadable_points(&repo).unwrap().is_empty());
    forget(&repo, Some("g"), &policy, false).unwrap();
    assert_eq!(repo.list_snapshots("g").unwrap().len(), 1);
}

#[test]
fn repair_sets_an_unreadable_recovery_point_aside() {
    use lightrag_backup::recovery;
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo_dir = tmp.path().join("repo");
    let repo = open_local(&repo_dir);
    let id = snapshot(&repo, "g", &graph).snapshot_id;
    let named = std::collections::BTreeMap::from([("g".to_string(), id)]);
    let point = recovery::create_point(&repo, &named, None, None, "{}").unwrap();
    let path = repo_dir
        .join("recovery")
        .join(&point.checkpoint_id)
        .join("point");
    std::fs::write(&path, b"LRBP\x04nonsense").unwrap();
    let report = repair(&repo, &RepairOptions::default(), &NoProgress).unwrap();
    assert_eq!(
        report.set_aside,
        [format!("quarantine/recovery/{}/point", point.checkpoint_id)]
    );
    assert!(recovery::unreadable_points(&repo).unwrap().is_empty());
}

#[test]
fn a_maintenance_lock_longer_than_any_lock_is_taken_over_without_being_read() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 1);
    let repo = open_local(&tmp.path().join("repo"));
    let kept = snapshot(&repo, "g", &graph);
    // A planted lock of a terabyte (sparse: no bytes on disk) would be read whole before.
    let lock = tmp.path().join("repo/locks/prune");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::File::create(&lock)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(
        !lock.exists(),
        "the maintainer releases the lock it took over"
    );
    restore(&repo, "g", &kept.snapshot_id, &tmp.path().join("restored")).unwrap();
}
