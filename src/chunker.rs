//! Content-defined chunking: cut points depend on the bytes around them, so an insertion or a
//! deletion only changes the chunks it touches and the rest deduplicate.

use crate::error::{Error, Result};
use crate::format::ChunkerParams;
use std::io::Read;
use std::path::Path;

/// Iterate over the chunks of a reader, in order. Memory stays within `max_size` plus the
/// chunk being returned.
pub fn chunks<'a, R: Read + 'a>(
    reader: R,
    params: ChunkerParams,
    path: &'a Path,
) -> impl Iterator<Item = Result<Vec<u8>>> + 'a {
    fastcdc::v2020::StreamCDC::new(reader, params.min_size, params.avg_size, params.max_size).map(
        move |chunk| {
            chunk.map(|c| c.data).map_err(|e| match e {
                fastcdc::v2020::Error::IoError(io) => Error::io("read", path, io),
                other => Error::io("read", path, std::io::Error::other(other.to_string())),
            })
        },
    )
}

/// Cut points of an in-memory buffer (offsets where chunks end), for tests and tools.
pub fn cut_points(data: &[u8], params: ChunkerParams) -> Vec<usize> {
    fastcdc::v2020::FastCDC::new(data, params.min_size, params.avg_size, params.max_size)
        .map(|chunk| chunk.offset + chunk.length)
        .collect()
}
