//! One conformance suite for every backend: the same tests against memory, a local folder, S3
//! (moto on loopback) and Azure Blob (Azurite on loopback).
//!
//! The cloud servers come from `scripts/test-servers.sh start`, which exports their addresses
//! (`eval "$(bash scripts/test-servers.sh env)"`). Without them the cloud tests say so and pass,
//! unless `LRB_REQUIRE_CLOUD_BACKENDS=1` (set by `scripts/test.sh`, so CI never skips them).

mod common;

use bytes::Bytes;
use lightrag_backup::backend::{Created, Options};
use lightrag_backup::error::BackendFailure;
use lightrag_backup::lease::{
    LeaseRecord, LeaseState, LeaseStore, Proposal, WriteOutcome, KEEP_SLOTS,
};
use lightrag_backup::runtime::block_on;
use lightrag_backup::snapshot::{create_snapshot, SnapshotOptions};
use lightrag_backup::verify::{verify_snapshots, VerifyOptions};
use lightrag_backup::{Backend, Error, NoProgress, Repository};
use object_store::path::Path;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Azurite's published development account key (not a secret).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn cloud_env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert!(
                std::env::var("LRB_REQUIRE_CLOUD_BACKENDS").as_deref() != Ok("1"),
                "{name} is not set but LRB_REQUIRE_CLOUD_BACKENDS=1: start the servers with scripts/test-servers.sh"
            );
            eprintln!("{name} not set: skipping (run scripts/test-servers.sh start)");
            None
        }
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn options(pairs: &[(&str, &str)]) -> Options {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn s3_options(endpoint: &str) -> Options {
    options(&[
        ("endpoint", endpoint),
        ("access_key_id", "test-key"),
        ("secret_access_key", "test-secret-value"),
        ("region", "us-east-1"),
        // Small parts, so multipart uploads are exercised by ordinary packs.
        ("multipart_threshold", "5242880"),
        ("multipart_part_size", "5242880"),
    ])
}

fn azure_options(endpoint: &str) -> Options {
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/devstoreaccount1;"
    );
    options(&[
        ("connection_string", &connection),
        ("multipart_threshold", "5242880"),
        ("multipart_part_size", "5242880"),
    ])
}

/// (URL, options) of a fresh, empty location on the named backend; `None` when its server is
/// not running.
fn location(kind: &str, tmp: &std::path::Path) -> Option<(String, Options)> {
    match kind {
        "memory" => Some(("memory://".into(), Options::new())),
        "local" => Some((
            tmp.join(unique()).to_str().unwrap().to_string(),
            Options::new(),
        )),
        "s3" => {
            let endpoint = cloud_env("LRB_TEST_S3_ENDPOINT")?;
            let bucket = cloud_env("LRB_TEST_S3_BUCKET")?;
            Some((
                format!("s3://{bucket}/conformance/{}", unique()),
                s3_options(&endpoint),
            ))
        }
        "azure" => {
            let endpoint = cloud_env("LRB_TEST_AZURITE_ENDPOINT")?;
            let container = cloud_env("LRB_TEST_AZURITE_CONTAINER")?;
            Some((
                format!("az://{container}/conformance/{}", unique()),
                azure_options(&endpoint),
            ))
        }
        other => panic!("unknown backend {other}"),
    }
}

fn open(kind: &str, tmp: &std::path::Path) -> Option<Backend> {
    let (url, options) = location(kind, tmp)?;
    Some(Backend::open_with(&url, &options).unwrap())
}

const READ_ALL: VerifyOptions = VerifyOptions {
    read_data: true,
    read_data_subset: None,
};

fn create_only(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(backend) = open(kind, tmp.path()) else {
        return;
    };
    let path = Path::from("a/object");
    block_on(async {
        assert_eq!(
            backend
                .put_create(&path, Bytes::from_static(b"first"))
                .await
                .unwrap(),
            Created::New
        );
        assert_eq!(
            backend
                .put_create(&path, Bytes::from_static(b"second"))
                .await
                .unwrap(),
            Created::AlreadyExisted
        );
        assert_eq!(
            backend.get(&path).await.unwrap(),
            Bytes::from_static(b"first")
        );
    });
}

fn read_list_delete(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(backend) = open(kind, tmp.path()) else {
        return;
    };
    block_on(async {
        assert_eq!(backend.get_opt(&Path::from("nope")).await.unwrap(), None);
        assert!(matches!(
            backend.get(&Path::from("nope")).await,
            Err(Error::Integrity { .. })
        ));
        assert!(matches!(
            backend.get_range(&Path::from("nope"), 0..1).await,
            Err(Error::Integrity { .. })
        ));
        let data = Bytes::from(common::pseudo_random(100_000, 7));
        for name in ["d/x/1", "d/x/2", "d/y/3", "e/4"] {
            backend
                .put_create(&Path::from(name), data.clone())
                .await
                .unwrap();
        }
        assert_eq!(
            backend
                .get_range(&Path::from("d/x/1"), 1000..1010)
                .await
                .unwrap(),
            data.slice(1000..1010)
        );
        let mut listed = backend.list("d").await.unwrap();
        listed.sort();
        assert_eq!(
            listed,
            vec![
                (Path::from("d/x/1"), 100_000),
                (Path::from("d/x/2"), 100_000),
                (Path::from("d/y/3"), 100_000)
            ]
        );
        backend.delete(&Path::from("d/x/1")).await.unwrap();
        backend.delete(&Path::from("d/x/1")).await.unwrap();
        assert_eq!(backend.list("d/x").await.unwrap().len(), 1);
        assert!(backend.list("nothing-here").await.unwrap().is_empty());
    });
}

fn large_objects(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(backend) = open(kind, tmp.path()) else {
        return;
    };
    // 3 parts and a bit on the cloud backends (5 MiB parts).
    let data = Bytes::from(common::pseudo_random(17 * 1024 * 1024 + 123, 3));
    let path = Path::from("data/ab/large");
    block_on(async {
        assert_eq!(
            backend.put_immutable(&path, data.clone()).await.unwrap(),
            Created::New
        );
        assert_eq!(
            backend.put_immutable(&path, data.clone()).await.unwrap(),
            Created::AlreadyExisted
        );
        let back = backend.get(&path).await.unwrap();
        assert!(back == data, "large object changed on the way");
        assert_eq!(
            backend
                .get_range(&path, 16_000_000..16_000_100)
                .await
                .unwrap(),
            data.slice(16_000_000..16_000_100)
        );
    });
}

fn concurrent_creates_have_one_winner(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(backend) = open(kind, tmp.path()) else {
        return;
    };
    let path = Path::from("race/object");
    let outcomes: Vec<(usize, Created)> = block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let backend = backend.clone();
                let path = path.clone();
                tokio::spawn(async move {
                    let created = backend
                        .put_create(&path, Bytes::from(format!("writer {i}")))
                        .await
                        .unwrap();
                    (i, created)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    });
    let winners: Vec<usize> = outcomes
        .iter()
        .filter(|(_, c)| *c == Created::New)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one writer creates: {outcomes:?}");
    let stored = block_on(backend.get(&path)).unwrap();
    assert_eq!(stored, Bytes::from(format!("writer {}", winners[0])));
}

fn proposal(holder: &str, epoch: u64) -> Proposal {
    Proposal {
        holder: holder.to_string(),
        holder_url: Some(format!("http://127.0.0.1/{holder}")),
        epoch,
        ttl_ms: 30_000,
        state: LeaseState::Held,
        handover_to: None,
    }
}

fn lease(kind: &str, tmp: &std::path::Path) -> Option<LeaseStore> {
    let backend = open(kind, tmp)?;
    Some(LeaseStore::new(backend, "deployment", Duration::from_secs(20)).unwrap())
}

/// Writers racing for the same slot: exactly one wins, every loser is told the winner.
fn lease_swaps_have_one_winner(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(lease) = lease(kind, tmp.path()) else {
        return;
    };
    assert_eq!(block_on(lease.current()).unwrap(), None);
    for (expected, epoch) in [(None, 1), (Some(0), 2)] {
        let outcomes: Vec<WriteOutcome> = block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let lease = lease.clone();
                    tokio::spawn(async move {
                        lease
                            .write(expected, proposal(&format!("instance-{i}"), epoch))
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            outcomes
        });
        let winners: Vec<&LeaseRecord> = outcomes
            .iter()
            .filter_map(|o| match o {
                WriteOutcome::Won { record } => Some(record),
                WriteOutcome::Lost { .. } => None,
            })
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one writer takes the slot: {outcomes:?}"
        );
        let winner = winners[0].clone();
        assert_eq!(winner.slot, expected.map_or(0, |s| s + 1));
        for outcome in &outcomes {
            if let WriteOutcome::Lost { current } = outcome {
                assert_eq!(current.as_ref(), Some(&winner), "a loser learns who won");
            }
        }
        assert_eq!(block_on(lease.current()).unwrap(), Some(winner));
    }
}

/// Renewals keep only the newest slots; a delayed writer that re-creates a deleted slot does
/// not win and does not change what readers see.
fn lease_chain_refuses_stale_writes(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(lease) = lease(kind, tmp.path()) else {
        return;
    };
    let mut expected = None;
    for _ in 0..20 {
        match block_on(lease.write(expected, proposal("primary", 3))).unwrap() {
            WriteOutcome::Won { record } => expected = Some(record.slot),
            lost => panic!("a lone writer wins every renewal: {lost:?}"),
        }
    }
    let newest = block_on(lease.current()).unwrap().unwrap();
    assert_eq!((newest.slot, newest.holder.as_str()), (19, "primary"));
    let kept = block_on(lease.backend().list("deployment/slots"))
        .unwrap()
        .len() as u64;
    assert!(kept <= KEEP_SLOTS + 1, "old slots are deleted: {kept} kept");

    // A takeover computed from slot 2 long ago: slot 3 was deleted, so the create succeeds,
    // but it is not the newest slot.
    match block_on(lease.write(Some(2), proposal("late-standby", 4))).unwrap() {
        WriteOutcome::Lost { current } => assert_eq!(current, Some(newest.clone())),
        won => panic!("a stale write must not win: {won:?}"),
    }
    assert_eq!(block_on(lease.current()).unwrap(), Some(newest.clone()));
    // The holder renews on as before.
    assert!(matches!(
        block_on(lease.write(Some(19), proposal("primary", 3))).unwrap(),
        WriteOutcome::Won { .. }
    ));
    // Released with a handover: the record says so.
    let released = Proposal {
        state: LeaseState::Released,
        handover_to: Some("candidate".into()),
        ..proposal("primary", 3)
    };
    match block_on(lease.write(Some(20), released)).unwrap() {
        WriteOutcome::Won { record } => {
            assert_eq!(record.state, LeaseState::Released);
            assert_eq!(record.handover_to.as_deref(), Some("candidate"));
        }
        lost => panic!("{lost:?}"),
    }
}

/// Member records are replaced by their writer and listed for everyone.
fn lease_members_are_published(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(lease) = lease(kind, tmp.path()) else {
        return;
    };
    assert!(block_on(lease.members()).unwrap().is_empty());
    for (member, n) in [("b", 1), ("c", 1), ("b", 2)] {
        let record = serde_json::json!({"instance": member, "n": n});
        block_on(lease.publish_member(member, &record)).unwrap();
    }
    let mut members = block_on(lease.members()).unwrap();
    members.sort_by_key(|m| m["instance"].as_str().unwrap().to_string());
    assert_eq!(
        members,
        vec![
            serde_json::json!({"instance": "b", "n": 2}),
            serde_json::json!({"instance": "c", "n": 1})
        ]
    );
    assert!(block_on(lease.publish_member("../x", &serde_json::json!({}))).is_err());
    assert!(block_on(lease.publish_member("x", &serde_json::json!([1]))).is_err());
    // Member records are not slots.
    assert_eq!(block_on(lease.current()).unwrap(), None);
}

fn repository_round_trip(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some((url, options)) = location(kind, tmp.path()) else {
        return;
    };
    let open_repo = |create| Repository::open(Backend::open_with(&url, &options).unwrap(), create);
    if kind != "memory" {
        assert!(matches!(
            open_repo(false),
            Err(Error::RepositoryNotFound { .. })
        ));
    }
    let repo = open_repo(true).unwrap();
    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 11);
    // Enough data for two packs, so multipart uploads and several ranged reads happen.
    std::fs::write(
        graph.join("vdb_chunks.json"),
        common::pseudo_random(24 * 1024 * 1024, 5),
    )
    .unwrap();
    let first =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap();
    common::write_graph(&graph, 12);
    let second =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap();
    assert!(
        second.added_size < first.added_size / 4,
        "the unchanged big file is deduplicated"
    );

    // Another process (a fresh open) sees both snapshots and verifies every byte.
    let repo = if kind == "memory" {
        repo
    } else {
        open_repo(false).unwrap()
    };
    let listed = repo.list_snapshots("g").unwrap();
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    common::assert_verifies_and_restores(&repo, &listed, &second.snapshot_id, &graph);
}

macro_rules! conformance {
    ($($kind:ident),*) => {$(
        mod $kind {
            #[test]
            fn create_only() { super::create_only(stringify!($kind)) }
            #[test]
            fn read_list_delete() { super::read_list_delete(stringify!($kind)) }
            #[test]
            fn large_objects() { super::large_objects(stringify!($kind)) }
            #[test]
            fn concurrent_creates_have_one_winner() {
                super::concurrent_creates_have_one_winner(stringify!($kind))
            }
            #[test]
            fn repository_round_trip() { super::repository_round_trip(stringify!($kind)) }
            #[test]
            fn lease_swaps_have_one_winner() { super::lease_swaps_have_one_winner(stringify!($kind)) }
            #[test]
            fn lease_members_are_published() { super::lease_members_are_published(stringify!($kind)) }
            #[test]
            fn lease_chain_refuses_stale_writes() {
                super::lease_chain_refuses_stale_writes(stringify!($kind))
            }
        }
    )*};
}

conformance!(memory, local, s3, azure);

// ---- failures: missing bucket/container, refused credentials, a server that goes away ----

fn backend_failure(result: Result<Repository, Error>) -> (BackendFailure, String) {
    match result {
        Err(Error::Backend {
            failure, message, ..
        }) => (failure, message),
        Err(other) => panic!("expected a backend error, got {other}"),
        Ok(_) => panic!("expected a backend error, got a repository"),
    }
}

#[test]
fn missing_bucket_and_container_are_named() {
    if let Some(endpoint) = cloud_env("LRB_TEST_S3_ENDPOINT") {
        let url = format!("s3://lrb-missing-{}/x", unique());
        let backend = Backend::open_with(&url, &s3_options(&endpoint)).unwrap();
        let (failure, message) = backend_failure(Repository::open(backend, true));
        assert_eq!(failure, BackendFailure::LocationNotFound, "{message}");
        assert!(message.contains("bucket \"lrb-missing-"), "{message}");
        assert!(!message.contains("test-secret-value"), "{message}");
    }
    if let Some(endpoint) = cloud_env("LRB_TEST_AZURITE_ENDPOINT") {
        let url = format!("az://missing-{}/x", unique());
        let backend = Backend::open_with(&url, &azure_options(&endpoint)).unwrap();
        let (failure, message) = backend_failure(Repository::open(backend, true));
        assert_eq!(failure, BackendFailure::LocationNotFound, "{message}");
        assert!(message.contains("container \"missing-"), "{message}");
        assert!(!message.contains(AZURITE_KEY), "{message}");
    }
}

#[test]
fn refused_credentials_fail_fast_without_showing_secrets() {
    if let Some(endpoint) = cloud_env("LRB_TEST_AZURITE_ENDPOINT") {
        let container = cloud_env("LRB_TEST_AZURITE_CONTAINER").unwrap();
        let wrong_key = "d3Jvbmcta2V5LXRoYXQtaXMtbG9uZy1lbm91Z2gtdG8tYmUtYS1rZXk=";
        let connection = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={wrong_key};BlobEndpoint={endpoint}/devstoreaccount1;"
        );
        let url = format!("az://{container}/{}", unique());
        let backend =
            Backend::open_with(&url, &options(&[("connection_string", &connection)])).unwrap();
        let started = std::time::Instant::now();
        let (failure, message) = backend_failure(Repository::open(backend, true));
        assert_eq!(failure, BackendFailure::Auth, "{message}");
        assert!(
            started.elapsed().as_secs() < 10,
            "auth errors are not retried"
        );
        assert!(message.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{message}");
        assert!(!message.contains(wrong_key), "{message}");
    }
    if let Some(endpoint) = cloud_env("LRB_TEST_S3S_ENDPOINT") {
        let bucket = cloud_env("LRB_TEST_S3S_BUCKET").unwrap();
        let key = cloud_env("LRB_TEST_S3S_KEY").unwrap();
        let url = format!("s3://{bucket}/{}", unique());
        let mut options = s3_options(&endpoint);
        options.insert("access_key_id".into(), key.clone());
        options.insert("secret_access_key".into(), "not-the-right-secret".into());
        let backend = Backend::open_with(&url, &options).unwrap();
        let (failure, message) = backend_failure(Repository::open(backend, true));
        assert_eq!(failure, BackendFailure::Auth, "{message}");
        assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
        assert!(!message.contains("not-the-right-secret"), "{message}");

        // The right secret works against the same signature-checking server.
        options.insert(
            "secret_access_key".into(),
            cloud_env("LRB_TEST_S3S_SECRET").unwrap(),
        );
        let backend = Backend::open_with(&url, &options).unwrap();
        Repository::open(backend, true).unwrap();
    }
}

/// A loopback TCP proxy that can drop every connection and refuse new ones, as a server that
/// stops mid-upload does, and come back later.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    cut_after: Arc<AtomicU64>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            down: Arc::default(),
            forwarded: Arc::default(),
            cut_after: Arc::new(AtomicU64::new(u64::MAX)),
            connections: Arc::default(),
        };
        let (down, forwarded, cut_after, connections) = (
            proxy.down.clone(),
            proxy.forwarded.clone(),
            proxy.cut_after.clone(),
            proxy.connections.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                connections
                    .lock()
                    .unwrap()
                    .push(client.try_clone().unwrap());
                connections
                    .lock()
                    .unwrap()
                    .push(server.try_clone().unwrap());
                let pump = |mut from: TcpStream, mut to: TcpStream, count: bool| {
                    let (down, forwarded, cut_after, connections) = (
                        down.clone(),
                        forwarded.clone(),
                        cut_after.clone(),
                        connections.clone(),
                    );
                    std::thread::spawn(move || {
                        let mut buffer = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buffer) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if down.load(Ordering::SeqCst) || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                            if count
                                && forwarded.fetch_add(n as u64, Ordering::SeqCst) + n as u64
                                    > cut_after.load(Ordering::SeqCst)
                            {
                                down.store(true, Ordering::SeqCst);
                                for c in connections.lock().unwrap().drain(..) {
                                    let _ = c.shutdown(Shutdown::Both);
                                }
                                break;
                            }
                        }
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pump(server, client, false);
            }
        });
        proxy
    }

    /// Go down once `bytes` more bytes were sent to the server.
    fn cut_after(&self, bytes: u64) {
        self.cut_after.store(
            self.forwarded.load(Ordering::SeqCst) + bytes,
            Ordering::SeqCst,
        );
    }

    fn up(&self) {
        self.cut_after.store(u64::MAX, Ordering::SeqCst);
        self.down.store(false, Ordering::SeqCst);
    }
}

/// The server goes away in the middle of a snapshot's uploads: the error is clear and
/// retryable, the repository stays valid (earlier snapshots verify, nothing half-written is
/// listed), and the same call succeeds once the server is back.
fn server_stops_mid_upload(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (upstream, url, mut options) = match kind {
        "s3" => {
            let Some(endpoint) = cloud_env("LRB_TEST_S3_ENDPOINT") else {
                return;
            };
            let bucket = cloud_env("LRB_TEST_S3_BUCKET").unwrap();
            (
                endpoint.clone(),
                format!("s3://{bucket}/outage/{}", unique()),
                s3_options(&endpoint),
            )
        }
        _ => {
            let Some(endpoint) = cloud_env("LRB_TEST_AZURITE_ENDPOINT") else {
                return;
            };
            let container = cloud_env("LRB_TEST_AZURITE_CONTAINER").unwrap();
            (
                endpoint.clone(),
                format!("az://{container}/outage/{}", unique()),
                azure_options(&endpoint),
            )
        }
    };
    let proxy = Proxy::start(upstream.trim_start_matches("http://").to_string());
    let proxied = format!("http://127.0.0.1:{}", proxy.port);
    if kind == "s3" {
        options.insert("endpoint".into(), proxied);
    } else {
        options = azure_options(&proxied);
    }
    // Fail within seconds instead of object_store's default 3 minutes of retries.
    options.insert("max_retries".into(), "2".into());
    options.insert("retry_timeout".into(), "2s".into());
    options.insert("backoff_initial".into(), "50ms".into());
    let repo = Repository::open(Backend::open_with(&url, &options).unwrap(), true).unwrap();

    let graph = tmp.path().join("graph");
    common::write_graph(&graph, 21);
    let first =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap();
    std::fs::write(
        graph.join("vdb_chunks.json"),
        common::pseudo_random(40 * 1024 * 1024, 22),
    )
    .unwrap();
    proxy.cut_after(12 * 1024 * 1024);
    let error =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap_err();
    match &error {
        Error::Backend { failure, .. } => {
            assert_eq!(*failure, BackendFailure::Transient, "{error}")
        }
        other => panic!("expected a backend error, got {other}"),
    }
    assert!(error.is_retryable(), "{error}");

    proxy.up();
    let repo = Repository::open(Backend::open_with(&url, &options).unwrap(), false).unwrap();
    assert_eq!(
        repo.list_snapshots("g").unwrap(),
        vec![first.clone()],
        "nothing half-written is listed"
    );
    let report =
        verify_snapshots(&repo, std::slice::from_ref(&first), READ_ALL, &NoProgress).unwrap();
    assert!(report.ok, "{report:?}");

    let second =
        create_snapshot(&repo, "g", &graph, &SnapshotOptions::default(), &NoProgress).unwrap();
    let all = repo.list_snapshots("g").unwrap();
    assert_eq!(all, vec![first, second.clone()]);
    common::assert_verifies_and_restores(&repo, &all, &second.snapshot_id, &graph);
}

#[test]
fn s3_server_stops_mid_upload() {
    server_stops_mid_upload("s3");
}

#[test]
fn azure_server_stops_mid_upload() {
    server_stops_mid_upload("azure");
}

#[test]
fn bad_urls_and_options_are_refused() {
    for (url, opts) in [
        ("ftp://host/x", Options::new()),
        ("s3://key:secret@bucket/x", Options::new()),
        ("s3:///x", Options::new()),
        ("s3://bucket/x", options(&[("no_such_option", "1")])),
        ("s3://bucket/x", options(&[("max_retries", "many")])),
        ("s3://bucket/x", options(&[("multipart_part_size", "1024")])),
        ("memory://", options(&[("endpoint", "http://x")])),
    ] {
        match Backend::open_with(url, &opts) {
            Err(Error::InvalidInput { message }) => {
                assert!(!message.contains("secret"), "{message}")
            }
            other => panic!("{url} {opts:?}: expected invalid input, got {other:?}"),
        }
    }
}

#[test]
fn init_can_create_the_bucket_or_container() {
    let mut cases = Vec::new();
    if let Some(endpoint) = cloud_env("LRB_TEST_S3_ENDPOINT") {
        cases.push((
            format!("s3://lrb-new-{}/repo", unique()),
            s3_options(&endpoint),
        ));
    }
    if let Some(endpoint) = cloud_env("LRB_TEST_AZURITE_ENDPOINT") {
        cases.push((
            format!("az://new-{}/repo", unique()),
            azure_options(&endpoint),
        ));
    }
    for (url, options) in cases {
        let backend = Backend::open_with(&url, &options).unwrap();
        assert!(
            backend.create_location_blocking().unwrap(),
            "{url}: created"
        );
        assert!(
            !backend.create_location_blocking().unwrap(),
            "{url}: already there"
        );
        let repo = Repository::open(backend, true).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        common::write_graph(tmp.path(), 31);
        create_snapshot(
            &repo,
            "g",
            tmp.path(),
            &SnapshotOptions::default(),
            &NoProgress,
        )
        .unwrap();
        assert_eq!(repo.list_snapshots("g").unwrap().len(), 1);
    }
}
