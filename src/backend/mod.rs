//! Opening object stores by URL, and the few object operations the repository needs, with
//! errors mapped into [`Error`].
//!
//! Backends compose by wrapping `Arc<dyn ObjectStore>`; nothing else in the crate knows which
//! kind of store it talks to.

use crate::error::{BackendFailure, Error, Result};
use crate::runtime::block_on;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{
    path::Path, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};
use std::sync::Arc;

mod create;
mod direct;
mod open;
pub use open::Options;

/// Whether a failed listing says the bucket or container itself is missing (S3 reports it as a
/// 404 with `NoSuchBucket`, which object_store passes on as a generic error for listings).
fn is_missing_location(error: &object_store::Error) -> bool {
    let text = error.to_string();
    ["NoSuchBucket", "ContainerNotFound", "status code: 404"]
        .iter()
        .any(|marker| text.contains(marker))
}

/// Parts of a multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// Which kind of store, with what an operator should check when it refuses access.
#[derive(Clone, Debug, Default)]
pub(crate) enum Kind {
    #[default]
    Memory,
    /// A folder on a local (or mounted) file system: objects are files under `root`.
    Local {
        root: std::path::PathBuf,
        /// The folder did not exist: opening created it (and a refused open removes it).
        created: bool,
    },
    S3 {
        bucket: String,
        hint: String,
        creator: create::Creator,
        /// Set (to the instance metadata endpoint) when no other credential source was found.
        metadata_only: Option<String>,
    },
    Azure {
        container: String,
        hint: String,
        creator: create::Creator,
    },
    Gcs {
        bucket: String,
        hint: String,
    },
}

/// Secret values (keys, tokens, connection strings) that must never appear in a message.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub(crate) fn add(&mut self, secret: &str) {
        // Short values ("true", a region) are not secrets and would garble messages.
        if secret.len() >= 6 && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            // Longest first, so a secret containing another is replaced whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }
}

/// An object store plus a human-readable location for messages.
#[derive(Clone, Debug)]
pub struct Backend {
    pub(crate) store: Arc<dyn ObjectStore>,
    location: String,
    kind: Kind,
    /// (threshold, part size) for multipart uploads of content-addressed objects.
    multipart: Option<(usize, usize)>,
    redactor: Arc<Redactor>,
    /// The requests this backend and its clones made.
    requests: Arc<Requests>,
}

/// The requests a backend made, by kind: what an operation costs on an object store, where
/// each one is billed and waits for the network.
#[derive(Debug, Default)]
struct Requests {
    gets: std::sync::atomic::AtomicU64,
    heads: std::sync::atomic::AtomicU64,
    lists: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    puts: std::sync::atomic::AtomicU64,
    deletes: std::sync::atomic::AtomicU64,
}

impl Requests {
    fn count(counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn list(&self, prefix: &str) {
        // By the prefix's first segment ("index", "data", "snapshots"): what grows with what.
        let top = prefix.split('/').next().unwrap_or_default().to_string();
        *self.lists.lock().unwrap().entry(top).or_default() += 1;
    }
}

/// How many requests of each kind a backend made (see [`Backend::requests`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Whole or ranged reads of an object (a local pread counts as one).
    pub gets: u64,
    pub heads: u64,
    /// Listings, by the first segment of their prefix.
    pub lists: std::collections::BTreeMap<String, u64>,
    pub puts: u64,
    pub deletes: u64,
}

impl RequestCounts {
    /// Every listing, whatever its prefix.
    pub fn lists_total(&self) -> u64 {
        self.lists.values().sum()
    }

    /// Every request.
    pub fn total(&self) -> u64 {
        self.gets + self.heads + self.lists_total() + self.puts + self.deletes
    }

    /// The requests made since `earlier` (counts of the same backend).
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            gets: self.gets - earlier.gets,
            heads: self.heads - earlier.heads,
            lists: self
                .lists
                .iter()
                .map(|(prefix, n)| {
                    (
                        prefix.clone(),
                        n - earlier.lists.get(prefix).copied().unwrap_or(0),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
            puts: self.puts - earlier.puts,
            deletes: self.deletes - earlier.deletes,
        }
    }
}

/// An object the repository's index or manifests name is not there.
pub(crate) fn missing(path: &Path) -> Error {
    Error::integrity(format!("object {path} is missing from the repository"))
}

/// The largest object read whole (everything but packs, which are read in ranges): the
/// format's largest decoded manifest or index (`format::limits::MAX_MANIFEST`, 256 MiB); a
/// stored object is compressed, so smaller still.
pub const MAX_WHOLE_OBJECT: u64 = 256 << 20;

/// What a create-only put found.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExisted,
}

impl Backend {
    /// Wrap an existing store (for tests and embedding).
    pub fn new(store: Arc<dyn ObjectStore>, location: impl Into<String>) -> Self {
        Backend {
            store,
            location: location.into(),
            kind: Kind::Memory,
            multipart: None,
            redactor: Arc::default(),
            requests: Arc::default(),
        }
    }

    /// How many requests of each kind this backend (and every clone of it) made so far.
    pub fn requests(&self) -> RequestCounts {
        use std::sync::atomic::Ordering::Relaxed;
        let r = &self.requests;
        RequestCounts {
            gets: r.gets.load(Relaxed),
            heads: r.heads.load(Relaxed),
            lists: r.lists.lock().unwrap().clone(),
            puts: r.puts.load(Relaxed),
            deletes: r.deletes.load(Relaxed),
        }
    }

    /// Open a store from a URL with default settings; see [`Backend::open_with`].
    ///
    /// # Errors
    /// As [`Backend::open_with`].
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &Options::new())
    }

    /// Open a store from a URL: `s3://bucket/prefix`, `az://container/prefix`,
    /// `gs://bucket/prefix`, `file:///abs/path`, a bare local path, or `memory://`.
    ///
    /// Cloud stores read their SDK's usual environment (`AWS_*` and AWS profiles, `AZURE_*`
    /// and `AZURE_STORAGE_CONNECTION_STRING`, `GOOGLE_*`); `options` override it with
    /// object_store's configuration keys (`endpoint`, `region`, `access_key_id`,
    /// `account_name`, ...) plus `max_retries`, `retry_timeout`, `backoff_initial`,
    /// `backoff_max`, `multipart_threshold`, `multipart_part_size`, `profile` and
    /// `connection_string`. Opening does not contact the store.
    ///
    /// # Errors
    /// `InvalidInput` for an unsupported scheme, a malformed URL, an unknown option or an
    /// incomplete cloud configuration; `Io` when a local folder cannot be created.
    pub fn open_with(url: &str, options: &Options) -> Result<Self> {
        if url.trim().is_empty() {
            return Err(Error::invalid("repository location is empty"));
        }
        if let Some(result) = open::open_cloud(url, options) {
            return result;
        }
        open::refuse_options(url, options)?;
        if url.starts_with("memory://") {
            return Ok(Backend::new(
                Arc::new(object_store::memory::InMemory::new()),
                url,
            ));
        }
        let local_path = if let Some(rest) = url.strip_prefix("file://") {
            let parsed = url::Url::parse(url)
                .map_err(|e| Error::invalid(format!("bad file URL {url:?}: {e}")))?;
            parsed.to_file_path().map_err(|_| {
                Error::invalid(format!(
                    "bad file URL {url:?} (path {rest:?} must be absolute)"
                ))
            })?
        } else if url.contains("://") {
            let scheme = url.split("://").next().unwrap_or_default();
            return Err(Error::invalid(format!(
                "unsupported repository URL scheme {scheme:?} in {url:?} (supported: s3://, az://, gs://, file://, a local path, memory://)"
            )));
        } else {
            std::path::PathBuf::from(url)
        };
        let local_path =
            std::path::absolute(&local_path).map_err(|e| Error::io("resolve", &local_path, e))?;
        if local_path.exists() && !local_path.is_dir() {
            return Err(Error::invalid(format!(
                "{} is a file, not a lightrag-backup repository (a local repository is a folder)",
                local_path.display()
            )));
        }
        let created = !local_path.exists();
        // A folder made here is its owner's only (0700) from the start, whatever the umask.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&local_path)
            .map_err(|e| Error::io("create folder", &local_path, e))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&local_path)
            .map_err(|e| Error::Backend {
                operation: "open",
                path: local_path.display().to_string(),
                message: e.to_string(),
                failure: BackendFailure::Other,
            })?
            .with_automatic_cleanup(true);
        let mut backend = Backend::new(Arc::new(store), local_path.display().to_string());
        backend.kind = Kind::Local {
            root: local_path,
            created,
        };
        Ok(backend)
    }

    /// Whether the store is reached over the network (requests have latency worth hiding).
    pub fn is_remote(&self) -> bool {
        matches!(
            self.kind,
            Kind::S3 { .. } | Kind::Azure { .. } | Kind::Gcs { .. }
        )
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Write an object only if none exists at `path`.
    ///
    /// # Errors
    /// `Backend` when the store fails; an existing object is reported as
    /// [`Created::AlreadyExisted`], not as an error.
    pub async fn put_create(&self, path: &Path, data: Bytes) -> Result<Created> {
        Requests::count(&self.requests.puts);
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from_bytes(data), options)
            .await
        {
            Ok(_) => {
                self.restrict(path);
                Ok(Created::New)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::AlreadyExisted),
            Err(source) => Err(self.error("write", path, source)),
        }
    }

    /// Write an object, replacing any at `path` (only for small records whose last writer
    /// wins by design, such as the lease's member records).
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub async fn put_overwrite(&self, path: &Path, data: Bytes) -> Result<()> {
        Requests::count(&self.requests.puts);
        self.store
            .put_opts(path, PutPayload::from_bytes(data), PutOptions::default())
            .await
            .map(|_| self.restrict(path))
            .map_err(|source| self.error("write", path, source))
    }

    /// Make a local object readable by its owner only (0600, its folders 0700), whatever the
    /// umask, as restic does: a repository holds every graph's text, and other local users
    /// read nothing of it. Other stores have no modes. Best effort: the repository's root
    /// folder is 0700 already, which alone keeps others out.
    fn restrict(&self, path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let Kind::Local { root, .. } = &self.kind else {
            return;
        };
        let file = root.join(path.as_ref());
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
        let mut dir = file.parent();
        while let Some(folder) = dir.filter(|d| d.starts_with(root) && *d != root.as_path()) {
            match std::fs::metadata(folder) {
                Ok(meta) if meta.permissions().mode() & 0o777 != 0o700 => {
                    let _ =
                        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700));
                }
                _ => break, // already restricted, and so are the folders above it
            }
            dir = folder.parent();
        }
    }

    /// Make a local repository's root folder its owner's only (0700): called when a
    /// repository is created there.
    pub(crate) fn restrict_root(&self) {
        use std::os::unix::fs::PermissionsExt;
        if let Kind::Local { root, .. } = &self.kind {
            let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700));
        }
    }

    /// Write a content-addressed object (its name is the hash of `data`): create-only, and on
    /// cloud stores a large one uploads as a multipart upload with parts in parallel, each
    /// retried on its own. A multipart upload has no create-only mode, so the object is looked
    /// up first; a writer racing past that check writes the very same bytes.
    ///
    /// # Errors
    /// `Backend` when the store fails; an incomplete upload is aborted and leaves no object.
    pub async fn put_immutable(&self, path: &Path, data: Bytes) -> Result<Created> {
        if let Kind::Local { root, .. } = &self.kind {
            if data.len() >= direct::MIN_SIZE {
                if let Some(created) = self.put_direct(root, path, data.clone()).await? {
                    return Ok(created);
                }
            }
        }
        let Some((threshold, part_size)) = self.multipart else {
            return self.put_create(path, data).await;
        };
        if data.len() < threshold {
            return self.put_create(path, data).await;
        }
        Requests::count(&self.requests.heads);
        match self.store.head(path).await {
            Ok(_) => return Ok(Created::AlreadyExisted),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => return Err(self.error("check", path, source)),
        }
        Requests::count(&self.requests.puts);
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|source| self.error("start upload of", path, source))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let mut rest = data;
        while !rest.is_empty() {
            if let Err(source) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(self.error("upload", path, source));
            }
            let take = rest.len().min(part_size);
            writer.put(rest.split_to(take));
        }
        writer
            .finish()
            .await
            .map_err(|source| self.error("upload", path, source))?;
        Ok(Created::New)
    }

    /// [`Backend::put_immutable`] of a large local object, past the page cache (see
    /// [`direct`]). `Ok(None)` when the file system has no direct I/O.
    async fn put_direct(
        &self,
        root: &std::path::Path,
        path: &Path,
        data: Bytes,
    ) -> Result<Option<Created>> {
        let file = root.join(path.as_ref());
        let dest = file.clone();
        let written = tokio::task::spawn_blocking(move || direct::write_new(&dest, &data))
            .await
            .map_err(|e| Error::integrity(format!("write task of {path} failed: {e}")))?
            .map_err(|e| Error::io("write", &file, e))?;
        let Some(outcome) = written else {
            return Ok(None);
        };
        Requests::count(&self.requests.puts);
        self.restrict(path);
        Ok(Some(match outcome {
            direct::Outcome::Created => Created::New,
            direct::Outcome::AlreadyExisted => Created::AlreadyExisted,
        }))
    }

    /// Read a whole object. `Ok(None)` when it does not exist.
    pub async fn get_opt(&self, path: &Path) -> Result<Option<Bytes>> {
        self.get_at_most(path, u64::MAX).await
    }

    /// Read a whole metadata object (a manifest, an index, a recovery point, ...), refusing
    /// one larger than any the format writes ([`MAX_WHOLE_OBJECT`]) before its bytes
    /// are read: its size comes with the answer's head.
    ///
    /// # Errors
    /// `Integrity` for an object over the limit (a damaged or hostile one); `Backend` when
    /// the store fails.
    pub async fn get_bounded(&self, path: &Path) -> Result<Option<Bytes>> {
        self.get_at_most(path, MAX_WHOLE_OBJECT).await
    }

    /// [`Backend::get_bounded`] with a tighter `limit` (bytes), for objects the format keeps small.
    pub async fn get_at_most(&self, path: &Path, limit: u64) -> Result<Option<Bytes>> {
        Requests::count(&self.requests.gets);
        match self.store.get(path).await {
            Ok(result) if result.meta.size > limit => Err(Error::integrity(format!(
                "{path} has {} bytes, more than any object of its kind ({limit} bytes)",
                result.meta.size
            ))),
            Ok(result) => result
                .bytes()
                .await
                .map(Some)
                .map_err(|source| self.error("read", path, source)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(self.error("read", path, source)),
        }
    }

    /// Read a whole object that must exist.
    pub async fn get(&self, path: &Path) -> Result<Bytes> {
        self.get_opt(path).await?.ok_or_else(|| missing(path))
    }

    /// Read a byte range of an object that must exist.
    pub async fn get_range(&self, path: &Path, range: std::ops::Range<u64>) -> Result<Bytes> {
        Requests::count(&self.requests.gets);
        match self.store.get_range(path, range).await {
            Ok(bytes) => Ok(bytes),
            Err(object_store::Error::NotFound { .. }) => Err(missing(path)),
            Err(source) => Err(self.error("read", path, source)),
        }
    }

    /// Read `range` of the object at `path` into `buf`, which is reused from call to call (no
    /// zero-fill, no fresh pages once it has grown). A local repository reads the file with
    /// `pread`, without the async runtime; other stores go through [`Backend::get_range`].
    ///
    /// # Errors
    /// `Integrity` when the object is missing or shorter than `range`; `Io`/`Backend` on other
    /// failures.
    pub fn read_range_into<'a>(
        &self,
        path: &Path,
        range: std::ops::Range<u64>,
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a mut [u8]> {
        let Kind::Local { root, .. } = &self.kind else {
            let bytes = block_on(self.get_range(path, range))?;
            buf.clear();
            buf.extend_from_slice(&bytes);
            return Ok(&mut buf[..]);
        };
        use std::os::unix::fs::FileExt;
        Requests::count(&self.requests.gets);
        let file_path = root.join(path.as_ref());
        let file = std::fs::File::open(&file_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => missing(path),
            _ => Error::io("read", &file_path, e),
        })?;
        let len = usize::try_from(range.end.saturating_sub(range.start))
            .map_err(|_| Error::integrity(format!("range {range:?} of {path} is too large")))?;
        if buf.len() < len {
            buf.resize(len, 0);
        }
        file.read_exact_at(&mut buf[..len], range.start)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Error::integrity(format!(
                    "object {path} is shorter than the index says (wanted bytes {range:?})"
                )),
                _ => Error::io("read", &file_path, e),
            })?;
        Ok(&mut buf[..len])
    }

    /// List every object under `prefix` as (path, size).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(Path, u64)>> {
        self.requests.list(prefix);
        let prefix_path = Path::from(prefix);
        self.store
            .list(Some(&prefix_path))
            .map_ok(|meta| (meta.location, meta.size))
            .try_collect()
            .await
            .map_err(|source| self.error("list", &prefix_path, source))
    }

    /// The size of the object at `path`, `None` when there is none (one HEAD request).
    pub async fn size_of(&self, path: &Path) -> Result<Option<u64>> {
        Requests::count(&self.requests.heads);
        match self.store.head(path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(self.error("check", path, source)),
        }
    }

    /// The names of the folders directly under `prefix` (one listing request per thousand
    /// of them on S3, whatever they hold). On a local repository an empty folder counts too.
    pub async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        self.requests.list(prefix);
        let prefix_path = Path::from(prefix);
        let listed = self
            .store
            .list_with_delimiter(Some(&prefix_path))
            .await
            .map_err(|source| self.error("list", &prefix_path, source))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|folder| folder.filename().map(str::to_string))
            .collect())
    }

    /// List every object under `prefix` as (path, size, last modified).
    pub async fn list_with_times(
        &self,
        prefix: &str,
    ) -> Result<Vec<(Path, u64, chrono::DateTime<chrono::Utc>)>> {
        self.requests.list(prefix);
        let prefix_path = Path::from(prefix);
        self.store
            .list(Some(&prefix_path))
            .map_ok(|meta| (meta.location, meta.size, meta.last_modified))
            .try_collect()
            .await
            .map_err(|source| self.error("list", &prefix_path, source))
    }

    /// Delete an object; deleting a missing object is not an error.
    pub async fn delete(&self, path: &Path) -> Result<()> {
        Requests::count(&self.requests.deletes);
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.error("delete", path, source)),
        }
    }

    /// Blocking form of [`Backend::list`].
    pub fn list_blocking(&self, prefix: &str) -> Result<Vec<(Path, u64)>> {
        block_on(self.list(prefix))
    }

    /// Check that the bucket or container exists and the credentials are accepted.
    ///
    /// # Errors
    /// `Backend` with [`BackendFailure::LocationNotFound`] or [`BackendFailure::Auth`], each
    /// naming what to check.
    pub async fn check_location(&self) -> Result<()> {
        if matches!(self.kind, Kind::Memory | Kind::Local { .. }) {
            return Ok(());
        }
        match self.store.list_with_delimiter(None).await {
            Ok(_) => Ok(()),
            Err(source) => Err(self.error("list", &Path::from(""), source)),
        }
    }

    /// Blocking form of [`Backend::check_location`].
    /// Remove the local folder that opening this backend created, if it is still empty: a
    /// location that holds no repository is left as it was found.
    pub fn remove_created_folder(&self) {
        if let Kind::Local {
            root,
            created: true,
        } = &self.kind
        {
            let _ = std::fs::remove_dir(root); // fails, harmlessly, unless empty
        }
    }

    pub fn check_location_blocking(&self) -> Result<()> {
        block_on(self.check_location())
    }

    fn error(&self, operation: &'static str, path: &Path, source: object_store::Error) -> Error {
        let failure = match &source {
            object_store::Error::NotFound { .. } => match self.kind {
                // Only a missing bucket/container makes a listing 404.
                Kind::S3 { .. } | Kind::Azure { .. } | Kind::Gcs { .. } if operation == "list" => {
                    BackendFailure::LocationNotFound
                }
                _ => BackendFailure::NotFound,
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => BackendFailure::Auth,
            object_store::Error::Generic { .. }
                if operation == "list" && is_missing_location(&source) =>
            {
                BackendFailure::LocationNotFound
            }
            // A 4xx other than those above is an answer, not an outage: retrying will not help.
            object_store::Error::Generic { .. }
                if source.to_string().contains("non-2xx status code: 4") =>
            {
                BackendFailure::Other
            }
            object_store::Error::InvalidPath { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => BackendFailure::Other,
            _ => BackendFailure::Transient,
        };
        let (what, hint) = match &self.kind {
            Kind::S3 { bucket, hint, .. } | Kind::Gcs { bucket, hint } => {
                (format!("bucket {bucket:?}"), hint.as_str())
            }
            Kind::Azure {
                container, hint, ..
            } => (format!("container {container:?}"), hint.as_str()),
            Kind::Memory | Kind::Local { .. } => (String::new(), ""),
        };
        let mut message = source.to_string();
        if let Kind::S3 {
            metadata_only: Some(endpoint),
            ..
        } = &self.kind
        {
            if message.contains(endpoint.trim_end_matches('/'))
                || message.contains("/latest/api/token")
            {
                return Error::Backend {
                    operation,
                    path: format!("{}/{}", self.location, path),
                    message: format!(
                        "no AWS credentials: looked in the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), \
                         the profile files (~/.aws/credentials, ~/.aws/config; AWS_PROFILE), web identity and container \
                         credentials, and instance metadata ({endpoint}, which did not answer); set credentials in one \
                         of them, or pass access_key_id / secret_access_key"
                    ),
                    failure: BackendFailure::Auth,
                };
            }
        }
        match failure {
            BackendFailure::LocationNotFound => {
                message = format!("the {what} does not exist ({message}); create it, or open the repository with create_bucket=True / --create-bucket");
            }
            BackendFailure::Auth => {
                message = format!("access denied ({message}); {hint}");
            }
            _ if !hint.is_empty() && failure == BackendFailure::Transient => {
                message = format!("{message} (retried; {hint})");
            }
            _ => {}
        }
        Error::Backend {
            operation,
            path: format!("{}/{}", self.location, path),
            message: self.redactor.redact(&message),
            failure,
        }
    }
}
