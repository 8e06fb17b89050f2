//! Settings kept in the repository: small JSON documents that are configuration rather than
//! data (backup schedules today; replication targets without their secrets and recovery
//! settings next), so that a rebuilt catalog or a new machine that knows only the repository
//! gets them back.
//!
//! Each change writes a new version, create-only like every other object
//! (`settings/<kind>/<name>/<time>-<uuid>`); the newest version is the setting, and a version
//! holding JSON `null` removes it. Versions a newer one supersedes are deleted after it is
//! written (a reader racing that deletion still finds the newest).

use crate::error::{Error, Result};
use crate::format::paths;
use crate::repository::Repository;
use crate::runtime::block_on;
use bytes::Bytes;
use serde_json::Value;
use std::collections::BTreeMap;

/// Check a setting's kind or name: one plain path segment.
fn validate_segment(what: &str, text: &str) -> Result<()> {
    let ok = !text.is_empty()
        && text.len() <= 128
        && !text.starts_with('.')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "setting {what} {text:?} is not valid: use 1-128 letters, digits, '_', '-', '.'"
        )))
    }
}

/// Write a new version of a setting (`None` removes it).
///
/// # Errors
/// `InvalidInput` for a bad kind or name; `Backend` when the store fails.
pub fn put_setting(repo: &Repository, kind: &str, name: &str, value: Option<&Value>) -> Result<()> {
    validate_segment("kind", kind)?;
    validate_segment("name", name)?;
    let version = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        uuid::Uuid::new_v4().simple()
    );
    let path = paths::setting(kind, name, &version);
    let body = repo.codec().seal_json(
        path.as_ref(),
        serde_json::to_vec(&value.cloned().unwrap_or(Value::Null)).expect("JSON serialises"),
    );
    let backend = repo.backend();
    block_on(backend.put_create(&path, Bytes::from(body)))?;
    let listed = block_on(backend.list(&paths::settings(kind, Some(name))))?;
    for (path, _) in listed {
        if path
            .filename()
            .is_some_and(|older| older < version.as_str())
        {
            let _ = block_on(backend.delete(&path)); // superseded; a leftover is harmless
        }
    }
    Ok(())
}

/// Every setting of a kind: name -> its newest value (removed settings left out).
///
/// # Errors
/// `Backend` when the store fails (a version that is not JSON is left out).
pub fn settings(repo: &Repository, kind: &str) -> Result<BTreeMap<String, Value>> {
    validate_segment("kind", kind)?;
    let backend = repo.backend();
    let listed = block_on(backend.list(&paths::settings(kind, None)))?;
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for (path, _) in listed {
        let parts: Vec<&str> = path.as_ref().split('/').collect();
        let [_, _, name, version] = parts[..] else {
            continue;
        };
        let entry = newest.entry(name.to_string()).or_default();
        if version > entry.as_str() {
            *entry = version.to_string();
        }
    }
    let mut out = BTreeMap::new();
    for (name, version) in newest {
        let path = paths::setting(kind, &name, &version);
        // Superseded and deleted while we listed: a newer version exists; read it next time.
        let Some(bytes) = block_on(backend.get_bounded(&path))? else {
            continue;
        };
        // A damaged setting is left out (and logged): the others still apply.
        let json = match repo.codec().open_json(path.as_ref(), &bytes) {
            Ok(json) => json,
            Err(e) => {
                log::warn!("setting {path} is left out: {}", e.detail());
                continue;
            }
        };
        let value: Value = match serde_json::from_slice(&json) {
            Ok(value) => value,
            Err(e) => {
                log::warn!("setting {path} is not JSON and is left out: {e}");
                continue;
            }
        };
        if !value.is_null() {
            out.insert(name, value);
        }
    }
    Ok(out)
}
