//! Work on many files with a few threads, the largest first: how snapshots read and restores
//! stage a graph's files (one big file alone would leave a core idle).

use crate::error::{Error, Result};
use crate::progress::Progress;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Run `work(index, item)` for every item, the largest by `size` first, on this thread and
/// `threads - 1` helpers. After the first error no further item is started and that error is
/// returned. This thread keeps polling `progress.cancelled()` while the helpers finish: it is
/// the only thread that can see a Ctrl-C, and a helper stops at its next check once the flag
/// is up.
pub(crate) fn largest_first<T: Sync>(
    items: &[T],
    threads: usize,
    size: impl Fn(&T) -> u64,
    progress: &dyn Progress,
    work: impl Fn(usize, &T) -> Result<()> + Sync,
) -> Result<()> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let run = || -> Result<()> {
        while !failed.load(Ordering::Relaxed) {
            let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            if let Err(error) = work(index, &items[index]) {
                failed.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
        Ok(())
    };
    let helpers = threads.clamp(1, items.len().max(1)) - 1;
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (0..helpers).map(|_| scope.spawn(run)).collect();
        let mine = run();
        while helpers.iter().any(|h| !h.is_finished()) && !progress.cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        helpers.into_iter().fold(mine, |result, helper| {
            let theirs = helper
                .join()
                .unwrap_or_else(|_| Err(Error::integrity("worker thread panicked")));
            result.and(theirs)
        })
    })
}
