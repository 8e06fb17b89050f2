//! The machine's floor for backing up and restoring one LightRAG graph: what the least work any
//! tool must do with these bytes costs on this machine, stage by stage.
//!
//! Every stage runs over the graph's own bytes, in memory, on one core:
//! - read: the graph's files from the page cache (read once untimed first);
//! - chunk: content-defined cut points over the text (FastCDC, 64 KiB on average);
//! - decode / encode: the base64 of NanoVectorDB matrices to float32 rows and back;
//! - hash: keyed BLAKE3 of every chunk (64 KiB text chunks, 4 KiB matrix rows);
//! - compress / decompress: zstd level 3 of the text chunks (matrix rows do not compress);
//! - seal / open: AES-256-GCM of every stored chunk;
//! - write: the stored bytes to a new file past the page cache (`O_DIRECT`: device time, almost
//!   no CPU), and the graph's bytes to new files through it (what a restore must leave).
//!
//! A floor adds the CPU of the stages an operation cannot skip and spreads it over every core
//! (perfect parallelism, no process start, no format overhead): no tool does better.
//! - first backup: read + chunk + decode + hash + compress + seal, and the direct write's wall
//!   time when it is longer.
//! - backup after a change: read + chunk + decode + hash (the change's new chunks are a few
//!   percent: not counted).
//! - restore: read the stored bytes + open + decompress + hash + encode + write the graph.
//! - verify: read the stored bytes + open + decompress + hash.
//!
//! `cargo run --release --example floor -- GRAPH_DIR` prints JSON (stage seconds on one core,
//! floors in seconds, cores); `bench/run.py` puts it beside the measured times.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Graph {
    /// Bytes that are not matrix text, per file.
    text: Vec<Vec<u8>>,
    /// Base64 matrix text, per vector file.
    matrices: Vec<Vec<u8>>,
    bytes: u64,
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a graph folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Split a NanoVectorDB file into its text and its base64 matrix.
fn split(bytes: Vec<u8>) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = b"\"matrix\": \"";
    let Some(start) = bytes.windows(key.len()).rposition(|w| w == key) else {
        return (bytes, None);
    };
    let start = start + key.len();
    let Some(len) = bytes[start..].iter().position(|&b| b == b'"') else {
        return (bytes, None);
    };
    let matrix = bytes[start..start + len].to_vec();
    let mut text = bytes[..start].to_vec();
    text.extend_from_slice(&bytes[start + len..]);
    (text, Some(matrix))
}

fn seconds(work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    started.elapsed().as_secs_f64()
}

/// CPU seconds (user + system) of this process.
fn cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: floor GRAPH_DIR"));
    let paths = files(&dir);
    let mut buffer = Vec::new();
    for path in &paths {
        buffer.clear();
        std::fs::File::open(path)
            .unwrap()
            .read_to_end(&mut buffer)
            .unwrap();
    }
    let mut stage: Vec<(&str, f64)> = Vec::new();
    let mut scratch = vec![0u8; 1 << 20];
    stage.push((
        "read",
        seconds(|| {
            for path in &paths {
                let mut file = std::fs::File::open(path).unwrap();
                while file.read(&mut scratch).unwrap() > 0 {}
            }
        }),
    ));
    let mut graph = Graph {
        text: Vec::new(),
        matrices: Vec::new(),
        bytes: 0,
    };
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        graph.bytes += bytes.len() as u64;
        let (text, matrix) = split(bytes);
        graph.text.push(text);
        graph.matrices.extend(matrix);
    }

    let params = lightrag_backup::format::ChunkerParams::default();
    let mut cuts = Vec::new();
    stage.push((
        "chunk",
        seconds(|| {
            for text in &graph.text {
                cuts.push(lightrag_backup::chunker::cut_points(text, params, None));
            }
        }),
    ));
    let text_chunks: Vec<&[u8]> = graph
        .text
        .iter()
        .zip(&cuts)
        .flat_map(|(text, cuts)| {
            let mut start = 0;
            cuts.iter().map(move |&end| {
                let chunk = &text[start..end];
                start = end;
                chunk
            })
        })
        .collect();

    let mut rows_bytes: Vec<Vec<u8>> = Vec::new();
    stage.push((
        "decode",
        seconds(|| {
            for matrix in &graph.matrices {
                rows_bytes.push(
                    base64_simd::STANDARD
                        .decode_to_vec(matrix)
                        .expect("base64 matrix"),
                );
            }
        }),
    ));
    let rows: Vec<&[u8]> = rows_bytes.iter().flat_map(|m| m.chunks(4096)).collect();

    let key = [7u8; 32];
    let mut sink = 0u8;
    stage.push((
        "hash",
        seconds(|| {
            for chunk in text_chunks.iter().chain(&rows) {
                sink ^= blake3::keyed_hash(&key, chunk).as_bytes()[0];
            }
        }),
    ));

    // Each primitive works into a buffer reused from call to call, as a tool's would.
    let mut compressor = zstd::bulk::Compressor::new(3).unwrap();
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(1 << 20));
    stage.push((
        "compress",
        seconds(|| {
            for chunk in &text_chunks {
                out.clear();
                compressor.compress_to_buffer(chunk, &mut out).unwrap();
                sink ^= out[0];
            }
        }),
    ));
    let compressed: Vec<Vec<u8>> = text_chunks
        .iter()
        .map(|chunk| compressor.compress(chunk).unwrap())
        .collect();

    let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    // Room for the tag, so that opening does not grow (copy) them.
    let mut stored: Vec<Vec<u8>> = compressed
        .iter()
        .map(|c| c.as_slice())
        .chain(rows.iter().copied())
        .map(|c| {
            let mut v = Vec::with_capacity(c.len() + 16);
            v.extend_from_slice(c);
            v
        })
        .collect();
    let stored_bytes: u64 = stored.iter().map(|s| s.len() as u64 + 28).sum();
    let mut tags = Vec::with_capacity(stored.len());
    stage.push((
        "seal",
        seconds(|| {
            for (i, chunk) in stored.iter_mut().enumerate() {
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
                tags.push(
                    sealing
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(&key),
                            chunk,
                        )
                        .unwrap(),
                );
            }
        }),
    ));
    stage.push((
        "open",
        seconds(|| {
            for (i, (chunk, tag)) in stored.iter_mut().zip(&tags).enumerate() {
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
                chunk.extend_from_slice(tag.as_ref());
                sealing
                    .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&key), chunk)
                    .unwrap();
            }
        }),
    ));
    let mut decompressor = zstd::bulk::Decompressor::new().unwrap();
    out.reserve(text_chunks.iter().map(|c| c.len()).max().unwrap_or(0));
    stage.push((
        "decompress",
        seconds(|| {
            for chunk in &compressed {
                out.clear();
                decompressor.decompress_to_buffer(chunk, &mut out).unwrap();
                sink ^= out[0];
            }
        }),
    ));
    let mut text = Vec::with_capacity(
        rows_bytes
            .iter()
            .map(|m| base64_simd::STANDARD.encoded_length(m.len()))
            .max()
            .unwrap_or(0),
    );
    stage.push((
        "encode",
        seconds(|| {
            for matrix in &rows_bytes {
                text.clear();
                text.resize(base64_simd::STANDARD.encoded_length(matrix.len()), 0);
                let encoded =
                    base64_simd::STANDARD.encode(matrix, base64_simd::Out::from_slice(&mut text));
                sink ^= encoded[0];
            }
        }),
    ));
    std::hint::black_box(sink);

    // Writes: the stored bytes past the page cache (as a backup's packs), the graph's bytes
    // through it (as a restore must leave them for LightRAG to read).
    let folder = tempfile::tempdir_in(dir.parent().unwrap_or(&dir)).unwrap();
    let pack: Vec<u8> = stored.iter().flatten().copied().collect();
    let (direct_wall, direct_cpu) = timed_cpu(|| write_direct(&folder.path().join("packs"), &pack));
    drop(pack);
    sync();
    let originals: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let (cache_wall, cache_cpu) = timed_cpu(|| {
        for (n, bytes) in originals.iter().enumerate() {
            let mut file =
                std::fs::File::create(folder.path().join(format!("restored-{n}"))).unwrap();
            file.write_all(bytes).unwrap();
        }
    });
    drop(originals);
    let read_all = seconds_of(&stage, "read");

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let read_stored = read_all * stored_bytes as f64 / graph.bytes as f64;
    let sum = |names: &[&str]| names.iter().map(|n| seconds_of(&stage, n)).sum::<f64>();
    let first_cpu = sum(&["read", "chunk", "decode", "hash", "compress", "seal"]) + direct_cpu;
    let change_cpu = sum(&["read", "chunk", "decode", "hash"]);
    let restore_cpu = read_stored + sum(&["open", "decompress", "hash", "encode"]) + cache_cpu;
    let verify_cpu = read_stored + sum(&["open", "decompress", "hash"]);
    let floors = [
        ("first backup", (first_cpu / cores).max(direct_wall)),
        ("backup after change", change_cpu / cores),
        ("restore", (restore_cpu / cores).max(cache_wall)),
        ("verify (read all data)", verify_cpu / cores),
    ];
    let stages: Vec<String> = stage
        .iter()
        .map(|(name, s)| format!("\"{name}\": {s:.4}"))
        .chain([
            format!("\"write past the page cache (cpu)\": {direct_cpu:.4}"),
            format!("\"write past the page cache (wall)\": {direct_wall:.4}"),
            format!("\"write through the page cache (cpu)\": {cache_cpu:.4}"),
        ])
        .collect();
    let floors: Vec<String> = floors
        .iter()
        .map(|(name, s)| format!("\"{name}\": {s:.4}"))
        .collect();
    println!(
        "{{\"graph_bytes\": {}, \"stored_bytes\": {stored_bytes}, \"text_bytes\": {}, \"cores\": {cores}, \"stages\": {{{}}}, \"floors\": {{{}}}}}",
        graph.bytes,
        graph.text.iter().map(|t| t.len()).sum::<usize>(),
        stages.join(", "),
        floors.join(", ")
    );
}

fn seconds_of(stage: &[(&str, f64)], name: &str) -> f64 {
    stage.iter().find(|(n, _)| *n == name).map_or(0.0, |s| s.1)
}

fn timed_cpu(work: impl FnOnce()) -> (f64, f64) {
    let (started, cpu_before) = (Instant::now(), cpu());
    work();
    (started.elapsed().as_secs_f64(), cpu() - cpu_before)
}

fn sync() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
}

/// Write `data` to a new file with `O_DIRECT` in 4 MiB aligned steps (buffered when the file
/// system refuses direct I/O).
fn write_direct(path: &Path, data: &[u8]) {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    const STEP: usize = 4 << 20;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path);
    let Ok(file) = file else {
        std::fs::write(path, data).unwrap();
        return;
    };
    let mut stage = vec![0u8; STEP + 4096];
    let start = stage.as_ptr().align_offset(4096);
    let aligned = &mut stage[start..start + STEP];
    let mut offset = 0;
    while offset < data.len() {
        let take = (data.len() - offset).min(STEP);
        let padded = take.div_ceil(4096) * 4096;
        aligned[..take].copy_from_slice(&data[offset..offset + take]);
        aligned[take..padded].fill(0);
        file.write_all_at(&aligned[..padded], offset as u64)
            .unwrap();
        offset += take;
    }
}
