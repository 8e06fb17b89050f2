//! A repository written by each format version is checked in (`tests/fixtures/golden-v<N>`);
//! every later version must read them all.
//!
//! Add one for a new format version (never rewrite an old one):
//! `LRB_WRITE_GOLDEN=1 cargo test --test golden -- --ignored`.

mod common;

use lightrag_backup::operations::{restore_snapshot, RestoreOptions};
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::verify::{verify_snapshots, VerifyOptions};
use lightrag_backup::{Backend, NoProgress, Repository};
use std::path::{Path, PathBuf};

/// The password of the encrypted fixtures (format 5 on).
const GOLDEN_PASSWORD: &[u8] = b"golden fixture password";

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/golden-v{version}"))
}

#[test]
fn every_golden_repository_stays_readable() {
    for version in 1..=lightrag_backup::format::FORMAT_VERSION {
        check_golden(version);
    }
}

fn check_golden(version: u32) {
    let root = fixture(version);
    assert!(
        root.exists(),
        "no golden fixture for format version {version}: write one"
    );
    // Work on a copy: opening a local repository must not need write access to the fixture.
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    copy_dir(&root.join("repo"), &repo_dir);
    let backend = || Backend::open(repo_dir.to_str().unwrap()).unwrap();
    let repo = if version >= 5 {
        // Encrypted: nothing opens it without its password.
        assert!(matches!(
            Repository::open(backend(), false),
            Err(lightrag_backup::Error::PasswordRequired { .. })
        ));
        assert!(matches!(
            Repository::open_with(backend(), None, Some(b"not it")),
            Err(lightrag_backup::Error::WrongPassword { .. })
        ));
        let repo = Repository::open_with(backend(), None, Some(GOLDEN_PASSWORD)).unwrap();
        assert!(repo.codec().is_encrypted());
        // Format 5 made chunk ids with HMAC-SHA256, format 6 with keyed BLAKE3: each keeps its
        // own (the dedup check below fails if ids were made the other way).
        let ids = &repo.config().encryption.as_ref().unwrap().chunk_id;
        assert_eq!(
            ids,
            if version == 5 {
                "hmac-sha256"
            } else {
                "blake3-keyed"
            }
        );
        repo
    } else {
        Repository::open(backend(), false).unwrap()
    };
    assert_eq!(repo.config().format_version, version);
    assert_eq!(repo.list_graphs().unwrap(), vec!["golden".to_string()]);
    let snapshots = repo.list_snapshots("golden").unwrap();
    assert_eq!(snapshots.len(), 2);
    assert_eq!(snapshots[0].description.as_deref(), Some("version 1"));
    if version >= 2 {
        let decoded = snapshots[0].files.iter().filter(|f| {
            matches!(
                f.encoding,
                lightrag_backup::format::FileEncoding::NanoVdbMatrix { .. }
            )
        });
        assert_eq!(
            decoded.count(),
            1,
            "the v2 fixture holds a vector file stored with its matrix decoded"
        );
    }
    if version >= 4 {
        // One matrix row (256 float32 here) per chunk: the deleted row 77 of version 2 costs
        // nothing new, every other row is the same chunk as in version 1.
        assert_eq!(repo.config().matrix_rows_per_chunk, 1);
        let rows_of = |snapshot: &lightrag_backup::format::SnapshotManifest| {
            let file = snapshot
                .files
                .iter()
                .find(|f| f.path == "vdb_relationships.json")
                .unwrap();
            let lightrag_backup::format::FileEncoding::NanoVdbMatrix {
                head_chunks,
                matrix_chunks,
            } = file.encoding
            else {
                panic!("the matrix is stored decoded")
            };
            file.chunks[head_chunks as usize..(head_chunks + matrix_chunks) as usize].to_vec()
        };
        let (before, after) = (rows_of(&snapshots[0]), rows_of(&snapshots[1]));
        assert!(before.iter().chain(&after).all(|c| c.length == 256 * 4));
        assert_eq!((before.len(), after.len()), (200, 199));
        assert!(
            after.iter().all(|row| before.contains(row)),
            "deleting a row adds no matrix chunk"
        );
    }
    if version >= 3 {
        assert!(
            snapshots[0]
                .files
                .iter()
                .all(|f| f.uid.is_some() && f.gid.is_some()),
            "the v3 fixture records each file's owner and group"
        );
    }
    let report = verify_snapshots(
        &repo,
        &snapshots,
        VerifyOptions {
            read_data: true,
            read_data_subset: None,
        },
        &NoProgress,
    )
    .unwrap();
    assert!(report.ok, "{:?}", report.errors);
    // A repository keeps the chunker parameters it was created with, whatever the defaults
    // of new ones: the same content taken again adds nothing (format 1 configs, which did not
    // record a matrix chunker, read as the 8 KiB one later versions used).
    if version == 1 {
        assert_eq!(
            repo.config().matrix_chunker,
            lightrag_backup::format::ChunkerParams::matrix_8k()
        );
    } else {
        let again = lightrag_backup::snapshot::create_snapshot(
            &repo,
            "golden",
            &root.join("source-2"),
            &lightrag_backup::snapshot::SnapshotOptions {
                adopt: true,
                ..Default::default()
            },
            &NoProgress,
        )
        .unwrap();
        assert_eq!(
            again.added_size, 0,
            "format {version}: the same content deduplicates"
        );
        assert_eq!(again.data_hash, snapshots[1].data_hash);
    }
    for (snapshot, source) in snapshots.iter().zip(["source-1", "source-2"]) {
        let target = tmp.path().join(source);
        let options = RestoreOptions {
            safety_snapshot: false,
            dry_run: false,
        };
        restore_snapshot(
            &repo,
            "golden",
            &snapshot.snapshot_id,
            &target,
            options,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(
            common::graph_files(&target),
            common::graph_files(&root.join(source)),
            "{source}"
        );
    }
}

#[test]
#[ignore]
fn write_golden_fixture() {
    if std::env::var("LRB_WRITE_GOLDEN").is_err() {
        return;
    }
    let root = fixture(lightrag_backup::format::FORMAT_VERSION);
    assert!(!root.exists(), "never overwrite a golden fixture");
    let first = root.join("source-1");
    let second = root.join("source-2");
    for (dir, seed) in [(&first, 1u64), (&second, 2u64)] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("kv_store_full_docs.json"),
            format!("{{\n  \"doc-{seed}\": {{\n    \"content\": \"golden {seed}\"\n  }}\n}}"),
        )
        .unwrap();
        std::fs::write(
            dir.join("graph_chunk_entity_relation.graphml"),
            "<graphml><graph><node id=\"A\"/></graph></graphml>",
        )
        .unwrap();
        let mut vdb = common::pseudo_random(600 * 1024, 42);
        vdb.extend_from_slice(&common::pseudo_random(64 * 1024, seed));
        std::fs::write(dir.join("vdb_entities.json"), vdb).unwrap();
        let rows: Vec<u32> = (0..200).filter(|&r| seed == 1 || r != 77).collect();
        std::fs::write(
            dir.join("vdb_relationships.json"),
            common::nano_vdb(&rows, 256),
        )
        .unwrap();
    }
    let repo = Repository::open_with(
        Backend::open(root.join("repo").to_str().unwrap()).unwrap(),
        Some(lightrag_backup::repository::Encryption::Password(None)),
        Some(GOLDEN_PASSWORD),
    )
    .unwrap();
    for (dir, description) in [(&first, "version 1"), (&second, "version 2")] {
        let options = SnapshotOptions {
            description: Some(description.to_string()),
            ..Default::default()
        };
        create_snapshot(&repo, "golden", dir, &options, &NoProgress).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

fn graph_keys_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-v5-graph-keys")
}

/// Format 5 with per-graph keys: graph `tenant` under its own key (two snapshots of the v5
/// fixture's sources), graph `gone` shredded (its packs still there, unpruned).
#[test]
fn the_per_graph_key_fixture_stays_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    copy_dir(&graph_keys_fixture().join("repo"), &repo_dir);
    let open = || {
        Repository::open_with(
            Backend::open(repo_dir.to_str().unwrap()).unwrap(),
            None,
            Some(GOLDEN_PASSWORD),
        )
        .unwrap()
    };
    let repo = open();
    assert!(repo.config().key_per_graph);
    assert!(repo.has_own_key("tenant").unwrap());
    assert_eq!(repo.list_graphs().unwrap(), vec!["tenant".to_string()]);
    assert_eq!(repo.shredded_graphs().unwrap()[0].graph_id, "gone");
    assert!(matches!(
        repo.load_snapshot("gone", "latest"),
        Err(lightrag_backup::Error::GraphShredded { .. })
    ));
    let report = common::verify_all(&repo);
    assert!(report.ok, "{:?}", report.errors);
    let sources = fixture(5);
    let snapshots = repo.list_snapshots("tenant").unwrap();
    for (snapshot, source) in snapshots.iter().zip(["source-1", "source-2"]) {
        let target = tmp.path().join(source);
        restore_snapshot(
            &repo,
            "tenant",
            &snapshot.snapshot_id,
            &target,
            RestoreOptions {
                safety_snapshot: false,
                dry_run: false,
            },
            &NoProgress,
        )
        .unwrap();
        assert_eq!(
            common::graph_files(&target),
            common::graph_files(&sources.join(source))
        );
    }
    // The graph's chunker and chunk ids come from its key as stored: the same content again
    // adds nothing.
    let again = create_snapshot(
        &repo,
        "tenant",
        &sources.join("source-2"),
        &SnapshotOptions {
            adopt: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(again.added_size, 0);
    assert_eq!(again.data_hash, snapshots[1].data_hash);
    // Prune frees the shredded graph's packs; the tenant still verifies.
    let pruned = lightrag_backup::prune::prune(
        &repo,
        &lightrag_backup::prune::PruneOptions {
            grace_seconds: 0,
            repack_threshold: 0.0,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(pruned.packs_deleted > 0, "{pruned:?}");
    let report = common::verify_all(&open());
    assert!(report.ok, "{:?}", report.errors);
}

#[test]
#[ignore]
fn write_graph_keys_fixture() {
    if std::env::var("LRB_WRITE_GOLDEN").is_err() {
        return;
    }
    let root = graph_keys_fixture();
    assert!(!root.exists(), "never overwrite a golden fixture");
    let repo = Repository::open_with(
        Backend::open(root.join("repo").to_str().unwrap()).unwrap(),
        Some(lightrag_backup::repository::Encryption::KeyPerGraph(None)),
        Some(GOLDEN_PASSWORD),
    )
    .unwrap();
    let sources = fixture(5);
    for (graph, source) in [
        ("tenant", "source-1"),
        ("tenant", "source-2"),
        ("gone", "source-1"),
    ] {
        let options = SnapshotOptions {
            description: Some(source.to_string()),
            ..Default::default()
        };
        create_snapshot(&repo, graph, &sources.join(source), &options, &NoProgress).unwrap();
    }
    repo.shred_graph("gone").unwrap();
}
