//! Work on many files with two threads, the largest first: how snapshots read and restores
//! stage a graph's files (one big file alone would leave a core idle).

use crate::error::{Error, Result};
use crate::progress::Progress;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Run `work(index, item)` for every item, the largest by `size` first, on this thread and
/// one helper. After the first error no further item is started and that error is returned.
/// This thread keeps polling `progress.cancelled()` while the helper finishes: it is the only
/// thread that can see a Ctrl-C, and the helper stops at its next check once the flag is up.
pub(crate) fn largest_first<T: Sync>(
    items: &[T],
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
    std::thread::scope(|scope| {
        let helper = (items.len() > 1).then(|| scope.spawn(run));
        let mine = run();
        while helper.as_ref().is_some_and(|h| !h.is_finished()) && !progress.cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let theirs = helper.map_or(Ok(()), |helper| {
            helper
                .join()
                .unwrap_or_else(|_| Err(Error::integrity("worker thread panicked")))
        });
        mine.and(theirs)
    })
}
