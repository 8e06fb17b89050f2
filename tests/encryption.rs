//! Encryption at rest: what a reader of the bucket sees, what an attacker who writes into it
//! achieves (nothing unnoticed), and the keys an operator manages.

mod common;

use lightrag_backup::format::{ObjectId, SnapshotManifest};
use lightrag_backup::operations::{restore_snapshot, RestoreOptions};
use lightrag_backup::repair::{repair, RepairOptions};
use lightrag_backup::replication::{copy_graph, CopyOptions};
use lightrag_backup::repository::Encryption;
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const PASSWORD: &[u8] = b"correct horse battery staple";

fn backend(dir: &Path) -> Backend {
    Backend::open(dir.to_str().unwrap()).unwrap()
}

fn encrypted(dir: &Path) -> Repository {
    Repository::open_with(
        backend(dir),
        Some(Encryption::Password(None)),
        Some(PASSWORD),
    )
    .unwrap()
}

fn reopen(dir: &Path) -> Repository {
    Repository::open_with(backend(dir), None, Some(PASSWORD)).unwrap()
}

fn snapshot(repo: &Repository, dir: &Path) -> SnapshotManifest {
    let options = SnapshotOptions {
        adopt: true,
        ..Default::default()
    };
    create_snapshot(repo, "g", dir, &options, &NoProgress).unwrap()
}

fn restored(repo: &Repository, snapshot_id: &str, at: &Path) {
    restore_snapshot(
        repo,
        "g",
        snapshot_id,
        at,
        RestoreOptions {
            safety_snapshot: false,
            dry_run: false,
        },
        &NoProgress,
    )
    .unwrap();
}

/// A graph with names no random bytes would hold.
fn secret_graph(dir: &Path, seed: u64) {
    common::write_graph(dir, seed);
    let mut docs = String::from("{\n");
    for i in 0..200 {
        docs.push_str(&format!(
            "  \"doc-{i}\": {{\"content\": \"Zaphod Beeblebrox met Trillian Astra in chunk {i}, seed {seed}\"}},\n"
        ));
    }
    docs.push_str("  \"last\": {}\n}");
    std::fs::write(dir.join("kv_store_text_chunks.json"), docs).unwrap();
    std::fs::write(
        dir.join("vdb_relationships.json"),
        common::nano_vdb(&(0..300).collect::<Vec<u32>>(), 64),
    )
    .unwrap();
}

use common::files_under;

/// A new encrypted repository (`tmp/repo`) with two snapshots of `tmp/graph`, the secret graph
/// of `seed` and then of `seed + 1`.
fn two_snapshots(
    tmp: &Path,
    seed: u64,
) -> (
    PathBuf,
    PathBuf,
    Repository,
    SnapshotManifest,
    SnapshotManifest,
) {
    let (dir, graph) = (tmp.join("repo"), tmp.join("graph"));
    secret_graph(&graph, seed);
    let repo = encrypted(&dir);
    let first = snapshot(&repo, &graph);
    secret_graph(&graph, seed + 1);
    let second = snapshot(&repo, &graph);
    (dir, graph, repo, first, second)
}

fn flip_bit(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// A restore opens sealed chunks in place in its read buffer (no copy): a chunk a file holds
/// many times, read once for all of them, must be opened by copy, or its second open finds
/// its bytes already spent. Every byte comes back, in an encrypted and a plain repository.
#[test]
fn a_file_repeating_one_chunk_restores_byte_for_byte() {
    let work = tempfile::tempdir().unwrap();
    let graph = work.path().join("graph");
    std::fs::create_dir_all(&graph).unwrap();
    let mut block = vec![0u8; 96 * 1024];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for byte in block.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let repeated: Vec<u8> = block
        .iter()
        .copied()
        .cycle()
        .take(block.len() * 40)
        .collect();
    std::fs::write(graph.join("kv_store_full_docs.json"), &repeated).unwrap();
    for encrypt in [true, false] {
        let dir = work.path().join(format!("repo-{encrypt}"));
        let repo = if encrypt {
            encrypted(&dir)
        } else {
            Repository::open_with(backend(&dir), Some(Encryption::None), None).unwrap()
        };
        let made = snapshot(&repo, &graph);
        let file = &made.files[0];
        let distinct: HashSet<&ObjectId> = file.chunks.iter().map(|c| &c.id).collect();
        assert!(
            distinct.len() * 4 < file.chunks.len(),
            "the file must repeat its chunks: {} distinct of {}",
            distinct.len(),
            file.chunks.len()
        );
        let at = work.path().join(format!("restored-{encrypt}"));
        restored(&repo, &made.snapshot_id, &at);
        assert!(std::fs::read(at.join("kv_store_full_docs.json")).unwrap() == repeated);
    }
}

#[test]
fn a_bucket_reader_learns_no_name_text_or_file_name_of_the_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph-of-acme-corp");
    secret_graph(&graph, 1);
    let repo_dir = tmp.path().join("repo");
    let repo = encrypted(&repo_dir);
    snapshot(&repo, &graph);
    secret_graph(&graph, 2);
    let second = snapshot(&repo, &graph);
    lightrag_backup::settings::put_setting(
        &repo,
        "schedules",
        "nightly",
        Some(&serde_json::json!({"working_dir": "/srv/graph-of-acme-corp"})),
    )
    .unwrap();
    let snapshots = std::collections::BTreeMap::from([("g".to_string(), second.snapshot_id)]);
    lightrag_backup::recovery::create_point(&repo, &snapshots, Some("Zaphod".into()), None, "{}")
        .unwrap();

    let needles: [&[u8]; 8] = [
        b"Zaphod",
        b"Trillian",
        b"document 1 of seed",
        b"kv_store",
        b"vdb_",
        b"graphml",
        b"acme-corp",
        b"ent-0000",
    ];
    let files = files_under(&repo_dir);
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    // And still everything reads back.
    let target = tmp.path().join("restored");
    restored(&reopen(&repo_dir), "latest", &target);
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));
}

#[test]
fn two_repositories_with_different_keys_share_no_chunk_id() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    secret_graph(&graph, 3);
    let ids = |repo: &Repository| -> HashSet<ObjectId> {
        snapshot(repo, &graph)
            .files
            .iter()
            .flat_map(|f| f.chunks.iter().map(|c| c.id))
            .collect()
    };
    let first = ids(&encrypted(&tmp.path().join("a")));
    let second = ids(&encrypted(&tmp.path().join("b")));
    let plain = ids(&Repository::open(backend(&tmp.path().join("c")), true).unwrap());
    assert!(first.len() > 100);
    assert!(first.is_disjoint(&second));
    assert!(
        first.is_disjoint(&plain),
        "keyed ids are not SHA-256 of the content"
    );
    // A repository made from a key export shares its ids: chunks deduplicate across them.
    let source = reopen(&tmp.path().join("a"));
    let master = lightrag_backup::keys::MasterKey::import(&source.export_key().unwrap()).unwrap();
    let shared = Repository::open_with(
        backend(&tmp.path().join("d")),
        Some(Encryption::Password(Some(Box::new(master)))),
        Some(b"another password"),
    )
    .unwrap();
    assert_eq!(ids(&shared), first);
}

#[test]
fn a_repository_keeps_the_chunk_id_function_it_was_made_with() {
    use lightrag_backup::keys::{ChunkIds, MasterKey};
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    secret_graph(&graph, 4);
    let ids = |repo: &Repository| -> HashSet<ObjectId> {
        snapshot(repo, &graph)
            .files
            .iter()
            .flat_map(|f| f.chunks.iter().map(|c| c.id))
            .collect()
    };
    let chunk_ids = |dir: &Path| {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config")).unwrap()).unwrap();
        config["encryption"]["chunk_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // New repositories: keyed BLAKE3 (from format 6).
    let new_dir = tmp.path().join("new");
    let new = encrypted(&new_dir);
    assert_eq!(
        new.config().format_version,
        lightrag_backup::format::FORMAT_VERSION
    );
    assert_eq!(chunk_ids(&new_dir), "blake3-keyed");
    let new_ids = ids(&new);
    // A repository made from a format 5 key export (HMAC-SHA256 ids) keeps making them so,
    // after every reopen, under the same master key.
    let master = MasterKey::import(&new.export_key().unwrap()).unwrap();
    let old_dir = tmp.path().join("old");
    let old = Repository::open_with(
        backend(&old_dir),
        Some(Encryption::Password(Some(Box::new(
            master.with_ids(ChunkIds::HmacSha256),
        )))),
        Some(PASSWORD),
    )
    .unwrap();
    assert_eq!(chunk_ids(&old_dir), "hmac-sha256");
    let old_ids = ids(&old);
    assert!(old_ids.is_disjoint(&new_ids));
    assert_eq!(ids(&reopen(&old_dir)), old_ids);
    // Same master key, other function: neither takes the other's chunks as stored.
    assert_ne!(old.codec().fingerprint(), new.codec().fingerprint());
    assert!(matches!(
        new.check_compatible(&reopen(&old_dir)),
        Err(lightrag_backup::Error::IncompatibleTarget { .. })
    ));
    // The public header is not what a reader trusts: naming the other function there
    // changes nothing (the sealed copy of the config says how ids are made).
    let config = std::fs::read_to_string(new_dir.join("config")).unwrap();
    std::fs::remove_file(new_dir.join("config")).unwrap();
    std::fs::write(
        new_dir.join("config"),
        config.replace("blake3-keyed", "hmac-sha256"),
    )
    .unwrap();
    let again = reopen(&new_dir);
    assert_eq!(ids(&again), new_ids);
}

#[test]
fn a_wrong_or_missing_password_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    encrypted(&dir);
    let error = Repository::open(backend(&dir), false).err().unwrap();
    assert!(matches!(error, Error::PasswordRequired { .. }), "{error}");
    assert!(
        error.to_string().contains("LIGHTRAG_BACKUP_PASSWORD"),
        "{error}"
    );
    let error = Repository::open_with(backend(&dir), None, Some(b"wrong"))
        .err()
        .unwrap();
    assert!(matches!(error, Error::WrongPassword { .. }), "{error}");
    assert!(error.to_string().contains("no key matches this password"));
    // An oversized object among the keys is passed over (read no further than a key's limit).
    std::fs::write(dir.join("keys/oversized"), vec![b'{'; 1 << 20]).unwrap();
    let opened = Repository::open_with(backend(&dir), None, Some(PASSWORD)).unwrap();
    assert_eq!(opened.keys().unwrap().len(), 1);
    // Creating one needs a password too.
    let error = Repository::open_with(
        backend(&tmp.path().join("new")),
        Some(Encryption::Password(None)),
        None,
    )
    .err()
    .unwrap();
    assert!(matches!(error, Error::PasswordRequired { .. }), "{error}");
    assert!(error.to_string().contains("--encryption none"), "{error}");
}

#[test]
fn keys_are_added_listed_changed_and_removed_without_touching_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let graph = tmp.path().join("graph");
    secret_graph(&graph, 4);
    let repo = encrypted(&dir);
    let taken = snapshot(&repo, &graph);
    let data_before = files_under(&dir.join("data"));

    let second = repo.add_key(b"second password").unwrap();
    let keys = repo.keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.current).count(), 1);
    assert!(keys.iter().any(|k| k.id == second && !k.current));
    assert_eq!(keys[0].kdf.algorithm, "argon2id");
    assert_eq!(
        (keys[0].kdf.memory_kib, keys[0].kdf.iterations),
        (19 * 1024, 2)
    );
    // Either password opens it.
    let by_second = Repository::open_with(backend(&dir), None, Some(b"second password")).unwrap();
    assert_eq!(by_second.list_snapshots("g").unwrap().len(), 1);
    // The key in use and the last key cannot be removed.
    let current = keys.iter().find(|k| k.current).unwrap().id.clone();
    assert!(repo.remove_key(&current).is_err());
    assert!(repo.remove_key("no-such-key").is_err());
    // passwd: the first password stops working, a new one starts.
    let replaced = repo.change_password(b"third password").unwrap();
    assert!(repo
        .keys()
        .unwrap()
        .iter()
        .any(|k| k.id == replaced && k.current));
    assert!(matches!(
        Repository::open_with(backend(&dir), None, Some(PASSWORD)),
        Err(Error::WrongPassword { .. })
    ));
    let by_third = Repository::open_with(backend(&dir), None, Some(b"third password")).unwrap();
    assert_eq!(by_third.remove_key(&second[..8]).unwrap(), second);
    assert!(
        by_third.remove_key(&replaced).is_err(),
        "the last key stays"
    );
    assert_eq!(
        files_under(&dir.join("data")),
        data_before,
        "no data rewritten"
    );
    let target = tmp.path().join("restored");
    restored(&by_third, &taken.snapshot_id, &target);
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));
}

#[test]
fn a_flipped_bit_in_every_kind_of_object_is_detected_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, graph, repo, older, newer) = two_snapshots(tmp.path(), 5);
    let snapshots =
        std::collections::BTreeMap::from([("g".to_string(), newer.snapshot_id.clone())]);
    let point =
        lightrag_backup::recovery::create_point(&repo, &snapshots, None, None, "{}").unwrap();
    drop(repo);

    // A manifest: listed as unreadable, named; the other snapshot still reads.
    let manifest = dir.join("snapshots/g").join(&older.snapshot_id);
    flip_bit(&manifest, 40);
    let repo = reopen(&dir);
    let scan = repo.scan_snapshots(Some("g")).unwrap();
    assert_eq!(scan.manifests.len(), 1);
    assert_eq!(scan.unreadable[0].snapshot_id, older.snapshot_id);
    assert!(
        scan.unreadable[0].reason.contains("not authentic"),
        "{:?}",
        scan.unreadable
    );
    flip_bit(&manifest, 40);

    // An index object: skipped and named at open; repair re-indexes from the packs.
    let index = files_under(&dir.join("index")).remove(0);
    flip_bit(&index, 30);
    let repo = reopen(&dir);
    let unreadable = repo.unreadable_index_objects();
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert!(
        unreadable[0].1.contains("does not match its name"),
        "{unreadable:?}"
    );
    flip_bit(&index, 30);
    let repo = reopen(&dir);

    // A recovery point.
    let point_path = dir
        .join("recovery")
        .join(&point.checkpoint_id)
        .join("point");
    flip_bit(&point_path, 20);
    let points = lightrag_backup::recovery::scan_points(&repo).unwrap();
    assert_eq!(points.1.len(), 1);
    flip_bit(&point_path, 20);

    // A chunk inside a pack and a pack trailer: verify names the pack. The chunk is one the
    // graph's folder still holds (the newest snapshot's), so repair can heal it from there.
    let chunk = newer.files[0].chunks[0].id;
    let location = repo.locate(&chunk).unwrap();
    let damaged_chunk = files_under(&dir.join("data"))
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str() == Some(location.pack.to_hex().as_str()))
        .unwrap();
    flip_bit(&damaged_chunk, location.entry.offset as usize + 30);
    let other = files_under(&dir.join("data"))
        .into_iter()
        .find(|p| *p != damaged_chunk)
        .unwrap();
    let packs = [damaged_chunk, other];
    let len = std::fs::metadata(&packs[1]).unwrap().len() as usize;
    flip_bit(&packs[1], len - 20);
    let report = common::verify_all(&repo);
    assert!(!report.ok);
    for pack in &packs[..2] {
        let name = pack.file_name().unwrap().to_str().unwrap();
        assert!(
            report.damaged_packs.iter().any(|d| d == name),
            "{name} not named: {report:?}"
        );
    }
    // Repair heals from the graph's folder (the data exists there) and sets the index aside.
    let report = repair(
        &repo,
        &RepairOptions {
            dry_run: false,
            sources: vec![("g".to_string(), graph.clone())],
        },
        &NoProgress,
    )
    .unwrap();
    assert!(
        report.chunks_healed + report.chunks_copied > 0,
        "{report:?}"
    );
    assert_eq!(report.chunks_lost, 0, "{report:?}");
    let repo = reopen(&dir);
    let report = common::verify_all(&repo);
    assert!(report.ok, "{report:?}");
    let target = tmp.path().join("restored");
    restored(&repo, &newer.snapshot_id, &target);
    assert_eq!(common::graph_files(&target), common::graph_files(&graph));

    // The config: a bit off in its sealed part is damage, not a wrong password.
    let config = dir.join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    let at = text.find("\"sealed\": \"").unwrap() + 40;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&config, bytes).unwrap();
    let error = Repository::open_with(backend(&dir), None, Some(PASSWORD))
        .err()
        .unwrap();
    assert!(error.to_string().contains("config"), "{error}");
    assert!(!matches!(error, Error::WrongPassword { .. }), "{error}");
}

#[test]
fn objects_moved_to_another_name_or_kind_and_a_plaintext_config_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _graph, _repo, first, second) = two_snapshots(tmp.path(), 7);
    let manifests = dir.join("snapshots/g");
    // One manifest copied over the other's name.
    std::fs::copy(
        manifests.join(&first.snapshot_id),
        manifests.join(&second.snapshot_id),
    )
    .unwrap();
    // An index object renamed as a manifest.
    let index = files_under(&dir.join("index")).remove(0);
    let fake = uuid::Uuid::new_v4().to_string();
    std::fs::copy(&index, manifests.join(&fake)).unwrap();
    let scan = reopen(&dir).scan_snapshots(Some("g")).unwrap();
    let unreadable: HashSet<&str> = scan
        .unreadable
        .iter()
        .map(|u| u.snapshot_id.as_str())
        .collect();
    assert_eq!(
        unreadable,
        HashSet::from([second.snapshot_id.as_str(), fake.as_str()])
    );
    assert_eq!(scan.manifests.len(), 1);

    // A plaintext config put in place of the sealed one (to make writers store plaintext).
    let plain_dir = tmp.path().join("plain");
    Repository::open(backend(&plain_dir), true).unwrap();
    std::fs::copy(plain_dir.join("config"), dir.join("config")).unwrap();
    let error = Repository::open(backend(&dir), false).err().unwrap();
    assert!(error.to_string().contains("has keys"), "{error}");
}

#[test]
fn a_copy_target_shares_the_key_takes_ciphertext_as_stored_and_sends_only_new_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let graph = tmp.path().join("graph");
    secret_graph(&graph, 9);
    let source = encrypted(&tmp.path().join("source"));
    snapshot(&source, &graph);
    let target_dir = tmp.path().join("target");
    let target = Repository::init_like(backend(&target_dir), &source).unwrap();
    assert!(target.codec().is_encrypted());
    assert_eq!(target.codec().fingerprint(), source.codec().fingerprint());
    let first = copy_graph(&source, &target, "g", &CopyOptions::default(), &NoProgress).unwrap();
    assert!(first.bytes_sent > 0);
    // A change step sends only its new chunks; the target opens with the source's password.
    let chunks = graph.join("kv_store_text_chunks.json");
    let mut text = std::fs::read_to_string(&chunks).unwrap();
    text.insert_str(2, "  \"doc-new\": {\"content\": \"a new chunk\"},\n");
    std::fs::write(&chunks, text).unwrap();
    let changed = snapshot(&source, &graph);
    let step = copy_graph(&source, &target, "g", &CopyOptions::default(), &NoProgress).unwrap();
    assert!(
        step.bytes_sent < first.bytes_sent / 2,
        "{} then {}",
        first.bytes_sent,
        step.bytes_sent
    );
    let reopened = reopen(&target_dir);
    let restored_at = tmp.path().join("restored");
    restored(&reopened, &changed.snapshot_id, &restored_at);
    assert_eq!(
        common::graph_files(&restored_at),
        common::graph_files(&graph)
    );
    // Packs were copied as stored: the target's packs are byte-identical to the source's
    // chunks (no decryption, no new encryption).
    let source_chunk = source.locate(&changed.files[0].chunks[0].id).unwrap();
    let target_chunk = reopened.locate(&changed.files[0].chunks[0].id).unwrap();
    let read = |repo: &Repository, at: &lightrag_backup::repository::BlobLocation| {
        let range = at.entry.offset as u64..(at.entry.offset + at.entry.length) as u64;
        lightrag_backup::runtime::block_on(
            repo.backend()
                .get_range(&lightrag_backup::repository::pack_path(&at.pack), range),
        )
        .unwrap()
    };
    assert_eq!(read(&source, &source_chunk), read(&reopened, &target_chunk));

    // A target under another key, or unencrypted, is refused before anything moves.
    for other in [
        encrypted(&tmp.path().join("other")),
        Repository::open(backend(&tmp.path().join("plain")), true).unwrap(),
    ] {
        let error = copy_graph(&source, &other, "g", &CopyOptions::default(), &NoProgress)
            .err()
            .unwrap();
        assert!(matches!(error, Error::IncompatibleTarget { .. }), "{error}");
        assert!(other.list_snapshots("g").unwrap().is_empty());
    }
}

/// A repository of an earlier format (the v4 golden fixture, unencrypted) is re-encrypted by a
/// copy into an encrypted one: same snapshot ids, times and descriptions, restores identical,
/// no plaintext and no chunk id of the source there, dedup within the target, a rerun copies
/// nothing, and a recovery point follows with the copies' data hashes.
#[test]
fn an_unencrypted_repository_is_reencrypted_by_a_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-v4");
    let source_dir = tmp.path().join("source");
    copy_tree(&fixture.join("repo"), &source_dir);
    let source = Repository::open(backend(&source_dir), false).unwrap();
    assert!(!source.codec().is_encrypted());
    let originals = source.list_snapshots("golden").unwrap();
    let newest = BTreeMapOf::from([("golden".to_string(), originals[1].snapshot_id.clone())]);
    let point =
        lightrag_backup::recovery::create_point(&source, &newest, None, None, "{}").unwrap();

    let target_dir = tmp.path().join("target");
    let target = encrypted(&target_dir);
    // A plain source cannot hand an encrypted target its chunks as stored...
    assert!(source.check_compatible(&target).is_err());
    // ...so a copy re-encrypts.
    let report = copy_graph(
        &source,
        &target,
        "golden",
        &CopyOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.snapshots.len(), 2);
    assert!(report
        .snapshots
        .iter()
        .all(|s| s.status == "copied" && s.verified));
    assert_eq!(report.recovery_points, vec![point.checkpoint_id.clone()]);

    let target = reopen(&target_dir);
    let copies = target.list_snapshots("golden").unwrap();
    for (original, copy) in originals.iter().zip(&copies) {
        assert_eq!(
            (
                &copy.snapshot_id,
                &copy.time,
                &copy.hostname,
                &copy.description,
                &copy.tags
            ),
            (
                &original.snapshot_id,
                &original.time,
                &original.hostname,
                &original.description,
                &original.tags
            )
        );
        let ids = |m: &SnapshotManifest| -> HashSet<ObjectId> {
            m.files
                .iter()
                .flat_map(|f| f.chunks.iter().map(|c| c.id))
                .collect()
        };
        assert!(
            ids(original).is_disjoint(&ids(copy)),
            "keyed ids: nothing shared"
        );
    }
    assert!(
        copies[1].added_size < copies[0].added_size,
        "dedup within the target"
    );
    for (copy, source_files) in copies.iter().zip(["source-1", "source-2"]) {
        let out = tmp.path().join(format!("restored-{source_files}"));
        restore_snapshot(
            &target,
            "golden",
            &copy.snapshot_id,
            &out,
            RestoreOptions {
                safety_snapshot: false,
                dry_run: false,
            },
            &NoProgress,
        )
        .unwrap();
        assert_eq!(
            common::graph_files(&out),
            common::graph_files(&fixture.join(source_files))
        );
    }
    // What the fixture's documents say appears nowhere in the target's bytes.
    for object in files_under(&target_dir) {
        let bytes = std::fs::read(&object).unwrap();
        assert!(
            !bytes
                .windows(8)
                .any(|w| w == b"golden 1" || w == b"golden 2"),
            "{object:?} holds plaintext"
        );
    }
    let report = common::verify_all(&target);
    assert!(report.ok, "{report:?}");
    // The point there names the copies, with their data hashes.
    let points = lightrag_backup::recovery::list_points(&target).unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(
        points[0].point.graphs["golden"].data_hash,
        copies[1].data_hash
    );
    // A rerun copies nothing.
    let again = copy_graph(
        &source,
        &target,
        "golden",
        &CopyOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(again.snapshots.iter().all(|s| s.status == "present"));
    assert_eq!(again.bytes_sent, 0);
}

type BTreeMapOf = std::collections::BTreeMap<String, String>;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}
