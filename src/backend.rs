//! Opening object stores by URL, and the few object operations the repository needs, with
//! errors mapped into [`Error`].
//!
//! Backends compose by wrapping `Arc<dyn ObjectStore>`; nothing else in the crate knows which
//! kind of store it talks to.

use crate::error::{Error, Result};
use crate::runtime::block_on;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{path::Path, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

/// An object store plus a human-readable location for messages.
#[derive(Clone, Debug)]
pub struct Backend {
    pub(crate) store: Arc<dyn ObjectStore>,
    location: String,
}

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
        }
    }

    /// Open a store from a URL: `file:///abs/path`, a bare local path, or `memory://`.
    ///
    /// # Errors
    /// `InvalidInput` for an unsupported scheme or a malformed URL; `Io` when a local folder
    /// cannot be created.
    pub fn open(url: &str) -> Result<Self> {
        if url.trim().is_empty() {
            return Err(Error::invalid("repository location is empty"));
        }
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
                "unsupported repository URL scheme {scheme:?} in {url:?} (supported: file://, a local path, memory://)"
            )));
        } else {
            std::path::PathBuf::from(url)
        };
        let local_path =
            std::path::absolute(&local_path).map_err(|e| Error::io("resolve", &local_path, e))?;
        std::fs::create_dir_all(&local_path)
            .map_err(|e| Error::io("create folder", &local_path, e))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&local_path)
            .map_err(|e| Error::Backend {
                operation: "open",
                path: local_path.display().to_string(),
                source: e,
            })?
            .with_automatic_cleanup(true);
        Ok(Backend::new(
            Arc::new(store),
            local_path.display().to_string(),
        ))
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
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from_bytes(data), options)
            .await
        {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::AlreadyExisted),
            Err(source) => Err(self.error("write", path, source)),
        }
    }

    /// Read a whole object. `Ok(None)` when it does not exist.
    pub async fn get_opt(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.store.get(path).await {
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
        self.get_opt(path).await?.ok_or_else(|| {
            Error::integrity(format!("object {path} is missing from the repository"))
        })
    }

    /// Read a byte range of an object that must exist.
    pub async fn get_range(&self, path: &Path, range: std::ops::Range<u64>) -> Result<Bytes> {
        match self.store.get_range(path, range).await {
            Ok(bytes) => Ok(bytes),
            Err(object_store::Error::NotFound { .. }) => Err(Error::integrity(format!(
                "object {path} is missing from the repository"
            ))),
            Err(source) => Err(self.error("read", path, source)),
        }
    }

    /// List every object under `prefix` as (path, size).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(Path, u64)>> {
        let prefix_path = Path::from(prefix);
        self.store
            .list(Some(&prefix_path))
            .map_ok(|meta| (meta.location, meta.size))
            .try_collect()
            .await
            .map_err(|source| self.error("list", &prefix_path, source))
    }

    /// Delete an object; deleting a missing object is not an error.
    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.error("delete", path, source)),
        }
    }

    /// Blocking form of [`Backend::list`].
    pub fn list_blocking(&self, prefix: &str) -> Result<Vec<(Path, u64)>> {
        block_on(self.list(prefix))
    }

    fn error(&self, operation: &'static str, path: &Path, source: object_store::Error) -> Error {
        Error::Backend {
            operation,
            path: format!("{}/{}", self.location, path),
            source,
        }
    }
}
