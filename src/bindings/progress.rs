//! Progress reported to a Python callable `callback(phase, done, total)`, at most every 100 ms
//! and once at the end of each phase.

use crate::progress::Progress;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(100);

pub(crate) struct PyProgress {
    callback: Option<Py<PyAny>>,
    /// When signals were last checked, and whether one asked to stop.
    signals: Mutex<(Instant, bool)>,
    /// The thread that made this object: Python's signal handlers run only on the main
    /// thread, so only checks from there can see a Ctrl-C. Worker threads must not use up the
    /// check interval (they did, and a Ctrl-C could go unnoticed until the commit).
    owner: std::thread::ThreadId,
    phase: Mutex<(String, Instant)>,
    total: AtomicU64,
    done: AtomicU64,
}

impl PyProgress {
    pub(crate) fn new(callback: Option<Py<PyAny>>) -> Self {
        PyProgress {
            callback,
            signals: Mutex::new((Instant::now(), false)),
            owner: std::thread::current().id(),
            phase: Mutex::new((String::new(), Instant::now())),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    fn emit(&self) {
        let Some(callback) = &self.callback else {
            return;
        };
        let phase = self.phase.lock().unwrap().0.clone();
        let (done, total) = (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        );
        Python::attach(|py| {
            if let Err(error) = callback.call1(py, (phase, done, total)) {
                if error.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                    // Ctrl-C arrived while the callback ran: stop the operation cleanly.
                    self.signals.lock().unwrap().1 = true;
                } else {
                    // A broken progress callback must not break the backup; show the error.
                    error.print(py);
                }
            }
        });
    }
}

impl Progress for PyProgress {
    fn start(&self, phase: &str, total: u64) {
        *self.phase.lock().unwrap() = (phase.to_string(), Instant::now());
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.emit();
    }

    fn advance(&self, done: u64) {
        self.done.fetch_add(done, Ordering::Relaxed);
        let due = {
            let mut phase = self.phase.lock().unwrap();
            let due = phase.1.elapsed() >= INTERVAL;
            if due {
                phase.1 = Instant::now();
            }
            due
        };
        if due {
            self.emit();
        }
    }

    fn cancelled(&self) -> bool {
        let due = {
            let mut signals = self.signals.lock().unwrap();
            if signals.1 {
                return true;
            }
            if std::thread::current().id() != self.owner {
                return false;
            }
            let due = signals.0.elapsed() >= INTERVAL;
            if due {
                signals.0 = Instant::now();
            }
            due
        };
        // Runs Python's signal handlers (main thread only): Ctrl-C raises KeyboardInterrupt
        // there, which we turn into a clean stop. No lock is held while the GIL is taken.
        if due && Python::attach(|py| py.check_signals().is_err()) {
            self.signals.lock().unwrap().1 = true;
        }
        self.signals.lock().unwrap().1
    }

    fn finish(&self) {
        self.done
            .store(self.total.load(Ordering::Relaxed), Ordering::Relaxed);
        self.emit();
    }
}
