//! Fetching a file's chunks from the repository in windows: the ranged-read pipeline that
//! restore uses, and replication's copy will.
//!
//! A window is a run of a file's chunks (a few MiB of stored bytes). Its chunks are covered
//! with as few ranged reads of their packs as possible ([`spans`]), read on the calling thread
//! (a local disk: into one reused buffer) or with many requests in flight (an object store),
//! decompressed into the window's buffer and checked against their SHA-256 ids.

use crate::error::{Error, Result};
use crate::format::ObjectId;
use crate::repository::{pack_path, BlobLocation, Repository};
use crate::runtime::block_on;

/// How restore reads a store. Local disks are CPU-bound: each file's chunks are fetched on the
/// thread that stages it (two files are staged at a time, so both cores work), into one reused
/// buffer. Object stores over HTTP are latency-bound: many requests in flight, bigger windows,
/// and ranged reads that bridge bigger gaps so fewer requests are made.
#[derive(Clone, Copy)]
pub(crate) struct Reads {
    /// Stored bytes fetched per window (split over the workers); the writer writes one window
    /// while the next is fetched.
    pub(crate) window_bytes: u64,
    /// Largest gap between two needed blobs of a pack that one ranged read bridges.
    pub(crate) max_gap: u64,
    /// Largest ranged read.
    pub(crate) max_span: u64,
    /// Threads fetching a window; 1 fetches on the calling thread.
    pub(crate) workers: usize,
    /// Files staged at the same time.
    pub(crate) files: usize,
}

impl Reads {
    pub(crate) fn for_backend(backend: &crate::backend::Backend) -> Reads {
        if backend.is_remote() {
            Reads {
                window_bytes: 32 * 1024 * 1024,
                max_gap: 1024 * 1024,
                max_span: 8 * 1024 * 1024,
                workers: 16,
                // The requests in flight keep the network busy; a second file would only
                // double the memory (three windows each).
                files: 1,
            }
        } else {
            Reads {
                window_bytes: 4 * 1024 * 1024,
                max_gap: 256 * 1024,
                max_span: 4 * 1024 * 1024,
                workers: 1,
                files: 2,
            }
        }
    }
}

/// A window's chunks, checked: plaintext of chunk `i` is `data[ranges[i]]`.
pub(crate) struct Window {
    pub(crate) data: Vec<u8>,
    pub(crate) ranges: Vec<std::ops::Range<usize>>,
}

/// The chunks of a file in windows of about `window_bytes` stored bytes, in file order. A
/// window also ends at four times that in plaintext, so the buffer it decompresses into stays
/// bounded however well (or however implausibly) its chunks claim to compress.
pub(crate) fn windows(locations: &[BlobLocation], window_bytes: u64) -> Vec<&[BlobLocation]> {
    let mut out = Vec::new();
    let (mut first, mut bytes, mut plain) = (0, 0u64, 0u64);
    for (i, location) in locations.iter().enumerate() {
        bytes += location.entry.length as u64;
        plain += location.entry.raw_length as u64;
        if bytes >= window_bytes || plain >= 4 * window_bytes {
            out.push(&locations[first..=i]);
            first = i + 1;
            bytes = 0;
            plain = 0;
        }
    }
    if first < locations.len() {
        out.push(&locations[first..]);
    }
    out
}

/// One ranged read of a pack, and which of the window's blobs it holds.
pub(crate) struct Span {
    pub(crate) pack: ObjectId,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Indexes into the window of the blobs this read holds.
    pub(crate) members: Vec<usize>,
}

/// Cover the window's blobs with as few ranged reads as possible: per pack, in offset order,
/// merging neighbours closer than `reads.max_gap` (a file restored after a change interleaves
/// old and new packs, so file order alone would cut many short reads; reading a few unneeded
/// bytes is cheaper than another request).
pub(crate) fn spans(window: &[BlobLocation], reads: Reads) -> Vec<Span> {
    let mut order: Vec<usize> = (0..window.len()).collect();
    order.sort_by_key(|&i| (window[i].pack, window[i].entry.offset));
    let mut spans: Vec<Span> = Vec::new();
    for i in order {
        let location = &window[i];
        let (start, end) = (
            location.entry.offset as u64,
            location.entry.offset as u64 + location.entry.length as u64,
        );
        match spans.last_mut() {
            Some(span)
                if span.pack == location.pack
                    && start <= span.end + reads.max_gap
                    && end - span.start <= reads.max_span =>
            {
                span.end = span.end.max(end);
                span.members.push(i);
            }
            _ => spans.push(Span {
                pack: location.pack,
                start,
                end,
                members: vec![i],
            }),
        }
    }
    spans
}

/// Read, decompress and check the chunks of a window into `data`, in window order: on this
/// thread through `read`, or spread over `reads.workers` threads. The error of the first bad
/// chunk in file order wins.
pub(crate) fn fetch_window(
    repo: &Repository,
    codec: &crate::format::Codec,
    window: &[BlobLocation],
    reads: Reads,
    read: &mut Vec<u8>,
    mut data: Vec<u8>,
) -> Result<Window> {
    let mut ranges = Vec::with_capacity(window.len());
    let mut total = 0usize;
    for location in window {
        let length = location.entry.raw_length as usize;
        ranges.push(total..total + length);
        total += length;
    }
    if data.len() < total {
        data.resize(total, 0);
    }
    // Each chunk's own slice of the window, handed to whoever reads its span.
    let mut slots: Vec<Option<&mut [u8]>> = Vec::with_capacity(window.len());
    let mut rest = &mut data[..total];
    for range in &ranges {
        let (slot, after) = rest.split_at_mut(range.len());
        slots.push(Some(slot));
        rest = after;
    }
    let jobs: Vec<SpanJob<'_>> = spans(window, reads)
        .into_iter()
        .map(|span| {
            let outputs = span
                .members
                .iter()
                .map(|&i| (i, slots[i].take().expect("a chunk is in one span")))
                .collect();
            SpanJob { span, outputs }
        })
        .collect();
    let failures: Vec<(usize, Error)> = if reads.workers <= 1 {
        jobs.into_iter()
            .filter_map(|job| {
                let path = pack_path(&job.span.pack);
                let bytes = repo
                    .backend()
                    .read_range_into(&path, job.span.start..job.span.end, read)
                    .map(SpanBytes::Spent);
                job.open(codec, window, bytes).err()
            })
            .collect()
    } else {
        fetch_spread(repo, codec, window, jobs, reads.workers)
    };
    match failures.into_iter().min_by_key(|(index, _)| *index) {
        Some((_, error)) => Err(error),
        None => Ok(Window { data, ranges }),
    }
}

/// The bytes of one ranged read: shared (an object store's response), or a buffer of ours
/// that is read once, so its sealed chunks are opened in place.
enum SpanBytes<'b> {
    Shared(&'b [u8]),
    Spent(&'b mut [u8]),
}

/// One ranged read and where each of its chunks goes.
struct SpanJob<'d> {
    span: Span,
    outputs: Vec<(usize, &'d mut [u8])>,
}

impl SpanJob<'_> {
    /// Decompress and check the span's chunks from its bytes; the first failure (in window
    /// order) with its chunk's index.
    fn open(
        self,
        codec: &crate::format::Codec,
        window: &[BlobLocation],
        bytes: Result<SpanBytes<'_>>,
    ) -> std::result::Result<(), (usize, Error)> {
        let first = self.span.members.iter().copied().min().unwrap_or(0);
        let mut bytes = bytes.map_err(|e| (first, e))?;
        // A chunk a file holds twice is read once for both: it is opened by copy, never in
        // place (which would spend its bytes before the second open).
        let mut offsets: Vec<u64> = self
            .outputs
            .iter()
            .map(|(i, _)| window[*i].entry.offset as u64)
            .collect();
        offsets.sort_unstable();
        let twice: Vec<u64> = offsets
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        let mut failure: Option<(usize, Error)> = None;
        for (i, out) in self.outputs {
            let entry = window[i].entry;
            let offset = (entry.offset as u64 - self.span.start) as usize;
            let range = offset..offset + entry.length as usize;
            let short = || {
                Error::integrity(format!(
                    "pack {} is shorter than the index says",
                    self.span.pack
                ))
            };
            let result = match &mut bytes {
                SpanBytes::Spent(bytes) if !twice.contains(&(entry.offset as u64)) => bytes
                    .get_mut(range)
                    .ok_or_else(short)
                    .and_then(|stored| codec.open_chunk_in_place(&entry, stored, out)),
                SpanBytes::Spent(bytes) => bytes
                    .get(range)
                    .ok_or_else(short)
                    .and_then(|stored| codec.open_chunk_into(&entry, stored, out)),
                SpanBytes::Shared(bytes) => bytes
                    .get(range)
                    .ok_or_else(short)
                    .and_then(|stored| codec.open_chunk_into(&entry, stored, out)),
            }
            .map_err(|e| match e {
                Error::Integrity { message } => {
                    Error::integrity(format!("{message} (in pack {})", self.span.pack))
                }
                // A graph shredded under a running restore says so.
                other => other,
            });
            if let Err(error) = result {
                if failure.as_ref().is_none_or(|(at, _)| i < *at) {
                    failure = Some((i, error));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Fetch the spans on `workers` threads: dealt out largest first, each to the least loaded.
fn fetch_spread(
    repo: &Repository,
    codec: &crate::format::Codec,
    window: &[BlobLocation],
    mut jobs: Vec<SpanJob<'_>>,
    workers: usize,
) -> Vec<(usize, Error)> {
    jobs.sort_by_key(|job| std::cmp::Reverse(job.span.end - job.span.start));
    let mut shares: Vec<(u64, Vec<SpanJob<'_>>)> = (0..workers).map(|_| (0, Vec::new())).collect();
    for job in jobs {
        let least = shares
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one worker");
        least.0 += job.span.end - job.span.start;
        least.1.push(job);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .filter(|(_, share)| !share.is_empty())
            .map(|(_, share)| {
                scope.spawn(move || {
                    share
                        .into_iter()
                        .filter_map(|job| {
                            let path = pack_path(&job.span.pack);
                            let bytes = block_on(
                                repo.backend()
                                    .get_range(&path, job.span.start..job.span.end),
                            );
                            match bytes {
                                Ok(bytes) => job.open(codec, window, Ok(SpanBytes::Shared(&bytes))),
                                Err(e) => job.open(codec, window, Err(e)),
                            }
                            .err()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| vec![(0, Error::integrity("restore worker panicked"))])
            })
            .collect()
    })
}
