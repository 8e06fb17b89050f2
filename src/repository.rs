//! A repository: config, the chunk index kept in memory, and snapshot manifests.
//!
//! ```no_run
//! use lightrag_backup::{Backend, Repository};
//! let repo = Repository::open(Backend::open("/data/backups")?, true)?;
//! for manifest in repo.list_snapshots("my-graph")? {
//!     println!("{} {}", manifest.snapshot_id, manifest.time);
//! }
//! # Ok::<(), lightrag_backup::Error>(())
//! ```

use crate::backend::{Backend, Created};
use crate::error::{Error, Result};
use crate::format::{
    self, config::SealedConfig, paths, ChunkerParams, Codec, DamageRecord, EncryptionHeader,
    IndexFile, ObjectId, PruneMarker, RepoConfig, SnapshotManifest, FORMAT_VERSION,
};
use crate::keys::{KeyObject, MasterKey, MAX_KEY_OBJECT};
use crate::runtime::block_on;
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

/// zstd level for new repositories: level 1 compresses LightRAG data within 0.3% of level 3
/// (254.6 vs 253.9 MB for the 389 MB bench graph) at about 25% less backup time.
const ZSTD_LEVEL: i32 = 1;

/// Small objects (manifests, markers, recovery points) read at once when many are read: the
/// store's latency is paid once per batch; results keep their order.
const READS_IN_FLIGHT: usize = 16;

pub use crate::chunk_index::BlobLocation;

/// An index object below this encoded size is merged by the next compaction (about 25,000
/// chunk entries; one snapshot's object is a few kilobytes). See `crate::compact`.
pub const SMALL_INDEX_BYTES: u64 = 1 << 20;

#[derive(Default)]
struct IndexState {
    loaded: HashSet<String>,
    /// The loaded index objects a compaction would merge (below [`SMALL_INDEX_BYTES`]).
    small: HashSet<String>,
    blobs: crate::chunk_index::ChunkIndex,
    packs: HashMap<ObjectId, u64>,
    /// Prune markers by path, and the packs they hold: new snapshots never reuse those.
    markers: HashMap<String, PruneMarker>,
    excluded: HashSet<ObjectId>,
    /// Damage records read, by path, and the packs they name: like marked packs, never reused,
    /// and a copy elsewhere is always preferred.
    damage: HashMap<String, DamageRecord>,
    damaged: HashSet<ObjectId>,
    /// Index objects, markers and damage records that could not be read, by path, with why.
    unreadable: HashMap<String, String>,
}

impl IndexState {
    /// A pack new snapshots must not deduplicate against (marked by a prune, or damaged).
    fn avoided(&self, pack: &ObjectId) -> bool {
        self.excluded.contains(pack) || self.damaged.contains(pack)
    }
}

/// A snapshot manifest that cannot be read (truncated, bit-rotted, not what its name says).
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnreadableSnapshot {
    pub graph_id: String,
    pub snapshot_id: String,
    pub path: String,
    pub reason: String,
}

/// What [`Repository::scan_snapshots`] found.
#[derive(Debug, Clone, Default)]
pub struct SnapshotScan {
    pub manifests: Vec<SnapshotManifest>,
    pub unreadable: Vec<UnreadableSnapshot>,
}

/// An open repository. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Repository {
    backend: Backend,
    config: RepoConfig,
    /// Compression and encryption of every chunk and object (see [`format::codec`]).
    codec: Codec,
    /// The key object this process unlocked the repository with (encrypted repositories).
    key_id: std::sync::Mutex<Option<String>>,
    index: RwLock<IndexState>,
    /// The graph keys this process has read (see [`crate::graph_keys`]).
    pub(crate) graph_keys: crate::graph_key_cache::GraphKeys,
    /// This host's copies of the repository's index objects (a remote repository's only).
    cache: Option<crate::cache::ObjectCache>,
    /// Test hook: runs between a commit's check and its manifest write.
    between_check_and_write: std::sync::Mutex<Option<CommitHook>>,
}

/// What [`Repository::set_between_check_and_write`] runs.
pub type CommitHook = std::sync::Arc<dyn Fn() + Send + Sync>;

/// How a new repository is made.
pub enum Encryption {
    /// Not encrypted (`init --encryption none`).
    None,
    /// Encrypted under a password: a new random master key, or the one of a key export (a
    /// repository that shares it takes the other's chunks as they are).
    Password(Option<Box<MasterKey>>),
    /// As `Password`, and every graph gets a key of its own at its first snapshot
    /// (`init --key-per-graph`), so any graph can be shredded.
    KeyPerGraph(Option<Box<MasterKey>>),
}

/// The name sealed configs are bound to.
const CONFIG_NAME: &str = "config";

/// A stored `config` object: a plain config, or an encrypted repository's sealed one.
enum StoredConfig {
    Plain(RepoConfig),
    Sealed(SealedConfig),
}

impl StoredConfig {
    fn parse(bytes: &[u8]) -> Result<Self> {
        let unreadable = |e: serde_json::Error| {
            Error::integrity(format!("repository config is unreadable: {e}"))
        };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(unreadable)?;
        Ok(if value.get("sealed").is_some() {
            StoredConfig::Sealed(serde_json::from_value(value).map_err(unreadable)?)
        } else {
            StoredConfig::Plain(serde_json::from_value(value).map_err(unreadable)?)
        })
    }
}

/// The stored `config` of an encrypted repository: its public header and the whole config
/// sealed under `codec`'s key.
fn sealed_config(codec: &Codec, config: &RepoConfig) -> Vec<u8> {
    let sealed = SealedConfig {
        format_version: config.format_version,
        repository_id: config.repository_id.clone(),
        encryption: config.encryption.clone().unwrap_or_else(|| {
            EncryptionHeader::new(codec.master_key().expect("sealed under a key").ids())
        }),
        sealed: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            codec.seal_json(
                CONFIG_NAME,
                serde_json::to_vec(config).expect("config serialises"),
            ),
        ),
    };
    serde_json::to_vec_pretty(&sealed).expect("config serialises")
}

/// A key object listed in a repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub created_at: String,
    pub hostname: String,
    pub username: String,
    pub kdf: crate::keys::KdfParams,
    /// Whether this process opened the repository with it.
    pub current: bool,
}

/// Path of a pack object.
pub fn pack_path(id: &ObjectId) -> Path {
    paths::pack(id)
}

/// Why a target whose key has fingerprint `theirs` cannot take chunks stored under `ours` as
/// they are (`None`: it can: the same key, or both unencrypted).
pub fn key_mismatch(ours: Option<String>, theirs: Option<String>) -> Option<String> {
    const PROVISION: &str = "a target must hold this repository's key: create it from a key export (`lightrag-backup key export`, then `init --from-key-export`), or let replication create a repository target";
    match (ours, theirs) {
        (a, b) if a == b => None,
        (Some(_), None) => Some(format!(
            "this repository is encrypted and the target's is not; {PROVISION}"
        )),
        (None, Some(_)) => Some(
            "the target's repository is encrypted and this one is not, so their chunk ids differ"
                .to_string(),
        ),
        _ => Some(format!(
            "the target's repository is encrypted under another master key; {PROVISION}"
        )),
    }
}

/// Check a graph id: it names a folder in the repository, so it must be a plain name.
///
/// # Errors
/// `InvalidInput` unless it is 1-128 characters of `A-Z a-z 0-9 _ - .`, not starting with `.`.
pub fn validate_graph_id(graph_id: &str) -> Result<()> {
    let ok = !graph_id.is_empty()
        && graph_id.len() <= 128
        && !graph_id.starts_with('.')
        && graph_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "graph id {:?} is not valid: use 1-128 characters of letters, digits, '_', '-' and '.', not starting with '.'",
            shown(graph_id)
        )))
    }
}

/// Check a full snapshot id (it names an object): a UUID, lower-case and hyphenated.
///
/// # Errors
/// `InvalidInput` otherwise.
pub fn validate_snapshot_id(snapshot_id: &str) -> Result<()> {
    match uuid::Uuid::parse_str(snapshot_id) {
        Ok(id) if id.hyphenated().to_string() == snapshot_id => Ok(()),
        _ => Err(Error::invalid(format!(
            "snapshot id {:?} is not a UUID",
            shown(snapshot_id)
        ))),
    }
}

/// Input as an error message repeats it: at most 80 characters (an id of 5,000 is cut).
pub(crate) fn shown(input: &str) -> String {
    match input.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &input[..at]),
        None => input.to_string(),
    }
}

/// The snapshot reference that names a graph's newest snapshot, as in restic.
pub const LATEST: &str = "latest";

/// The (graph, snapshot) names of `names` that `snapshot_ref` (lowercase) names: those whose
/// id is exactly it, else those whose id starts with it.
fn matching<'a>(names: &'a [(String, String)], snapshot_ref: &str) -> Vec<&'a (String, String)> {
    let exact: Vec<&(String, String)> = names.iter().filter(|(_, id)| id == snapshot_ref).collect();
    if !exact.is_empty() {
        return exact;
    }
    names
        .iter()
        .filter(|(_, id)| id.starts_with(snapshot_ref))
        .collect()
}

fn validate_snapshot_ref(graph_id: &str, snapshot_id: &str) -> Result<()> {
    let ok = !snapshot_id.is_empty()
        && snapshot_id.len() <= 64
        && snapshot_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::SnapshotNotFound {
            graph_id: graph_id.to_string(),
            snapshot_id: shown(snapshot_id),
            hint: " (a snapshot id is a UUID, a unique prefix of one, or `latest`)".to_string(),
        })
    }
}

impl Repository {
    /// Open the repository at `backend`; with `create`, initialise it (unencrypted) when it has
    /// no `config`. An encrypted repository needs [`Repository::open_with`].
    ///
    /// # Errors
    /// `RepositoryNotFound` when there is no config and `create` is false;
    /// `PasswordRequired` for an encrypted repository; `UnsupportedFormat` for a newer
    /// format; `Backend` when the store fails.
    pub fn open(backend: Backend, create: bool) -> Result<Self> {
        Self::open_with(backend, create.then_some(Encryption::None), None)
    }

    /// Open the repository at `backend` with `password` (needed when it is encrypted); with
    /// `create`, initialise it as `create` says when it has no `config`.
    ///
    /// # Errors
    /// As [`Repository::open`]; `WrongPassword` when no key opens with the password;
    /// `PasswordRequired` when creating an encrypted repository without one.
    pub fn open_with(
        backend: Backend,
        create: Option<Encryption>,
        password: Option<&[u8]>,
    ) -> Result<Self> {
        match block_on(backend.get_bounded(&paths::config()))? {
            Some(bytes) => Self::from_config_bytes(backend, &bytes, password),
            None => {
                // A missing bucket or container also reads as "no config": say which it is.
                backend.check_location_blocking()?;
                match create {
                    Some(encryption) => Self::create(
                        backend,
                        ChunkerParams::default(),
                        (ChunkerParams::matrix(), 1),
                        ZSTD_LEVEL,
                        encryption,
                        password,
                    ),
                    None => {
                        backend.remove_created_folder();
                        Err(Error::RepositoryNotFound {
                            location: backend.location().to_string(),
                        })
                    }
                }
            }
        }
    }

    /// Create a new unencrypted repository (or open the one a concurrent caller just created).
    pub fn init(backend: Backend, chunker: ChunkerParams) -> Result<Self> {
        Self::create(
            backend,
            chunker,
            (ChunkerParams::matrix(), 1),
            ZSTD_LEVEL,
            Encryption::None,
            None,
        )
    }

    fn create(
        backend: Backend,
        chunker: ChunkerParams,
        (matrix_chunker, matrix_rows_per_chunk): (ChunkerParams, u32),
        compression_level: i32,
        encryption: Encryption,
        password: Option<&[u8]>,
    ) -> Result<Self> {
        let mut config = RepoConfig {
            format_version: FORMAT_VERSION,
            repository_id: uuid::Uuid::new_v4().to_string(),
            chunker,
            matrix_chunker,
            matrix_rows_per_chunk,
            compression: "zstd".to_string(),
            compression_level,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            encryption: None,
            key_per_graph: matches!(encryption, Encryption::KeyPerGraph(_)),
        };
        let path = paths::config();
        let (bytes, codec, key_path) = match encryption {
            Encryption::None => (
                serde_json::to_vec_pretty(&config).expect("config serialises"),
                Codec::plain(),
                None,
            ),
            Encryption::Password(master) | Encryption::KeyPerGraph(master) => {
                let password = password.ok_or_else(|| {
                    backend.remove_created_folder();
                    Error::PasswordRequired {
                    message: format!(
                        "a new repository at {} is encrypted and needs a password: pass --password-file or --password-command, or set LIGHTRAG_BACKUP_PASSWORD_FILE, LIGHTRAG_BACKUP_PASSWORD_COMMAND or LIGHTRAG_BACKUP_PASSWORD (in Python: password=...); `--encryption none` makes an unencrypted one",
                        backend.location()
                    ),
                }})?;
                let master = match master {
                    Some(master) => *master,
                    None => MasterKey::generate()?,
                };
                config.encryption = Some(EncryptionHeader::new(master.ids()));
                let codec = Codec::encrypted(std::sync::Arc::new(master));
                // The key object first: a config names an encrypted repository only once a
                // key to open it exists (a key object left by a crash before its config is
                // one no config opens, tried and passed over).
                let key_path = Self::write_key_object(&backend, &codec, password)?;
                (sealed_config(&codec, &config), codec, Some(key_path))
            }
        };
        match block_on(backend.put_create(&path, Bytes::from(bytes)))? {
            Created::New => Ok(Repository {
                // Before `backend` moves into its field.
                cache: crate::cache::ObjectCache::for_repository(&backend, &config.repository_id),
                backend: {
                    backend.restrict_root();
                    backend
                },
                key_id: std::sync::Mutex::new(
                    key_path.and_then(|p| p.filename().map(str::to_string)),
                ),
                config,
                codec,
                index: RwLock::new(IndexState::default()),
                graph_keys: Default::default(),
                between_check_and_write: Default::default(),
            }),
            // Another process initialised it first: use theirs.
            Created::AlreadyExisted => {
                if let Some(key_path) = key_path {
                    block_on(backend.delete(&key_path))?;
                }
                let bytes = block_on(backend.get(&path))?;
                Self::from_config_bytes(backend, &bytes, password)
            }
        }
    }

    /// Wrap this codec's master key under `password` into a new key object; returns its path.
    fn write_key_object(backend: &Backend, codec: &Codec, password: &[u8]) -> Result<Path> {
        let master = codec
            .master_key()
            .ok_or_else(|| Error::invalid("the repository is not encrypted: it has no keys"))?;
        let object = KeyObject::wrap(master, password, hostname())?;
        let path = paths::key(&uuid::Uuid::new_v4().simple().to_string());
        block_on(backend.put_create(&path, Bytes::from(object.encode())))?;
        Ok(path)
    }

    /// Create a repository at `backend` that takes `source`'s data as it is: the same chunker
    /// parameters and compression (a new repository id), so chunks deduplicate across a copy.
    /// An existing repository there is opened instead (and checked with
    /// [`Repository::check_compatible`] by the copy).
    ///
    /// # Errors
    /// As [`Repository::init`].
    pub fn init_like(backend: Backend, source: &Repository) -> Result<Self> {
        let config = &source.config;
        if source.codec.is_encrypted() {
            // The same master key (so chunks move as they are stored), opened by the same
            // passwords: the source's key objects are copied before the config.
            let target = block_on(async {
                for (path, _) in source.backend.list(paths::KEYS).await? {
                    if let Some(bytes) = source
                        .backend
                        .get_at_most(&path, MAX_KEY_OBJECT as u64)
                        .await?
                    {
                        backend.put_immutable(&path, bytes).await?;
                    }
                }
                Ok::<_, Error>(())
            });
            target?;
            let master = source.codec.master_key().expect("encrypted");
            let mut config = config.clone();
            config.repository_id = uuid::Uuid::new_v4().to_string();
            config.created_at =
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let codec = Codec::encrypted(master.clone());
            let bytes = sealed_config(&codec, &config);
            return match block_on(backend.put_create(&paths::config(), Bytes::from(bytes)))? {
                Created::New => Ok(Repository {
                    // Before `backend` moves into its field.
                    cache: crate::cache::ObjectCache::for_repository(
                        &backend,
                        &config.repository_id,
                    ),
                    backend: {
                        backend.restrict_root();
                        backend
                    },
                    config,
                    codec,
                    key_id: std::sync::Mutex::new(source.key_id.lock().unwrap().clone()),
                    index: RwLock::new(IndexState::default()),
                    graph_keys: Default::default(),
                    between_check_and_write: Default::default(),
                }),
                Created::AlreadyExisted => {
                    let bytes = block_on(backend.get(&paths::config()))?;
                    Self::from_config_with_key(backend, &bytes, source)
                }
            };
        }
        Self::create(
            backend,
            config.chunker,
            (config.matrix_chunker, config.matrix_rows_per_chunk),
            config.compression_level,
            Encryption::None,
            None,
        )
    }

    /// Open the repository whose config is `bytes` with `source`'s master key (a copy target
    /// that shares it), or without a key when it is not encrypted.
    ///
    /// # Errors
    /// `IncompatibleTarget` when it is encrypted under another key.
    pub fn open_like(backend: Backend, source: &Repository) -> Result<Self> {
        match block_on(backend.get_bounded(&paths::config()))? {
            Some(bytes) => Self::from_config_with_key(backend, &bytes, source),
            None => Err(Error::RepositoryNotFound {
                location: backend.location().to_string(),
            }),
        }
    }

    fn from_config_with_key(backend: Backend, bytes: &[u8], source: &Repository) -> Result<Self> {
        let sealed = match StoredConfig::parse(bytes)? {
            StoredConfig::Plain(config) => return Self::from_plain_config(backend, config),
            StoredConfig::Sealed(sealed) => sealed,
        };
        let location = backend.location().to_string();
        let master =
            source
                .codec
                .master_key()
                .cloned()
                .ok_or_else(|| Error::IncompatibleTarget {
                    target: location.clone(),
                    reason: "it is encrypted and this repository is not".to_string(),
                })?;
        let codec = Codec::encrypted(master);
        let config = Self::open_sealed_config(&codec, &sealed).ok_or_else(|| {
            Error::IncompatibleTarget {
                target: location,
                reason: "it is encrypted under another master key, so it cannot take this repository's chunks as they are stored".to_string(),
            }
        })??;
        Self::checked(
            backend,
            config,
            codec,
            source.key_id.lock().unwrap().clone(),
        )
    }

    /// Whether `target` can take this repository's chunks as they are.
    ///
    /// # Errors
    /// `IncompatibleTarget` naming the difference.
    pub fn check_compatible(&self, target: &Repository) -> Result<()> {
        let (ours, theirs) = (&self.config, &target.config);
        let reason = if theirs.format_version > FORMAT_VERSION {
            Some(format!(
                "it has format version {}, newer than this build reads",
                theirs.format_version
            ))
        } else if let Some(reason) =
            key_mismatch(self.codec.fingerprint(), target.codec.fingerprint())
        {
            Some(reason)
        } else if !ours.chunks_like(theirs) {
            Some(format!(
                "it chunks files with other parameters ({}, here {}), so nothing would deduplicate; copy into a new repository, which replication creates with these parameters",
                theirs.chunking(), ours.chunking()
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::IncompatibleTarget {
                target: target.backend.location().to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The config sealed in `sealed`, if `codec`'s key opens it (`None` when it does not).
    fn open_sealed_config(codec: &Codec, sealed: &SealedConfig) -> Option<Result<RepoConfig>> {
        let stored =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &sealed.sealed)
                .ok()?;
        let json = codec.open_json(CONFIG_NAME, &stored).ok()?;
        Some(
            serde_json::from_slice(&json)
                .map_err(|e| Error::integrity(format!("repository config is unreadable: {e}"))),
        )
    }

    /// A repository of an unencrypted config.
    fn from_plain_config(backend: Backend, config: RepoConfig) -> Result<Self> {
        // A repository with keys has a sealed config: a plain one there was put by someone
        // without the key, to make writers store plaintext.
        if config.format_version >= 5 && !block_on(backend.list(paths::KEYS))?.is_empty() {
            return Err(Error::integrity(
                "repository config says it is not encrypted, but the repository has keys: the config was replaced by someone without the key; restore it from a copy",
            ));
        }
        Self::checked(backend, config, Codec::plain(), None)
    }

    fn from_config_bytes(backend: Backend, bytes: &[u8], password: Option<&[u8]>) -> Result<Self> {
        let sealed = match StoredConfig::parse(bytes)? {
            StoredConfig::Plain(config) => return Self::from_plain_config(backend, config),
            StoredConfig::Sealed(sealed) => sealed,
        };
        if sealed.format_version > FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                found: sealed.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let location = backend.location().to_string();
        let password = password.ok_or_else(|| Error::PasswordRequired {
            message: format!(
                "repository {location} is encrypted: give its password with --password-file or --password-command, or set LIGHTRAG_BACKUP_PASSWORD_FILE, LIGHTRAG_BACKUP_PASSWORD_COMMAND or LIGHTRAG_BACKUP_PASSWORD (in Python: password=...)"
            ),
        })?;
        let mut opened_a_key: Option<String> = None;
        let found = block_on(async {
            let mut keys = backend.list(paths::KEYS).await?;
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            for (path, _) in keys.into_iter().take(crate::keys::MAX_KEYS) {
                let bytes = match backend.get_at_most(&path, MAX_KEY_OBJECT as u64).await {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => continue,
                    // An oversized key object is damage: passed over, as one that cannot be read.
                    Err(error) if error.is_damage() => {
                        warn_once(path.as_ref(), &error);
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                let object = match KeyObject::decode(&bytes, path.as_ref()) {
                    Ok(object) => object,
                    Err(error) => {
                        warn_once(path.as_ref(), &error);
                        continue;
                    }
                };
                let master = match object.unwrap(password) {
                    Ok(Some(master)) => master,
                    Ok(None) => continue,
                    Err(error) => {
                        warn_once(path.as_ref(), &error);
                        continue;
                    }
                };
                let codec = Codec::encrypted(std::sync::Arc::new(master));
                // A key whose master does not open the config is not this repository's (one
                // left by an interrupted init), or the config is damaged.
                if let Some(config) = Self::open_sealed_config(&codec, &sealed) {
                    return Ok(Some((codec, path.filename().map(str::to_string), config?)));
                }
                opened_a_key = Some(path.to_string());
            }
            Ok::<_, Error>(None)
        })?;
        let Some((codec, key_id, config)) = found else {
            return Err(match opened_a_key {
                Some(key) => Error::integrity(format!(
                    "repository config of {location} is not authentic: key {key} opens with this password but the config does not open with its key (the config is damaged or was replaced; put back a copy of it)"
                )),
                None => Error::WrongPassword { location },
            });
        };
        Self::checked(backend, config, codec, key_id)
    }

    /// A repository of a config read from the store, its chunker parameters checked.
    fn checked(
        backend: Backend,
        config: RepoConfig,
        mut codec: Codec,
        key_id: Option<String>,
    ) -> Result<Self> {
        if config.format_version == 0 || config.format_version > FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                found: config.format_version,
                supported: FORMAT_VERSION,
            });
        }
        // A key object wraps the key alone: the (sealed) config says how chunk ids are made.
        if let (Some(master), Some(header)) = (codec.master_key(), &config.encryption) {
            let ids = crate::keys::ChunkIds::parse(&header.chunk_id)?;
            if master.ids() != ids {
                codec = Codec::encrypted(std::sync::Arc::new(master.with_ids(ids)));
            }
        }
        for (what, params) in [
            ("chunker", config.chunker),
            ("matrix_chunker", config.matrix_chunker),
        ] {
            let ChunkerParams {
                min_size,
                avg_size,
                max_size,
            } = params;
            let sane = (64..=avg_size).contains(&min_size)
                && avg_size <= max_size
                && max_size <= format::limits::MAX_CHUNK;
            if !sane {
                return Err(Error::integrity(format!(
                    "repository config is unreadable: {what} {params:?} is out of the format's range (64 <= min <= avg <= max <= {})",
                    format::limits::MAX_CHUNK
                )));
            }
        }
        let repo = Repository {
            cache: crate::cache::ObjectCache::for_repository(&backend, &config.repository_id),
            backend,
            config,
            codec,
            key_id: std::sync::Mutex::new(key_id),
            index: RwLock::new(IndexState::default()),
            graph_keys: Default::default(),
            between_check_and_write: Default::default(),
        };
        repo.refresh_index()?;
        Ok(repo)
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// How this repository's chunks and objects are compressed and encrypted.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The key objects of the repository (none when it is not encrypted).
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        let current = self.key_id.lock().unwrap().clone();
        block_on(async {
            let mut out = Vec::new();
            for (path, _) in self.backend.list(paths::KEYS).await? {
                let bytes = match self.backend.get_at_most(&path, MAX_KEY_OBJECT as u64).await {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => continue,
                    // An oversized key object is damage: passed over, as one that cannot be read.
                    Err(error) if error.is_damage() => {
                        warn_once(path.as_ref(), &error);
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                let id = path.filename().unwrap_or_default().to_string();
                match KeyObject::decode(&bytes, path.as_ref()) {
                    Ok(object) => out.push(KeyInfo {
                        current: current.as_deref() == Some(id.as_str()),
                        id,
                        created_at: object.created_at,
                        hostname: object.hostname,
                        username: object.username,
                        kdf: object.kdf,
                    }),
                    Err(error) => warn_once(path.as_ref(), &error),
                }
            }
            out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(out)
        })
    }

    /// Add a key object opened by `password`; returns its id.
    ///
    /// # Errors
    /// `InvalidInput` when the repository is not encrypted; `Backend` when the store fails.
    pub fn add_key(&self, password: &[u8]) -> Result<String> {
        if password.is_empty() {
            return Err(Error::invalid("the new password is empty"));
        }
        let path = Self::write_key_object(&self.backend, &self.codec, password)?;
        Ok(path.filename().unwrap_or_default().to_string())
    }

    /// Remove a key object by id (or a unique prefix): not the one this process opened the
    /// repository with (that is `change_password`), never the last one.
    ///
    /// # Errors
    /// `InvalidInput` for an unknown, ambiguous, current or last key.
    pub fn remove_key(&self, id: &str) -> Result<String> {
        let keys = self.keys()?;
        let matches: Vec<&KeyInfo> = keys
            .iter()
            .filter(|k| !id.is_empty() && k.id.starts_with(id))
            .collect();
        let key = match matches.as_slice() {
            [key] => *key,
            [] => {
                return Err(Error::invalid(format!(
                    "no key {:?} in this repository (`key list` shows them)",
                    shown(id)
                )))
            }
            _ => {
                return Err(Error::invalid(format!(
                    "key id prefix {:?} matches {} keys",
                    shown(id),
                    matches.len()
                )))
            }
        };
        if key.current {
            return Err(Error::invalid(format!(
                "key {} is the one this command opened the repository with: use `key passwd` to replace it, or open with another key's password to remove it",
                key.id
            )));
        }
        if keys.len() <= 1 {
            return Err(Error::invalid(
                "the repository's last key cannot be removed",
            ));
        }
        block_on(self.backend.delete(&paths::key(&key.id)))?;
        Ok(key.id.clone())
    }

    /// Replace the key this process opened the repository with by one opened by `password`:
    /// the new key object is written before the old one is deleted. Returns the new key's id.
    ///
    /// # Errors
    /// As [`Repository::add_key`].
    pub fn change_password(&self, password: &[u8]) -> Result<String> {
        let new_id = self.add_key(password)?;
        let old = self.key_id.lock().unwrap().replace(new_id.clone());
        if let Some(old) = old {
            block_on(self.backend.delete(&paths::key(&old)))?;
        }
        Ok(new_id)
    }

    /// The master key as a key export (JSON), for safekeeping.
    ///
    /// # Errors
    /// `InvalidInput` when the repository is not encrypted.
    pub fn export_key(&self) -> Result<String> {
        self.codec.master_key().map(|k| k.export()).ok_or_else(|| {
            Error::invalid("the repository is not encrypted: it has no key to export")
        })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// This host's cache of the repository's objects that never change (a remote one's only).
    pub fn object_cache(&self) -> Option<&crate::cache::ObjectCache> {
        self.cache.as_ref()
    }

    /// Bring the in-memory index up to date with the repository: load index files written
    /// since the last refresh (by this or another process), start over when a prune removed
    /// some, and read the prune markers whose packs new snapshots must not reuse.
    pub fn refresh_index(&self) -> Result<()> {
        // A prune writes an index file's replacement before it deletes the file, so a file
        // listed here and gone when read means a newer listing has the replacement: list again.
        for _ in 0..5 {
            if self.try_refresh_index()? {
                return Ok(());
            }
        }
        Err(Error::Conflict {
            message: "index files kept being replaced by a running prune; retry".to_string(),
        })
    }

    /// `false` when an index file vanished between listing and reading.
    fn try_refresh_index(&self) -> Result<bool> {
        let sizes: HashMap<String, u64> = self
            .backend
            .list_blocking(paths::INDEX)?
            .into_iter()
            .map(|(path, size)| (path.to_string(), size))
            .collect();
        let listed: HashSet<String> = sizes.keys().cloned().collect();
        let marker_paths: HashSet<String> = self
            .backend
            .list_blocking(paths::PRUNE)?
            .into_iter()
            .map(|(path, _)| path.to_string())
            .collect();
        let damage_paths: HashSet<String> = self
            .backend
            .list_blocking(paths::DAMAGED)?
            .into_iter()
            .map(|(path, _)| path.to_string())
            .collect();
        let (rebuild, fresh, fresh_markers, fresh_damage) = {
            let state = self.index.read().unwrap();
            let removed = state.loaded.iter().any(|p| !listed.contains(p))
                || state.markers.keys().any(|p| !marker_paths.contains(p))
                || state.damage.keys().any(|p| !damage_paths.contains(p));
            let known = |p: &String, read: bool| read || state.unreadable.contains_key(p);
            let fresh_markers: Vec<String> = marker_paths
                .iter()
                .filter(|p| !known(p, state.markers.contains_key(*p)))
                .cloned()
                .collect();
            let fresh_damage: Vec<String> = damage_paths
                .iter()
                .filter(|p| !known(p, state.damage.contains_key(*p)))
                .cloned()
                .collect();
            let rebuild = removed || !fresh_markers.is_empty() || !fresh_damage.is_empty();
            let fresh: Vec<String> = listed
                .iter()
                .filter(|p| rebuild || !state.loaded.contains(*p))
                .cloned()
                .collect();
            (rebuild, fresh, fresh_markers, fresh_damage)
        };
        if !rebuild && fresh.is_empty() {
            return Ok(true);
        }
        if let (true, Some(cache)) = (rebuild, &self.cache) {
            let names: HashSet<String> = listed
                .iter()
                .filter_map(|p| p.rsplit('/').next().map(str::to_string))
                .collect();
            cache.forget_index_objects_but(&names);
        }
        let loaded = block_on(async {
            // A damaged object is recorded as unreadable and skipped: one bad object never
            // makes the repository unusable (verify reports it, repair sets it aside).
            let mut unreadable: Vec<(String, String)> = Vec::new();
            let mut files = Vec::with_capacity(fresh.len());
            for path in fresh {
                let location = Path::from(path.as_str());
                let Some(bytes) = self.index_object(&location).await.transpose() else {
                    return Ok(None);
                };
                match bytes.and_then(|bytes| self.decode_index_file(&location, &bytes)) {
                    Ok(file) => files.push((path, file)),
                    Err(error) if error.is_damage() => unreadable.push((path, error.detail())),
                    Err(error) => return Err(error),
                }
            }
            // A marker deleted in between was swept: nothing to exclude any more.
            let markers = self
                .read_small_objects(fresh_markers, format::prune::MAGIC, &mut unreadable)
                .await?;
            let damage = self
                .read_small_objects(fresh_damage, format::damage::MAGIC, &mut unreadable)
                .await?;
            Ok::<_, Error>(Some((files, markers, damage, unreadable)))
        })?;
        let Some((files, markers, damage, unreadable)) = loaded else {
            return Ok(false);
        };
        for (path, why) in &unreadable {
            warn_once(path, &Error::integrity(why.clone()));
        }
        let mut state = self.index.write().unwrap();
        if rebuild {
            let kept_markers: HashMap<String, PruneMarker> = std::mem::take(&mut state.markers)
                .into_iter()
                .filter(|(path, _)| marker_paths.contains(path))
                .chain(markers)
                .collect();
            let kept_damage: HashMap<String, DamageRecord> = std::mem::take(&mut state.damage)
                .into_iter()
                .filter(|(path, _)| damage_paths.contains(path))
                .chain(damage)
                .collect();
            let unreadable = std::mem::take(&mut state.unreadable);
            *state = IndexState {
                unreadable,
                excluded: kept_markers
                    .values()
                    .flat_map(|m| m.packs.iter().copied())
                    .collect(),
                markers: kept_markers,
                damaged: kept_damage
                    .values()
                    .flat_map(|r| r.packs.iter().copied())
                    .collect(),
                damage: kept_damage,
                ..Default::default()
            };
        }
        for (path, file) in files {
            Self::add_to_state(&mut state, &file);
            if sizes.get(&path).copied().unwrap_or(0) < SMALL_INDEX_BYTES {
                state.small.insert(path.clone());
            }
            state.loaded.insert(path);
        }
        // Objects are immutable: one unreadable now stays so, and is not fetched again.
        let all_listed =
            |p: &String| listed.contains(p) || marker_paths.contains(p) || damage_paths.contains(p);
        state.unreadable.retain(|path, _| all_listed(path));
        for (path, why) in unreadable {
            if path.starts_with(paths::INDEX) {
                state.loaded.insert(path.clone());
            }
            state.unreadable.insert(path, why);
        }
        Ok(true)
    }

    /// Read and decode small objects of one kind by path: one gone since it was listed is left
    /// out, one that cannot be read is added to `unreadable` (path, why).
    async fn read_small_objects<T: serde::de::DeserializeOwned>(
        &self,
        paths: Vec<String>,
        magic: &[u8; 4],
        unreadable: &mut Vec<(String, String)>,
    ) -> Result<Vec<(String, T)>> {
        let mut out = Vec::with_capacity(paths.len());
        let reads = futures::stream::iter(paths.into_iter().map(|path| async move {
            let read = self
                .backend
                .get_bounded(&Path::from(path.as_str()))
                .await
                .transpose();
            (path, read)
        }))
        .buffered(READS_IN_FLIGHT);
        futures::pin_mut!(reads);
        while let Some((path, read)) = reads.next().await {
            let Some(bytes) = read else {
                continue;
            };
            match bytes.and_then(|b| self.codec.decode_object(magic, &path, &b, &path)) {
                Ok(value) => out.push((path, value)),
                Err(error) if error.is_damage() => unreadable.push((path, error.detail())),
                Err(error) => return Err(error),
            }
        }
        Ok(out)
    }

    /// Every index file of the repository, by path.
    ///
    /// # Errors
    /// `Backend` when the store fails. An index file that cannot be read (damaged, or not
    /// matching its name) is left out.
    pub async fn read_index_files(&self) -> Result<std::collections::BTreeMap<String, IndexFile>> {
        let mut files = std::collections::BTreeMap::new();
        for (path, _) in self.backend.list(paths::INDEX).await? {
            // An unreadable one is skipped here as in the in-memory index (which names it).
            match self.read_index_file(&path).await {
                Ok(file) => {
                    files.insert(path.to_string(), file);
                }
                Err(error) if error.is_damage() => warn_once(path.as_ref(), &error),
                Err(error) => return Err(error),
            }
        }
        Ok(files)
    }

    /// Rewrite the index files of `index_files` that list any of `packs`, without them: each
    /// new file is written before its old one is deleted, so every other chunk stays indexed
    /// throughout. Returns how many files were rewritten.
    ///
    /// # Errors
    /// `Backend` when the store fails (the index then lists the packs twice at worst).
    pub async fn drop_packs_from_index(
        &self,
        index_files: &std::collections::BTreeMap<String, IndexFile>,
        packs: &HashSet<ObjectId>,
    ) -> Result<usize> {
        let mut rewritten = 0;
        for (path, file) in index_files {
            if !file.packs.iter().any(|p| packs.contains(&p.id)) {
                continue;
            }
            let kept: Vec<format::IndexPack> = file
                .packs
                .iter()
                .filter(|p| !packs.contains(&p.id))
                .cloned()
                .collect();
            if !kept.is_empty() {
                self.store_index(&IndexFile { packs: kept }).await?;
            }
            self.backend.delete(&Path::from(path.as_str())).await?;
            rewritten += 1;
        }
        Ok(rewritten)
    }

    /// Read and check one index file.
    pub(crate) async fn read_index_file(&self, path: &Path) -> Result<IndexFile> {
        self.read_index_file_if_there(path)
            .await?
            .ok_or_else(|| crate::backend::missing(path))
    }

    /// Read and check one index file; `None` when it is gone.
    pub(crate) async fn read_index_file_if_there(&self, path: &Path) -> Result<Option<IndexFile>> {
        match self.index_object(path).await? {
            Some(bytes) => self.decode_index_file(path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The bytes of index object `path`: from this host's cache when it holds them whole,
    /// else fetched (and kept there when they match their name). `None` when it is gone.
    async fn index_object(&self, path: &Path) -> Result<Option<Bytes>> {
        let name = path.filename().unwrap_or_default();
        if let Some(bytes) = self.cache.as_ref().and_then(|c| c.index_object(name)) {
            return Ok(Some(bytes));
        }
        let fetched = self.backend.get_bounded(path).await?;
        if let (Some(cache), Some(bytes)) = (&self.cache, &fetched) {
            if ObjectId::of(bytes).to_hex() == name {
                cache.keep_index_object(name, bytes);
            }
        }
        Ok(fetched)
    }

    fn decode_index_file(&self, path: &Path, bytes: &[u8]) -> Result<IndexFile> {
        if ObjectId::of(bytes).to_hex() != path.filename().unwrap_or_default() {
            return Err(Error::integrity(format!(
                "index file {path} does not match its name"
            )));
        }
        let file: IndexFile =
            self.codec
                .decode_object(format::index::MAGIC, "", bytes, path.as_ref())?;
        // Lengths are checked here, once, so nothing downstream sizes a buffer from a bad one.
        for pack in &file.packs {
            for blob in &pack.blobs {
                format::pack::check_entry(blob, pack.size, self.config.max_chunk_len())
                    .map_err(|why| Error::integrity(format!("index file {path}: {why}")))?;
            }
        }
        Ok(file)
    }

    fn add_to_state(state: &mut IndexState, file: &IndexFile) {
        let IndexState {
            blobs,
            packs,
            excluded,
            damaged,
            ..
        } = state;
        let avoided = |pack: &ObjectId| excluded.contains(pack) || damaged.contains(pack);
        for pack in &file.packs {
            packs.insert(pack.id, pack.size);
        }
        // Prefer a copy that no prune is about to delete and that is not damaged.
        blobs.insert_all(
            file.packs.iter().map(|p| (p.id, p.blobs.as_slice())),
            |this, indexed| !avoided(this) && avoided(indexed),
        );
    }

    /// Bytes the in-memory chunk index holds, and the chunks it indexes.
    pub fn chunk_index_size(&self) -> (usize, usize) {
        let state = self.index.read().unwrap();
        (state.blobs.heap_bytes(), state.blobs.len())
    }

    /// The prune markers read by the last refresh, by path.
    pub fn prune_markers(&self) -> HashMap<String, PruneMarker> {
        self.index.read().unwrap().markers.clone()
    }

    /// Whether a chunk is stored (per the index loaded so far) in a pack that no prune marker
    /// holds and no damage record names: a new snapshot may reuse it.
    pub fn contains(&self, id: &ObjectId) -> bool {
        let state = self.index.read().unwrap();
        state
            .blobs
            .get(id)
            .is_some_and(|location| !state.avoided(&location.pack))
    }

    /// The packs damage records name (loaded by the last refresh).
    pub fn damaged_packs(&self) -> HashSet<ObjectId> {
        self.index.read().unwrap().damaged.clone()
    }

    /// Record damaged packs (create-only): no snapshot reuses them from now on, here and in
    /// every process that refreshes its index. Packs already recorded are left out; returns
    /// the packs newly recorded.
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn record_damage(
        &self,
        packs: &[ObjectId],
        findings: Vec<String>,
    ) -> Result<Vec<ObjectId>> {
        let known = self.damaged_packs();
        let mut new: Vec<ObjectId> = packs
            .iter()
            .filter(|p| !known.contains(p))
            .copied()
            .collect();
        new.sort();
        new.dedup();
        if new.is_empty() {
            return Ok(new);
        }
        let record = DamageRecord {
            found_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            hostname: hostname(),
            packs: new.clone(),
            findings,
        };
        let path = paths::damage_record(&uuid::Uuid::new_v4());
        let bytes = self
            .codec
            .encode_object(format::damage::MAGIC, path.as_ref(), &record)?;
        block_on(self.backend.put_create(&path, Bytes::from(bytes)))?;
        // Refused for reuse at once; the next refresh reads the record as new and rebuilds
        // the index, so every chunk then prefers a copy outside the damaged packs.
        self.index
            .write()
            .unwrap()
            .damaged
            .extend(new.iter().copied());
        Ok(new)
    }

    /// Where a chunk is stored, if it is.
    pub fn locate(&self, id: &ObjectId) -> Option<BlobLocation> {
        self.index.read().unwrap().blobs.get(id)
    }

    /// Every pack the index knows, with its size.
    pub fn indexed_packs(&self) -> HashMap<ObjectId, u64> {
        self.index.read().unwrap().packs.clone()
    }

    /// Store a finished pack (step 1 of packs -> index -> manifest).
    pub async fn write_pack(&self, id: ObjectId, bytes: Vec<u8>) -> Result<()> {
        // Content-addressed: an existing object with this name holds these very bytes.
        self.backend
            .put_immutable(&pack_path(&id), Bytes::from(bytes))
            .await?;
        Ok(())
    }

    /// Store an index file (step 2) and make its chunks visible to this process.
    pub fn write_index(&self, file: &IndexFile) -> Result<()> {
        if file.packs.is_empty() {
            return Ok(());
        }
        let (path, size) = block_on(self.store_index_sized(file))?;
        let mut state = self.index.write().unwrap();
        Self::add_to_state(&mut state, file);
        if size < SMALL_INDEX_BYTES {
            state.small.insert(path.to_string());
        }
        state.loaded.insert(path.to_string());
        Ok(())
    }

    /// How many of the index objects this process knows are small enough to be merged by a
    /// compaction (see [`crate::compact`]).
    pub fn small_index_objects(&self) -> usize {
        self.index.read().unwrap().small.len()
    }

    /// How many index objects this process has loaded (as of its last refresh or write).
    pub fn index_objects(&self) -> usize {
        self.index.read().unwrap().loaded.len()
    }

    /// Write an index object create-only under the hash of its bytes. An object already there
    /// holds these very bytes, unless it is damaged (content addressing meets damage: a
    /// damaged object must never stand for a new one under its own name): then the index is
    /// encoded again at another compression level, which gives it other bytes and another name.
    pub(crate) async fn store_index(&self, file: &IndexFile) -> Result<Path> {
        Ok(self.store_index_sized(file).await?.0)
    }

    /// [`Repository::store_index`], with the stored object's size. The object is kept in this
    /// host's cache too: it never changes, and other processes here need not fetch it.
    async fn store_index_sized(&self, file: &IndexFile) -> Result<(Path, u64)> {
        for level in 0..8 {
            let bytes = self
                .codec
                .encode_object_at(format::index::MAGIC, "", file, 3 + level)?;
            let path = paths::index(&ObjectId::of(&bytes));
            let stored = match self
                .backend
                .put_create(&path, Bytes::from(bytes.clone()))
                .await?
            {
                Created::New => true,
                Created::AlreadyExisted => {
                    self.backend.get_bounded(&path).await?.as_deref() == Some(&bytes[..])
                }
            };
            if stored {
                if let Some(cache) = &self.cache {
                    cache.keep_index_object(path.filename().unwrap_or_default(), &bytes);
                }
                return Ok((path, bytes.len() as u64));
            }
        }
        Err(Error::integrity(
            "index objects with this content are all damaged; run `lightrag-backup repair`",
        ))
    }

    /// Check, right before a manifest is written, that everything it references will still be
    /// there: each chunk is in the index (a prune's sweep takes a pack out of the index before
    /// it deletes the pack), and none sits in a pack that a prune marked after the snapshot
    /// started and may sweep before this commit lands (a marker past half its grace period;
    /// a marker is deleted only after its packs). `markers_at_start` are the markers the
    /// snapshot already avoided. It reads the index objects and markers written since the
    /// last refresh, never a listing of `data/`: a commit costs the same whatever the
    /// repository's size.
    ///
    /// # Errors
    /// `Conflict` (retryable) when a concurrent prune took or is about to take such data.
    pub fn check_commit(
        &self,
        manifest: &SnapshotManifest,
        markers_at_start: &HashSet<String>,
    ) -> Result<()> {
        self.refresh_index()?;
        let now = chrono::Utc::now();
        let state = self.index.read().unwrap();
        let mut risky: HashSet<ObjectId> = HashSet::new();
        for (path, marker) in &state.markers {
            if markers_at_start.contains(path) {
                continue;
            }
            let created = chrono::DateTime::parse_from_rfc3339(&marker.created_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or(now);
            let half_grace = chrono::Duration::seconds((marker.grace_seconds / 2) as i64);
            if now >= created + half_grace {
                risky.extend(marker.packs.iter().copied());
            }
        }
        for chunk in manifest.files.iter().flat_map(|f| &f.chunks) {
            let location = state.blobs.get(&chunk.id).ok_or_else(|| Error::Conflict {
                message: format!(
                    "chunk {} of this snapshot left the repository index while it was taken (a concurrent prune); nothing was committed, run the snapshot again",
                    chunk.id
                ),
            })?;
            if risky.contains(&location.pack) {
                return Err(Error::Conflict {
                    message: format!(
                        "a prune running since this snapshot started is about to delete pack {} that it reuses; nothing was committed, run the snapshot again",
                        location.pack
                    ),
                });
            }
        }
        Ok(())
    }

    /// Commit a snapshot: check that everything it references will still be there
    /// ([`Repository::check_commit`]), write its manifest, and check again. A prune whose
    /// sweep read the manifests just before this one was written may have taken its data in
    /// between (with grace 0, or a marker that ripened meanwhile): the second check sees that
    /// (a chunk gone from the index, or a marker past half its grace) and the manifest is
    /// deleted again, so no committed snapshot ever points at deleted data, whatever the
    /// prune's grace period.
    ///
    /// # Errors
    /// `Conflict` (retryable; nothing committed) when a concurrent prune took or is about to
    /// take data the snapshot references.
    pub fn commit_snapshot(
        &self,
        manifest: &SnapshotManifest,
        markers_at_start: &HashSet<String>,
    ) -> Result<()> {
        self.check_commit(manifest, markers_at_start)?;
        let hook = self.between_check_and_write.lock().unwrap().clone();
        if let Some(hook) = hook {
            hook();
        }
        self.write_snapshot(manifest)?;
        if let Err(error) = self.check_commit(manifest, markers_at_start) {
            let path = paths::snapshot(&manifest.graph_id, &manifest.snapshot_id);
            block_on(self.backend.delete(&path))?;
            return Err(error);
        }
        Ok(())
    }

    /// Test hook: `hook` runs in every [`Repository::commit_snapshot`] between its first
    /// check and the manifest write (`tests/prune.rs` runs a prune in exactly that window).
    #[doc(hidden)]
    pub fn set_between_check_and_write(&self, hook: Option<CommitHook>) {
        *self.between_check_and_write.lock().unwrap() = hook;
    }

    /// Store a snapshot manifest (step 3): from now on the snapshot exists.
    pub fn write_snapshot(&self, manifest: &SnapshotManifest) -> Result<()> {
        validate_graph_id(&manifest.graph_id)?;
        validate_snapshot_id(&manifest.snapshot_id)?;
        let path = paths::snapshot(&manifest.graph_id, &manifest.snapshot_id);
        let bytes = self.graph_codec(&manifest.graph_id)?.encode_object(
            format::manifest::MAGIC,
            path.as_ref(),
            manifest,
        )?;
        match block_on(self.backend.put_create(&path, Bytes::from(bytes)))? {
            Created::New => Ok(()),
            Created::AlreadyExisted => Err(Error::invalid(format!(
                "snapshot {} already exists",
                manifest.snapshot_id
            ))),
        }
    }

    /// Read one chunk by id, checking its hash.
    ///
    /// # Errors
    /// `Integrity` when the chunk is not indexed, its pack is missing, or the bytes do not
    /// match the id.
    pub async fn read_chunk(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let location = self.locate(id).ok_or_else(|| {
            Error::integrity(format!("chunk {id} is not in the repository index"))
        })?;
        self.read_blob(&location).await
    }

    /// Read and open one blob at a known location.
    pub async fn read_blob(&self, location: &BlobLocation) -> Result<Vec<u8>> {
        let entry = location.entry;
        let range = entry.offset as u64..entry.offset as u64 + entry.length as u64;
        let compressed = self
            .backend
            .get_range(&pack_path(&location.pack), range)
            .await?;
        self.codec
            .open_chunk(&entry, &compressed)
            .map_err(|e| match e {
                Error::Integrity { message } => {
                    Error::integrity(format!("{message} (in pack {})", location.pack))
                }
                other => other,
            })
    }

    /// Ids of the graphs that have at least one snapshot.
    pub fn list_graphs(&self) -> Result<Vec<String>> {
        if self.backend.is_remote() {
            // The graphs' folders, not every manifest: a listing that costs the same at 100
            // and at 10,000 snapshots (an object store has no empty folder).
            let mut graphs = block_on(self.backend.list_folders(paths::SNAPSHOTS))?;
            graphs.sort();
            return Ok(graphs);
        }
        let mut graphs: Vec<String> = self
            .list_snapshot_names(None)?
            .into_iter()
            .map(|(graph, _)| graph)
            .collect();
        graphs.dedup();
        Ok(graphs)
    }

    /// (graph id, snapshot id) of every manifest, optionally of one graph, sorted.
    pub fn list_snapshot_names(&self, graph_id: Option<&str>) -> Result<Vec<(String, String)>> {
        let prefix = match graph_id {
            Some(graph) => {
                validate_graph_id(graph)?;
                paths::snapshots(Some(graph))
            }
            None => paths::snapshots(None),
        };
        let mut names: Vec<(String, String)> = self
            .backend
            .list_blocking(&prefix)?
            .into_iter()
            .filter_map(|(path, _)| {
                let parts: Vec<&str> = path.as_ref().split('/').collect();
                (parts.len() == 3).then(|| (parts[1].to_string(), parts[2].to_string()))
            })
            .collect();
        names.sort();
        if let Some(cache) = &self.cache {
            // What is not listed any more (forgotten, moved) is never read: its entry goes.
            cache.forget_manifests_but(graph_id, &names.iter().cloned().collect());
        }
        Ok(names)
    }

    /// The most recently written snapshot of a graph that `wanted` accepts, reading manifests
    /// newest first (by the time the store wrote them) and stopping at the first accepted:
    /// usually one read, however many snapshots the graph has.
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn newest_snapshot_where(
        &self,
        graph_id: &str,
        wanted: impl Fn(&SnapshotManifest) -> bool,
    ) -> Result<Option<SnapshotManifest>> {
        validate_graph_id(graph_id)?;
        let mut listed = block_on(
            self.backend
                .list_with_times(&paths::snapshots(Some(graph_id))),
        )?;
        listed.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| b.0.cmp(&a.0)));
        block_on(async {
            for (path, _, _) in listed {
                let Some(id) = path.filename() else { continue };
                match self.read_manifest(graph_id, id).await {
                    Ok(manifest) if wanted(&manifest) => return Ok(Some(manifest)),
                    Ok(_) => {}
                    // Forgotten while we looked: not the newest any more.
                    Err(Error::SnapshotNotFound { .. }) => {}
                    // Unreadable: skipped, as every listing does (verify names it).
                    Err(error) if error.is_damage() => {
                        warn_once(paths::snapshot(graph_id, id).as_ref(), &error);
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(None)
        })
    }

    /// Every readable snapshot of a graph, oldest first. An unreadable manifest is left out
    /// (and logged): [`Repository::scan_snapshots`] names it.
    pub fn list_snapshots(&self, graph_id: &str) -> Result<Vec<SnapshotManifest>> {
        Ok(self.scan_snapshots(Some(graph_id))?.manifests)
    }

    /// Every readable snapshot of every graph (see [`Repository::list_snapshots`]).
    pub fn all_snapshots(&self) -> Result<Vec<SnapshotManifest>> {
        Ok(self.scan_snapshots(None)?.manifests)
    }

    /// Read the manifests of one graph (or of every graph): the readable ones, oldest first
    /// within a graph, and the unreadable ones named with why. One damaged manifest never
    /// hides the others; a manifest deleted while listing is skipped.
    ///
    /// # Errors
    /// `Backend` when the store fails (a damaged object is not an error here).
    pub fn scan_snapshots(&self, graph_id: Option<&str>) -> Result<SnapshotScan> {
        let names = self.list_snapshot_names(graph_id)?;
        let mut scan = block_on(async {
            let mut scan = SnapshotScan::default();
            // Each graph's key state first (its key or shred record, two reads the graph's
            // manifests then share): reads in flight together would each fetch it.
            let mut graphs: Vec<&str> = names.iter().map(|(graph, _)| graph.as_str()).collect();
            graphs.dedup();
            for graph in graphs {
                // A failure here shows again, and is reported, at the graph's manifests.
                let _ = self.graph_codec_async(graph, false).await;
            }
            // Several reads in flight (in order): a new host's first listing of 10,000
            // snapshots waits on the store's latency once per batch, not once per manifest.
            let reads = futures::stream::iter(names.into_iter().map(|(graph, id)| async move {
                let read = self.read_manifest(&graph, &id).await;
                (graph, id, read)
            }))
            .buffered(READS_IN_FLIGHT);
            futures::pin_mut!(reads);
            while let Some((graph, id, read)) = reads.next().await {
                match read {
                    Ok(manifest) => scan.manifests.push(manifest),
                    Err(Error::SnapshotNotFound { .. }) => {}
                    // Left by an interrupted shred: unreadable by design, deleted by prune.
                    Err(Error::GraphShredded { .. }) => {}
                    Err(error) if error.is_damage() => {
                        let path = paths::snapshot(&graph, &id).to_string();
                        warn_once(&path, &error);
                        scan.unreadable.push(UnreadableSnapshot {
                            path,
                            graph_id: graph,
                            snapshot_id: id,
                            reason: error.detail(),
                        });
                    }
                    Err(other) => return Err(other),
                }
            }
            Ok::<_, Error>(scan)
        })?;
        scan.manifests.sort_by(|a, b| {
            (&a.graph_id, &a.time, &a.snapshot_id).cmp(&(&b.graph_id, &b.time, &b.snapshot_id))
        });
        Ok(scan)
    }

    /// The objects the last index refresh could not read (index objects, prune markers, damage
    /// records), by path, with why: they are skipped, never fatal; verify reports them and
    /// repair sets them aside.
    pub fn unreadable_index_objects(&self) -> Vec<(String, String)> {
        let state = self.index.read().unwrap();
        let mut out: Vec<(String, String)> = state
            .unreadable
            .iter()
            .map(|(path, why)| (path.clone(), why.clone()))
            .collect();
        out.sort();
        out
    }

    /// Move an unreadable object out of the way: its bytes are kept under
    /// `quarantine/<its path>` (for a post-mortem, never read again) and the object is deleted,
    /// so every operation that lists its folder goes on without it. Returns the quarantine path.
    ///
    /// # Errors
    /// `Backend` when the store fails (the object is then left where it was).
    pub fn quarantine(&self, path: &str) -> Result<String> {
        let from = Path::from(path);
        let to = Path::from(format!("{}/{path}", paths::QUARANTINE));
        block_on(async {
            if let Some(bytes) = self.backend.get_opt(&from).await? {
                self.backend.put_immutable(&to, bytes).await?;
                self.backend.delete(&from).await?;
            }
            Ok::<_, Error>(())
        })?;
        self.index.write().unwrap().unreadable.remove(path);
        Ok(to.to_string())
    }

    /// A listed manifest: from this host's cache when it holds it whole, else fetched (and
    /// kept there). One that came from the cache and does not decode is fetched again.
    async fn read_manifest(&self, graph_id: &str, snapshot_id: &str) -> Result<SnapshotManifest> {
        if let Some(cache) = &self.cache {
            if let Some(bytes) = cache.manifest(graph_id, snapshot_id) {
                match self.decode_manifest(graph_id, snapshot_id, &bytes).await {
                    Ok(manifest) => return Ok(manifest),
                    Err(error) if error.is_damage() => cache.forget_manifest(graph_id, snapshot_id),
                    Err(error) => return Err(error),
                }
            }
        }
        let path = paths::snapshot(graph_id, snapshot_id);
        let bytes =
            self.backend
                .get_bounded(&path)
                .await?
                .ok_or_else(|| Error::SnapshotNotFound {
                    graph_id: graph_id.to_string(),
                    snapshot_id: snapshot_id.to_string(),
                    hint: String::new(),
                })?;
        let manifest = self.decode_manifest(graph_id, snapshot_id, &bytes).await?;
        if let Some(cache) = &self.cache {
            cache.keep_manifest(graph_id, snapshot_id, &bytes);
        }
        Ok(manifest)
    }

    async fn decode_manifest(
        &self,
        graph_id: &str,
        snapshot_id: &str,
        bytes: &[u8],
    ) -> Result<SnapshotManifest> {
        let path = paths::snapshot(graph_id, snapshot_id);
        let decode = |codec: &Codec| -> Result<SnapshotManifest> {
            codec.decode_object(format::manifest::MAGIC, path.as_ref(), bytes, path.as_ref())
        };
        let codec = self.graph_codec_async(graph_id, false).await?;
        let manifest = match decode(&codec) {
            // Under the master key as far as this process knew: another process may have given
            // the graph its key since (at its first snapshot), or shredded it.
            Err(error) if error.is_damage() && codec.is_encrypted() && codec.key_tag() == 0 => {
                let again = self.graph_codec_async(graph_id, true).await?;
                if again.key_tag() == 0 {
                    return Err(error);
                }
                decode(&again)?
            }
            other => other?,
        };
        if manifest.graph_id != graph_id || manifest.snapshot_id != snapshot_id {
            return Err(Error::integrity(format!(
                "manifest {path} names another snapshot ({}/{})",
                manifest.graph_id, manifest.snapshot_id
            )));
        }
        Ok(manifest)
    }

    /// Resolve a snapshot id (or a unique prefix of one, or `latest`, the graph's newest
    /// snapshot that is not tagged `diverged`) of a graph to its full id.
    ///
    /// # Errors
    /// `SnapshotNotFound` (saying so when the id belongs to another graph, or when `latest`
    /// finds a graph without snapshots); `AmbiguousSnapshotId` when a prefix matches several
    /// (naming them).
    pub fn resolve_snapshot_id(&self, graph_id: &str, snapshot_ref: &str) -> Result<String> {
        validate_graph_id(graph_id)?;
        if snapshot_ref.eq_ignore_ascii_case(LATEST) {
            // The newest snapshot, unless a push replaced it as the head (`diverged`).
            let mut all = self.list_snapshots(graph_id)?;
            let newest = match all
                .iter()
                .rposition(|m| !m.tags.iter().any(|t| t == format::DIVERGED_TAG))
            {
                Some(at) => Some(all.swap_remove(at)),
                None => all.pop(),
            };
            return match newest {
                Some(newest) => Ok(newest.snapshot_id),
                None => Err(self
                    .shredded_or(graph_id)?
                    .unwrap_or(Error::SnapshotNotFound {
                        graph_id: graph_id.to_string(),
                        snapshot_id: LATEST.to_string(),
                        hint: " (the graph has no snapshots)".to_string(),
                    })),
            };
        }
        validate_snapshot_ref(graph_id, snapshot_ref)?;
        let snapshot_ref = snapshot_ref.to_ascii_lowercase();
        // The graph's own snapshots first: every graph's are listed only to say, when the
        // id is not the graph's, whose it is (a lookup costs the same whatever the history).
        let own_names = self.list_snapshot_names(Some(graph_id))?;
        let own = matching(&own_names, &snapshot_ref);
        match own.len() {
            1 => Ok(own[0].1.clone()),
            0 => {
                if let Some(shredded) = self.shredded_or(graph_id)? {
                    return Err(shredded);
                }
                let names = self.list_snapshot_names(None)?;
                let hint = match matching(&names, &snapshot_ref).first() {
                    Some((other, _)) => format!(" (it belongs to graph {other:?})"),
                    None => String::new(),
                };
                Err(Error::SnapshotNotFound {
                    graph_id: graph_id.to_string(),
                    snapshot_id: snapshot_ref,
                    hint,
                })
            }
            count => {
                let mut candidates: Vec<String> = own.iter().map(|(_, id)| id.clone()).collect();
                candidates.sort();
                candidates.truncate(10);
                Err(Error::AmbiguousSnapshotId {
                    graph_id: graph_id.to_string(),
                    prefix: snapshot_ref,
                    count,
                    candidates: candidates.join(", "),
                })
            }
        }
    }

    /// The codec of a graph's chunks and manifests: its own key's, when it has one (see
    /// `graph_keys.rs`), the repository's otherwise.
    ///
    /// # Errors
    /// `GraphShredded` when the graph was shredded; `Integrity` for a damaged key object;
    /// `Backend` when the store fails.
    pub fn graph_codec(&self, graph_id: &str) -> Result<Codec> {
        block_on(self.graph_codec_async(graph_id, false))
    }

    /// [`Repository::graph_codec`]; `fresh` reads the key objects again instead of trusting
    /// what this process read before.
    pub(crate) async fn graph_codec_async(&self, graph_id: &str, fresh: bool) -> Result<Codec> {
        self.graph_keys
            .codec_of(&self.backend, &self.codec, graph_id, fresh)
            .await
    }

    /// `GraphShredded` when the graph was shredded (why none of its snapshots is found).
    fn shredded_or(&self, graph_id: &str) -> Result<Option<Error>> {
        Ok(match self.graph_codec(graph_id) {
            Err(error @ Error::GraphShredded { .. }) => Some(error),
            Err(error) if error.is_damage() => None,
            Err(error) => return Err(error),
            Ok(_) => None,
        })
    }

    /// Load the manifest of a graph's snapshot, by id or unique prefix.
    pub fn load_snapshot(&self, graph_id: &str, snapshot_ref: &str) -> Result<SnapshotManifest> {
        let snapshot_id = self.resolve_snapshot_id(graph_id, snapshot_ref)?;
        block_on(self.read_manifest(graph_id, &snapshot_id))
    }

    /// Find which graph a snapshot id belongs to.
    pub fn find_snapshot_graph(&self, snapshot_id: &str) -> Result<Option<String>> {
        Ok(self
            .list_snapshot_names(None)?
            .into_iter()
            .find(|(_, id)| id == snapshot_id)
            .map(|(graph, _)| graph))
    }

    /// Forget a snapshot: drop its manifest. Its chunks stay until a prune finds them unused.
    ///
    /// # Errors
    /// `SnapshotNotFound` as [`Repository::resolve_snapshot_id`] reports it.
    pub fn delete_snapshot(&self, graph_id: &str, snapshot_ref: &str) -> Result<String> {
        let snapshot_id = self.resolve_snapshot_id(graph_id, snapshot_ref)?;
        block_on(
            self.backend
                .delete(&paths::snapshot(graph_id, &snapshot_id)),
        )?;
        Ok(snapshot_id)
    }
}

/// Log an unreadable object once per process (every listing meets it again; the operator
/// needs to hear of it, not to read it on every line).
fn warn_once(path: &str, error: &Error) {
    static WARNED: std::sync::Mutex<Option<HashSet<String>>> = std::sync::Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(path.to_string())
    {
        log::warn!("{path} cannot be read and is skipped: {}", error.detail());
    }
}

/// This machine's host name, for snapshot manifests.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
