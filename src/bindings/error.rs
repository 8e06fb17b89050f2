//! The one place where core errors become Python exceptions. The kind table is the core's
//! (`Error::kind`); `lightrag.backup.errors.from_kind` picks the class that carries that kind.

use crate::error::Error;
use pyo3::prelude::*;

pub(crate) fn to_py_err(error: Error) -> PyErr {
    Python::attach(|py| {
        let message = error.to_string();
        let build = || -> PyResult<PyErr> {
            let instance = py
                .import("lightrag.backup.errors")?
                .getattr("from_kind")?
                .call1((
                    error.kind(),
                    message.clone(),
                    error.is_retryable(),
                    error.refusal(),
                ))?;
            Ok(PyErr::from_value(instance))
        };
        build().unwrap_or_else(|import_error| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "{message} (and the error classes failed to load: {import_error})"
            ))
        })
    })
}
