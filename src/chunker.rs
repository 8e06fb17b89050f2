//! Content-defined chunking: cut points depend on the bytes around them, so an insertion or a
//! deletion only changes the chunks it touches and the rest deduplicate.

use crate::error::{Error, Result};
use crate::format::ChunkerParams;
use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;

/// Bytes read from the source at a time (at least a few maximum-size chunks).
const READ_BUFFER: usize = 4 * 1024 * 1024;

/// FastCDC 2020's cutting for one set of parameters: its masks and its gear table (the public
/// one, or an encrypted repository's secret one: see
/// [`MasterKey::chunker_gear`](crate::keys::MasterKey::chunker_gear)).
pub struct Cutter {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

impl Cutter {
    /// A cutter with `gear` (`None`: FastCDC's public table), normalisation level 1 (as
    /// `FastCDC::new`).
    pub fn new(params: ChunkerParams, gear: Option<&[u64; 256]>) -> Self {
        use fastcdc::v2020::{logarithm2, MASKS};
        let bits = logarithm2(params.avg_size);
        let (gear, gear_ls) = match gear {
            Some(table) => {
                let table = Box::new(*table);
                let mut shifted = Box::new([0u64; 256]);
                for (out, value) in shifted.iter_mut().zip(table.iter()) {
                    *out = value << 1;
                }
                (table, shifted)
            }
            None => fastcdc::v2020::get_gear_with_seed(0),
        };
        Cutter {
            params,
            mask_s: MASKS[(bits + 1) as usize],
            mask_l: MASKS[(bits - 1) as usize],
            gear,
            gear_ls,
        }
    }

    /// The length of the first chunk of `data` (all of it when it is short).
    fn cut(&self, data: &[u8]) -> usize {
        fastcdc::v2020::cut_gear(
            data,
            self.params.min_size as usize,
            self.params.avg_size as usize,
            self.params.max_size as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        )
        .1
    }
}

/// The chunks of a reader, in order, cut exactly as [`cut_points`] cuts the whole input.
///
/// Memory stays within one read buffer plus the chunks not yet taken. The buffer is compacted
/// once per refill, not once per chunk.
pub struct Chunks<'a, R: Read> {
    reader: R,
    cutter: &'a Cutter,
    path: &'a Path,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    ready: VecDeque<Vec<u8>>,
}

/// Iterate over the chunks of a reader, cut by `cutter` (in an encrypted repository its gear
/// table is secret, so where a file is cut depends on a key a bucket reader does not have; and
/// chunk lengths are sealed in packs).
pub fn chunks<'a, R: Read + 'a>(reader: R, cutter: &'a Cutter, path: &'a Path) -> Chunks<'a, R> {
    let capacity = READ_BUFFER.max(4 * cutter.params.max_size as usize);
    Chunks {
        reader,
        cutter,
        path,
        buffer: vec![0; capacity],
        start: 0,
        end: 0,
        eof: false,
        ready: VecDeque::new(),
    }
}

impl<R: Read> Chunks<'_, R> {
    /// Cut every chunk of the buffered bytes whose cut point cannot depend on unread bytes.
    fn cut_buffered(&mut self) {
        let window = &self.buffer[self.start..self.end];
        let max = self.cutter.params.max_size as usize;
        let mut taken = 0;
        while taken < window.len() {
            if !self.eof && taken + max > window.len() {
                break; // more input could move this cut
            }
            let length = self.cutter.cut(&window[taken..]);
            if length == 0 {
                break;
            }
            self.ready.push_back(window[taken..taken + length].to_vec());
            taken += length;
        }
        self.start += taken;
    }

    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < self.buffer.len() {
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Iterator for Chunks<'_, R> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(chunk) = self.ready.pop_front() {
                return Some(Ok(chunk));
            }
            if self.eof && self.start == self.end {
                return None;
            }
            if !self.eof {
                if let Err(e) = self.fill() {
                    self.eof = true;
                    self.start = self.end;
                    return Some(Err(Error::io("read", self.path, e)));
                }
            }
            self.cut_buffered();
        }
    }
}

/// Chunks of exactly `size` bytes (the last one shorter), in order: for inputs made of records
/// of one length (the rows of an embedding matrix), where a record is the unit that changes.
pub fn fixed_chunks<'a, R: Read + 'a>(
    mut reader: R,
    size: usize,
    path: &'a Path,
) -> impl Iterator<Item = Result<Vec<u8>>> + 'a {
    let size = size.max(1);
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut chunk = vec![0; size];
        let mut filled = 0;
        while filled < size {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    done = true;
                    return Some(Err(Error::io("read", path, e)));
                }
            }
        }
        if filled < size {
            done = true;
            chunk.truncate(filled);
        }
        (!chunk.is_empty()).then_some(Ok(chunk))
    })
}

/// Cut points of an in-memory buffer (offsets where chunks end), for tests and tools.
pub fn cut_points(data: &[u8], params: ChunkerParams, gear: Option<&[u64; 256]>) -> Vec<usize> {
    let cutter = Cutter::new(params, gear);
    let mut cuts = Vec::new();
    let mut at = 0;
    while at < data.len() {
        at += cutter.cut(&data[at..]);
        cuts.push(at);
    }
    cuts
}

#[cfg(test)]
fn fastcdc_cut_points(data: &[u8], params: ChunkerParams) -> Vec<usize> {
    fastcdc::v2020::FastCDC::new(data, params.min_size, params.avg_size, params.max_size)
        .map(|chunk| chunk.offset + chunk.length)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_chunks_are_records_and_a_short_last_one() {
        let data: Vec<u8> = (0..10u8).collect();
        let path = Path::new("m");
        let cut: Vec<Vec<u8>> = fixed_chunks(&data[..], 4, path)
            .map(|c| c.unwrap())
            .collect();
        assert_eq!(cut, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        // A reader that trickles bytes still yields whole records.
        let trickled: Vec<Vec<u8>> = fixed_chunks(
            Trickle {
                data: &data,
                step: 3,
            },
            5,
            path,
        )
        .map(|c| c.unwrap())
        .collect();
        assert_eq!(trickled, vec![data[..5].to_vec(), data[5..].to_vec()]);
        assert_eq!(fixed_chunks(&b""[..], 4, path).count(), 0);
    }

    /// A reader that returns at most `step` bytes per call.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.data.len().min(self.step).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn streaming_cuts_match_whole_buffer_cuts() {
        let data: Vec<u8> = (0..9_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let params = ChunkerParams::default();
        // The public table cuts exactly as the fastcdc crate does (repositories made before
        // encryption keep their chunks).
        assert_eq!(
            cut_points(&data, params, None),
            fastcdc_cut_points(&data, params)
        );
        let key = crate::keys::MasterKey::generate().unwrap();
        let secret = key.chunker_gear();
        for gear in [None, Some(&*secret)] {
            let expected = cut_points(&data, params, gear);
            streams_cut_like(&data, &Cutter::new(params, gear), &expected);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..4_000_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let keyed = cut_points(&random, params, Some(&secret));
        let public = cut_points(&random, params, None);
        let shared = keyed
            .iter()
            .filter(|c| public.binary_search(c).is_ok())
            .count();
        assert!(
            shared * 10 < keyed.len(),
            "a secret table moves the cuts ({shared} of {} shared)",
            keyed.len()
        );
        assert_eq!(
            chunks(&b""[..], &Cutter::new(params, None), Path::new("x")).count(),
            0
        );
    }

    fn streams_cut_like(data: &[u8], cutter: &Cutter, expected: &[usize]) {
        for step in [1 << 20, 65_537, 4096] {
            let reader = Trickle { data, step };
            let lengths: Vec<usize> = chunks(reader, cutter, Path::new("x"))
                .map(|c| c.unwrap().len())
                .collect();
            let mut end = 0;
            let cuts: Vec<usize> = lengths
                .iter()
                .map(|l| {
                    end += l;
                    end
                })
                .collect();
            assert_eq!(cuts, expected, "step {step}");
        }
    }
}
