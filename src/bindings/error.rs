//! The one place where core errors become Python exceptions: each kind maps to a class of
//! `lightrag.backup.errors`.

use crate::error::{BackendFailure, Error};
use pyo3::prelude::*;

fn class_name(error: &Error) -> &'static str {
    match error {
        Error::InvalidInput { .. } | Error::AmbiguousSnapshotId { .. } => "InvalidInputError",
        Error::SnapshotNotFound { .. } => "SnapshotNotFoundError",
        Error::GraphDirNotFound { .. } => "GraphDirNotFoundError",
        Error::GraphBusy { .. } => "GraphBusyError",
        Error::Integrity { .. } => "IntegrityError",
        Error::RepositoryNotFound { .. } => "RepositoryNotFoundError",
        Error::UnsupportedFormat { .. } => "UnsupportedFormatError",
        Error::Backend { failure, .. } => match failure {
            BackendFailure::Auth => "StorageAuthError",
            BackendFailure::LocationNotFound => "StorageLocationNotFoundError",
            _ => "StorageBackendError",
        },
        Error::Io { .. } => "BackupIOError",
        Error::Cancelled { .. } => "OperationCancelledError",
        Error::Conflict { .. } => "RepositoryConflictError",
    }
}

pub(crate) fn to_py_err(error: Error) -> PyErr {
    Python::attach(|py| {
        let message = error.to_string();
        let build = || -> PyResult<PyErr> {
            let class = py
                .import("lightrag.backup.errors")?
                .getattr(class_name(&error))?;
            let instance = class.call1((message.clone(),))?;
            instance.setattr("retryable", error.is_retryable())?;
            instance.setattr("kind", error.kind())?;
            Ok(PyErr::from_value(instance))
        };
        build().unwrap_or_else(|import_error| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "{message} (and the error classes failed to load: {import_error})"
            ))
        })
    })
}
