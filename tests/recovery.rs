//! Recovery points: stored in the repository after their snapshots, listed by a new machine,
//! protecting what they name from retention and deletion until they are deleted, and
//! replicated with their snapshots.

mod common;

use lightrag_backup::format::SnapshotManifest;
use lightrag_backup::recovery::{self, Protection};
use lightrag_backup::replication::{copy_graph, CopyOptions};
use lightrag_backup::retention::{expire_safety_snapshots, forget, RetentionPolicy};
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use std::collections::BTreeMap;
use std::path::Path;

fn local(dir: &Path) -> Repository {
    Repository::open(Backend::open(dir.to_str().unwrap()).unwrap(), true).unwrap()
}

fn snap(repo: &Repository, graph: &str, dir: &Path) -> SnapshotManifest {
    create_snapshot(repo, graph, dir, &SnapshotOptions::default(), &NoProgress).unwrap()
}

fn point_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(g, s)| (g.to_string(), s.to_string()))
        .collect()
}

#[test]
fn a_point_names_one_snapshot_per_graph_and_a_new_machine_lists_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    common::write_graph(&a, 1);
    common::write_graph(&b, 2);
    let repo = local(&tmp.path().join("repo"));
    let sa = snap(&repo, "ga", &a);
    let sb = snap(&repo, "gb", &b);
    let point = recovery::create_point(
        &repo,
        &point_of(&[("ga", "latest"), ("gb", &sb.snapshot_id[..8])]),
        Some("before the upgrade".into()),
        Some("ops".into()),
        r#"{"pause_ms": 1.5}"#,
    )
    .unwrap();
    assert_eq!(point.graphs["ga"].snapshot_id, sa.snapshot_id);
    assert_eq!(point.graphs["gb"].snapshot_id, sb.snapshot_id);
    assert_eq!(point.graphs["gb"].data_hash, sb.data_hash);

    // Another process that knows only the repository.
    let again = local(&tmp.path().join("repo"));
    let listed = recovery::list_points(&again).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].point, point);
    assert!(!listed[0].validated());
    let by_prefix = recovery::load_point(&again, &point.checkpoint_id[..6]).unwrap();
    assert_eq!(by_prefix.point.checkpoint_id, point.checkpoint_id);
    assert_eq!(
        recovery::load_point(&again, "latest")
            .unwrap()
            .point
            .checkpoint_id,
        point.checkpoint_id
    );
    assert!(matches!(
        recovery::load_point(&again, "0000aaaa"),
        Err(Error::RecoveryPointNotFound { .. })
    ));

    recovery::record_validation(&again, &point.checkpoint_id, false, r#"{"ga": "failed"}"#)
        .unwrap();
    recovery::record_validation(&again, &point.checkpoint_id, true, r#"{"ga": "healthy"}"#)
        .unwrap();
    let validated = recovery::load_point(&repo, "latest").unwrap();
    assert!(validated.validated(), "the newest validation counts");

    // Bad input changes nothing.
    for bad in [
        point_of(&[]),
        point_of(&[("ga", "ffffffff")]),
        point_of(&[("no such graph", "latest")]),
    ] {
        assert!(recovery::create_point(&repo, &bad, None, None, "{}").is_err());
    }
    assert!(
        recovery::create_point(&repo, &point_of(&[("ga", "latest")]), None, None, "[1]").is_err()
    );
    assert_eq!(recovery::list_points(&repo).unwrap().len(), 1);
}

#[test]
fn retention_and_deletion_keep_what_a_point_names_until_the_point_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("g");
    let repo = local(&tmp.path().join("repo"));
    let mut ids = Vec::new();
    for seed in 0..4 {
        common::write_graph(&dir, 10 + seed);
        ids.push(snap(&repo, "g", &dir).snapshot_id);
    }
    let point =
        recovery::create_point(&repo, &point_of(&[("g", &ids[1])]), None, None, "{}").unwrap();

    let refused = recovery::delete_snapshot(&repo, "g", &ids[1]).unwrap_err();
    assert!(
        matches!(refused, Error::SnapshotProtected { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains(&point.checkpoint_id));
    assert_eq!(
        repo.list_snapshots("g").unwrap().len(),
        4,
        "nothing deleted"
    );

    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let report = forget(&repo, Some("g"), &policy, false).unwrap();
    let kept: Vec<String> = repo
        .list_snapshots("g")
        .unwrap()
        .into_iter()
        .map(|m| m.snapshot_id)
        .collect();
    assert_eq!(kept, vec![ids[1].clone(), ids[3].clone()]);
    let decision = report.graphs["g"]
        .iter()
        .find(|d| d.snapshot_id == ids[1])
        .unwrap();
    assert!(decision.keep);
    assert_eq!(
        decision.reasons,
        vec![format!("recovery point {}", point.checkpoint_id)]
    );

    // Deleting the point releases its snapshot.
    recovery::delete_point(&repo, &point.checkpoint_id).unwrap();
    assert!(recovery::list_points(&repo).unwrap().is_empty());
    forget(&repo, Some("g"), &policy, false).unwrap();
    assert_eq!(repo.list_snapshots("g").unwrap().len(), 1);
    recovery::delete_snapshot(&repo, "g", "latest").unwrap();
}

#[test]
fn a_point_never_names_a_snapshot_retention_removed_while_it_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("g");
    let repo = local(&tmp.path().join("repo"));
    common::write_graph(&dir, 3);
    let first = snap(&repo, "g", &dir);
    common::write_graph(&dir, 4);
    snap(&repo, "g", &dir);

    // The race, frozen at its worst moment: the point was written naming `first`, and a
    // retention run that listed the points before it existed removed `first` meanwhile. The
    // retention run puts the manifest back once it sees the point.
    repo.delete_snapshot("g", &first.snapshot_id).unwrap();
    let written = recovery::create_point(
        &repo,
        &point_of(&[("g", &first.snapshot_id)]),
        None,
        None,
        "{}",
    );
    assert!(
        written.is_err(),
        "a point is never written over a missing snapshot"
    );
    assert!(
        recovery::list_points(&repo).unwrap().is_empty(),
        "nothing left behind"
    );
    let point = lightrag_backup::format::RecoveryPoint {
        checkpoint_id: uuid::Uuid::new_v4().to_string(),
        timestamp: "2026-12-02T00:00:00Z".into(),
        hostname: "h".into(),
        description: None,
        created_by: None,
        graphs: [(
            "g".to_string(),
            lightrag_backup::format::PointSnapshot {
                snapshot_id: first.snapshot_id.clone(),
                data_hash: first.data_hash,
                time: first.time.clone(),
            },
        )]
        .into(),
        metadata_json: "{}".into(),
    };
    recovery::write_point(&repo, &point).unwrap();
    let mut report = Default::default();
    lightrag_backup::retention::put_back_protected(
        &repo,
        std::slice::from_ref(&first),
        &mut report,
    )
    .unwrap();
    let back = repo.load_snapshot("g", &first.snapshot_id).unwrap();
    assert_eq!(back, first);
    let original = tmp.path().join("g3");
    common::write_graph(&original, 3);
    common::assert_verifies_and_restores(&repo, &[back], &first.snapshot_id, &original);
}

#[test]
fn safety_snapshots_a_point_names_do_not_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("g");
    let repo = local(&tmp.path().join("repo"));
    common::write_graph(&dir, 5);
    let options = SnapshotOptions {
        tags: vec!["pre-restore".into()],
        ..Default::default()
    };
    let safety = create_snapshot(&repo, "g", &dir, &options, &NoProgress).unwrap();
    recovery::create_point(
        &repo,
        &point_of(&[("g", &safety.snapshot_id)]),
        None,
        None,
        "{}",
    )
    .unwrap();
    let far_future = chrono::Utc::now() + chrono::Duration::days(30);
    assert!(expire_safety_snapshots(&repo, "g", far_future)
        .unwrap()
        .is_empty());
    assert_eq!(repo.list_snapshots("g").unwrap().len(), 1);
    let protection = Protection::load(&repo).unwrap();
    assert_eq!(protection.points_naming(&safety).len(), 1);
}

#[test]
fn a_copy_brings_a_point_once_every_graph_it_names_is_there() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    common::write_graph(&a, 6);
    common::write_graph(&b, 7);
    let source = local(&tmp.path().join("source"));
    snap(&source, "ga", &a);
    snap(&source, "gb", &b);
    let point = recovery::create_point(
        &source,
        &point_of(&[("ga", "latest"), ("gb", "latest")]),
        None,
        None,
        "{}",
    )
    .unwrap();
    let target = Repository::init_like(
        Backend::open(tmp.path().join("target").to_str().unwrap()).unwrap(),
        &source,
    )
    .unwrap();
    let first = copy_graph(&source, &target, "ga", &CopyOptions::default(), &NoProgress).unwrap();
    assert!(first.recovery_points.is_empty(), "gb is not there yet");
    assert!(recovery::list_points(&target).unwrap().is_empty());
    let second = copy_graph(&source, &target, "gb", &CopyOptions::default(), &NoProgress).unwrap();
    assert_eq!(second.recovery_points, vec![point.checkpoint_id.clone()]);
    let there = recovery::load_point(&target, &point.checkpoint_id).unwrap();
    assert_eq!(there.point, point);
    // Once there, a later copy sends it no more.
    let third = copy_graph(&source, &target, "ga", &CopyOptions::default(), &NoProgress).unwrap();
    assert!(third.recovery_points.is_empty());
    // And it protects its snapshots there too.
    assert!(matches!(
        recovery::delete_snapshot(&target, "ga", "latest"),
        Err(Error::SnapshotProtected { .. })
    ));
}

#[test]
fn a_point_follows_a_snapshot_a_push_re_issued_as_diverged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("g");
    let repo = local(&tmp.path().join("repo"));
    common::write_graph(&dir, 8);
    let own = snap(&repo, "g", &dir);
    let point = recovery::create_point(
        &repo,
        &point_of(&[("g", &own.snapshot_id)]),
        None,
        None,
        "{}",
    )
    .unwrap();
    // A push from a primary replaced this snapshot as the head: it is re-issued, tagged.
    let done = lightrag_backup::replication::conflict::mark_diverged(
        &repo,
        "g",
        std::slice::from_ref(&own.snapshot_id),
        "pushed",
    )
    .unwrap();
    let reissued = repo.load_snapshot("g", &done[0].diverged_as).unwrap();
    let named = &point.graphs["g"];
    let found = recovery::resolve(&repo, "g", named).unwrap().unwrap();
    assert_eq!(found.snapshot_id, reissued.snapshot_id);
    // Still protected under its new id, by retention and by delete.
    assert_eq!(
        Protection::load(&repo).unwrap().points_naming(&reissued),
        vec![point.checkpoint_id.clone()]
    );
    assert!(matches!(
        recovery::delete_snapshot(&repo, "g", &reissued.snapshot_id),
        Err(Error::SnapshotProtected { .. })
    ));
    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    common::write_graph(&dir, 9);
    snap(&repo, "g", &dir);
    forget(&repo, Some("g"), &policy, false).unwrap();
    assert!(repo.load_snapshot("g", &reissued.snapshot_id).is_ok());
}
