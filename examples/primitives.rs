//! Throughput of the primitives a chunk goes through, on this machine, one core: what a chunk
//! id costs (SHA-256 for plain repositories, HMAC-SHA256 for format 5 encrypted ones, keyed
//! BLAKE3 from format 6) and what sealing costs (AES-256-GCM), over 4 KiB (a dim-1024 matrix
//! row) and 64 KiB (the average text chunk) inputs.
//!
//! `cargo run --release --example primitives` (numbers in BENCHMARKS.md).

use hmac::{Hmac, KeyInit, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::{Digest, Sha256};
use std::time::Instant;

/// Bytes put through each primitive per input size.
const TOTAL: usize = 256 << 20;

fn rate(work: impl FnMut()) -> f64 {
    let mut work = work;
    let started = Instant::now();
    work();
    TOTAL as f64 / 1e9 / started.elapsed().as_secs_f64()
}

fn main() {
    let key = [7u8; 32];
    println!("| | 4 KiB | 64 KiB |\n|---|---|---|");
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("SHA-256 (`sha2`)", vec![]),
        ("HMAC-SHA256 (`hmac` + `sha2`)", vec![]),
        ("keyed BLAKE3 (`blake3`)", vec![]),
        ("AES-256-GCM seal (`ring`)", vec![]),
    ];
    for size in [4096usize, 65536] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let n = TOTAL / size;
        let mut sink = 0u8;
        rows[0].1.push(rate(|| {
            for _ in 0..n {
                sink ^= Sha256::digest(&data)[0];
            }
        }));
        let mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        rows[1].1.push(rate(|| {
            for _ in 0..n {
                let mut mac = mac.clone();
                mac.update(&data);
                sink ^= mac.finalize().into_bytes()[0];
            }
        }));
        rows[2].1.push(rate(|| {
            for _ in 0..n {
                sink ^= blake3::keyed_hash(&key, &data).as_bytes()[0];
            }
        }));
        let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32 bytes"));
        let mut buffer = data.clone();
        rows[3].1.push(rate(|| {
            for i in 0..n {
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let tag = sealing
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&key),
                        &mut buffer,
                    )
                    .expect("seals");
                sink ^= tag.as_ref()[0];
            }
        }));
        std::hint::black_box(sink);
    }
    for (name, rates) in rows {
        println!("| {name} | {:.2} GB/s | {:.2} GB/s |", rates[0], rates[1]);
    }
}
