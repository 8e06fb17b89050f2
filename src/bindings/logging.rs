//! The engine's log records reach Python's `logging`: a `log::Log` that hands each record to
//! the logger `lightrag.backup.engine.<module path>` (for example
//! `lightrag.backup.engine.replication.push`), so an operator's logging configuration sees the
//! engine's warnings and retries beside the Python layer's (the object-store client's retries
//! too: it reports them through `tracing`, whose `log` feature turns them into records). Installed when `_native` is
//! imported; records below INFO are not passed (the engine's debug output stays off).

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;

struct PythonLogger;

/// Whose records are passed: ours, and the object-store client's (its retries).
const TARGETS: [&str; 2] = ["lightrag_backup", "object_store"];

/// `lightrag_backup::replication::push` -> `lightrag.backup.engine.replication.push`;
/// `object_store::client::retry` -> `lightrag.backup.engine.object_store.client.retry`.
fn logger_name(target: &str) -> String {
    let rest = target
        .strip_prefix("lightrag_backup")
        .unwrap_or(target)
        .trim_start_matches("::");
    if rest.is_empty() {
        "lightrag.backup.engine".to_string()
    } else {
        format!("lightrag.backup.engine.{}", rest.replace("::", "."))
    }
}

fn python_level(level: Level) -> u8 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

impl Log for PythonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info && TARGETS.iter().any(|t| metadata.target().starts_with(t))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let name = logger_name(record.target());
        let message = record.args().to_string();
        let level = python_level(record.level());
        // A record from a worker thread takes the GIL for the call only (the thread that
        // waits on this work has released it); a failing logging call is dropped, never raised.
        Python::attach(|py| {
            // The error, if any, is dropped here: logging never raises into the engine.
            let _ = py
                .import("logging")
                .and_then(|logging| logging.call_method1("getLogger", (name,)))
                .and_then(|logger| logger.call_method1("log", (level, message)));
        });
    }

    fn flush(&self) {}
}

/// Install the bridge (once per process; a second call keeps the first).
pub(crate) fn install() {
    if log::set_logger(&PythonLogger).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_module_path() {
        assert_eq!(
            logger_name("lightrag_backup::replication::push"),
            "lightrag.backup.engine.replication.push"
        );
        assert_eq!(logger_name("lightrag_backup"), "lightrag.backup.engine");
        assert_eq!(
            logger_name("object_store::client::retry"),
            "lightrag.backup.engine.object_store.client.retry"
        );
        assert_eq!(python_level(Level::Warn), 30);
    }
}
