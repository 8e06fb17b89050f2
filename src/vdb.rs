//! The LightRAG-aware transform for NanoVectorDB files (`vdb_*.json`).
//!
//! Such a file is one line of JSON whose last key holds the whole embedding matrix as one
//! base64 string: `{"embedding_dim": ..., "data": [...], "matrix": "<base64>"}`. Deleting one
//! row (4 KiB at dimension 1024) shifts the base64 framing of everything after it, so byte-level
//! deduplication sees a new file. We store such a file as three streams, each cut into
//! content-defined chunks: the bytes up to and including `"matrix": "` (the head), the decoded
//! matrix (binary, so a deleted row removes whole bytes and the chunks after it realign), and
//! the rest (the tail). Restore re-encodes the matrix with standard padded base64, which
//! reproduces the original text exactly: only complete, canonical base64 groups are decoded;
//! anything else stays in the tail as bytes.

use base64::Engine;
use std::io::{BufRead, Read};

const PATTERN: &[u8] = b"\"matrix\": \"";
const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Base64 text decoded per step.
const DECODE_STEP: usize = 256 * 1024;

/// The `embedding_dim` a NanoVectorDB file's head declares (the first key NanoVectorDB
/// writes), when its first bytes hold it.
pub fn embedding_dim(head: &[u8]) -> Option<u32> {
    const KEY: &[u8] = b"\"embedding_dim\":";
    let start = head.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = head[start..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Whether a file name is a NanoVectorDB storage file.
pub fn is_vector_file(name: &str) -> bool {
    name.starts_with("vdb_") && name.ends_with(".json") && !name.contains(".tmp.")
}

/// Reads up to and including the first `"matrix": "`, or the whole input when there is none.
pub struct HeadReader<'a, R: BufRead> {
    inner: &'a mut R,
    matched: usize,
    done: bool,
    found: bool,
}

impl<'a, R: BufRead> HeadReader<'a, R> {
    pub fn new(inner: &'a mut R) -> Self {
        HeadReader {
            inner,
            matched: 0,
            done: false,
            found: false,
        }
    }

    /// Whether the matrix key was found (valid once the reader returned 0).
    pub fn found(&self) -> bool {
        self.found
    }
}

impl<R: BufRead> Read for HeadReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            self.done = true;
            return Ok(0);
        }
        let available = buf.len().min(out.len());
        let window = &buf[..available];
        let take = match find_end(&mut self.matched, window) {
            Some(end) => {
                self.done = true;
                self.found = true;
                end
            }
            None => available,
        };
        out[..take].copy_from_slice(&window[..take]);
        self.inner.consume(take);
        Ok(take)
    }
}

/// Where the pattern ends in `window` (exclusive), continuing a match of `matched` bytes begun
/// in earlier windows; otherwise set `matched` to how much of the pattern the window ends with.
fn find_end(matched: &mut usize, window: &[u8]) -> Option<usize> {
    {
        // Finish a match that straddles the previous window.
        if *matched > 0 {
            let rest = &PATTERN[*matched..];
            let n = rest.len().min(window.len());
            if window[..n] == rest[..n] {
                if n == rest.len() {
                    return Some(n);
                }
                *matched += n;
                return None;
            }
            *matched = 0;
        }
        if let Some(at) = memchr::memmem::find(window, PATTERN) {
            return Some(at + PATTERN.len());
        }
        // The window may end with the start of the pattern.
        *matched = (1..PATTERN.len())
            .rev()
            .find(|&k| k <= window.len() && window[window.len() - k..] == PATTERN[..k])
            .unwrap_or(0);
        None
    }
}

/// Decode a block of whole groups into `out`; `false` (and `out` unchanged in length) when the
/// block is not all base64. A block without padding has one decoding whatever the decoder, so
/// it goes through the SIMD decoder (8x the scalar one here); a padded block is the matrix's
/// last and takes the scalar path, whose canonical-padding rules the format relies on.
fn decode_block(block: &[u8], out: &mut Vec<u8>) -> bool {
    if block.last() == Some(&b'=') {
        return ENGINE.decode_vec(block, out).is_ok();
    }
    let before = out.len();
    if base64_simd::STANDARD.decode_append(block, out).is_ok() {
        return true;
    }
    out.truncate(before);
    false
}

/// Decodes the base64 matrix that follows the head, stopping before the first byte that is not
/// part of a complete canonical group. What it read but could not decode is `leftover()`,
/// which belongs to the tail.
pub struct MatrixReader<'a, R: BufRead> {
    inner: &'a mut R,
    /// Base64 characters read but not yet decoded (fewer than 4, or a batch in progress).
    carry: Vec<u8>,
    decoded: Vec<u8>,
    position: usize,
    done: bool,
    /// Base64 characters decoded so far.
    text_len: u64,
}

fn is_alphabet(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

impl<'a, R: BufRead> MatrixReader<'a, R> {
    pub fn new(inner: &'a mut R) -> Self {
        MatrixReader {
            inner,
            carry: Vec::new(),
            decoded: Vec::new(),
            position: 0,
            done: false,
            text_len: 0,
        }
    }

    /// Characters read past the matrix that the tail must start with.
    pub fn leftover(self) -> Vec<u8> {
        self.carry
    }

    /// Length of the base64 text that was decoded.
    pub fn text_len(&self) -> u64 {
        self.text_len
    }

    /// Decode the next step of text into `self.decoded`.
    fn refill(&mut self) -> std::io::Result<()> {
        self.decoded.clear();
        self.position = 0;
        while self.decoded.is_empty() && !self.done {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                self.done = true; // end of input inside the matrix: the carry goes to the tail
                break;
            }
            if !self.carry.is_empty() {
                // Complete the group split by the previous buffer, then go back to whole blocks.
                let wanted = (4 - self.carry.len()).min(buf.len());
                let run = buf[..wanted]
                    .iter()
                    .take_while(|&&b| is_alphabet(b))
                    .count();
                self.carry.extend_from_slice(&buf[..run]);
                self.inner.consume(run);
                if self.carry.len() == 4 {
                    let group = std::mem::take(&mut self.carry);
                    self.decode_checked(&group)?;
                } else if run < wanted {
                    self.finish_with_padding()?;
                }
                continue;
            }
            // Fast path: a whole block of valid groups decodes in one call. Padding can only
            // end the matrix, so a block ending in '=' is its last.
            let block = buf.len().min(DECODE_STEP) / 4 * 4;
            if block > 0 && decode_block(&buf[..block], &mut self.decoded) {
                self.done = buf[block - 1] == b'=';
                self.inner.consume(block);
                self.text_len += block as u64;
                continue;
            }
            self.decoded.clear();
            // Slow path: the matrix ends (or the text is odd) somewhere in this buffer.
            let scanned = buf.len().min(DECODE_STEP);
            let run = buf[..scanned]
                .iter()
                .take_while(|&&b| is_alphabet(b))
                .count();
            let whole = run / 4 * 4;
            let text = buf[..whole].to_vec();
            self.carry.extend_from_slice(&buf[whole..run]);
            self.inner.consume(run);
            self.decode_checked(&text)?;
            if run < scanned {
                self.finish_with_padding()?;
            }
        }
        Ok(())
    }

    /// Decode complete groups of alphabet characters (which cannot fail).
    fn decode_checked(&mut self, text: &[u8]) -> std::io::Result<()> {
        ENGINE.decode_vec(text, &mut self.decoded).map_err(|e| {
            std::io::Error::other(format!("base64 decode of checked groups failed: {e}"))
        })?;
        self.text_len += text.len() as u64;
        Ok(())
    }

    /// The run of alphabet characters ended: a final padded group may follow.
    fn finish_with_padding(&mut self) -> std::io::Result<()> {
        self.done = true;
        let needed = match self.carry.len() {
            2 => 2,
            3 => 1,
            _ => return Ok(()),
        };
        let buf = self.inner.fill_buf()?;
        if buf.len() < needed || buf[..needed].iter().any(|&b| b != b'=') {
            return Ok(());
        }
        let mut group = self.carry.clone();
        group.extend_from_slice(&buf[..needed]);
        let mut bytes = Vec::new();
        // Non-canonical trailing bits fail here: the group then stays in the tail as text.
        if ENGINE.decode_vec(&group, &mut bytes).is_ok() {
            self.inner.consume(needed);
            self.carry.clear();
            self.decoded.extend_from_slice(&bytes);
            self.text_len += 4;
        }
        Ok(())
    }
}

impl<R: BufRead> Read for MatrixReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position == self.decoded.len() {
            if self.done {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = (self.decoded.len() - self.position).min(out.len());
        out[..n].copy_from_slice(&self.decoded[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Re-encodes matrix bytes as padded base64, across chunk boundaries.
#[derive(Default)]
pub struct MatrixEncoder {
    carry: Vec<u8>,
}

impl MatrixEncoder {
    /// Encode `data`, appending the text ready so far to `text`.
    pub fn push(&mut self, data: &[u8], text: &mut Vec<u8>) {
        let mut data = data;
        if !self.carry.is_empty() {
            let take = (3 - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() < 3 {
                return;
            }
            text.extend_from_slice(ENGINE.encode(&self.carry).as_bytes());
            self.carry.clear();
        }
        // Whole groups need no padding: the SIMD encoder writes exactly the same text.
        let whole = data.len() / 3 * 3;
        base64_simd::STANDARD.encode_append(&data[..whole], text);
        self.carry.extend_from_slice(&data[whole..]);
    }

    /// Append the last group, padded.
    pub fn finish(self, text: &mut Vec<u8>) {
        text.extend_from_slice(ENGINE.encode(&self.carry).as_bytes());
    }
}

/// Length of the padded base64 text of `n` bytes.
pub fn encoded_len(n: u64) -> u64 {
    n.div_ceil(3) * 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn split(file: &[u8], buffer: usize) -> (Vec<u8>, bool, Vec<u8>, Vec<u8>) {
        let mut reader = BufReader::with_capacity(buffer, Cursor::new(file.to_vec()));
        let mut head = Vec::new();
        let mut head_reader = HeadReader::new(&mut reader);
        head_reader.read_to_end(&mut head).unwrap();
        let found = head_reader.found();
        let mut matrix = Vec::new();
        let mut tail = Vec::new();
        if found {
            let mut matrix_reader = MatrixReader::new(&mut reader);
            matrix_reader.read_to_end(&mut matrix).unwrap();
            tail = matrix_reader.leftover();
        }
        reader.read_to_end(&mut tail).unwrap();
        (head, found, matrix, tail)
    }

    fn rebuild(head: &[u8], matrix: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut out = head.to_vec();
        let mut encoder = MatrixEncoder::default();
        for piece in matrix.chunks(1000) {
            encoder.push(piece, &mut out);
        }
        encoder.finish(&mut out);
        out.extend_from_slice(tail);
        out
    }

    #[test]
    fn round_trips_every_shape() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for len in [0usize, 1, 2, 3, 4, 5, 100, 4096 * 3 + 1, 4096 * 3 + 2] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let text = ENGINE.encode(&bytes);
            cases.push(format!("{{\"embedding_dim\": 4, \"data\": [{{\"matrix\": \"x\"}}], \"matrix\": \"{text}\"}}").into_bytes());
        }
        // Odd inputs: no matrix, invalid characters, non-canonical padding, truncated text.
        cases.push(b"{\"data\": []}".to_vec());
        cases.push(b"{\"matrix\": \"AAAA!BBB\"}".to_vec());
        cases.push(b"{\"matrix\": \"AB==\"}".to_vec());
        cases.push(b"{\"matrix\": \"AAAAAB".to_vec());
        cases.push(b"{\"matrix\": \"AAAA====\"}".to_vec());
        for file in &cases {
            for buffer in [1, 3, 7, 64, 1 << 16] {
                let (head, _, matrix, tail) = split(file, buffer);
                assert_eq!(
                    &rebuild(&head, &matrix, &tail),
                    file,
                    "{}",
                    String::from_utf8_lossy(file)
                );
            }
        }
    }

    #[test]
    fn the_dimension_is_read_from_the_head() {
        assert_eq!(
            embedding_dim(b"{\"embedding_dim\": 1024, \"data\": []"),
            Some(1024)
        );
        assert_eq!(embedding_dim(b"{\"embedding_dim\":8,"), Some(8));
        assert_eq!(embedding_dim(b"{\"data\": [], \"matrix\": \""), None);
        assert_eq!(embedding_dim(b"{\"embedding_dim\": \"x\"}"), None);
    }

    #[test]
    fn a_deleted_row_removes_whole_bytes_from_the_matrix() {
        let rows: Vec<Vec<u8>> = (0..50u8).map(|r| vec![r; 64]).collect();
        let make = |rows: &[Vec<u8>]| {
            let text = ENGINE.encode(rows.concat());
            format!("{{\"data\": [], \"matrix\": \"{text}\"}}").into_bytes()
        };
        let (_, found, before, _) = split(&make(&rows), 4096);
        let mut fewer = rows.clone();
        fewer.remove(7);
        let (_, _, after, _) = split(&make(&fewer), 4096);
        assert!(found);
        assert_eq!(&before[..7 * 64], &after[..7 * 64]);
        assert_eq!(&before[8 * 64..], &after[7 * 64..]);
    }
}
