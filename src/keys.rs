//! Keys of an encrypted repository: the master key, the key objects that wrap it, and the
//! subkeys every chunk and object is sealed with. No primitive is made here: AES-256-GCM
//! comes from `ring`, HMAC-SHA256 from RustCrypto's `hmac` and `sha2`, keyed BLAKE3 from the
//! BLAKE3 team's `blake3`, Argon2id from RustCrypto's `argon2`.
//!
//! ```text
//! master key    data key (32 bytes) | id key (32 bytes) | chunker seed (u64), random per
//!               repository (or imported from a key export), never stored in the clear
//! keys/<id>     a key object: JSON with the Argon2id parameters and salt in the clear, and the
//!               master key sealed with AES-256-GCM under Argon2id(password, salt)
//! chunk id      BLAKE3 keyed with BLAKE3-derive_key("lightrag-backup 2026-12-07 chunk id",
//!               id key) over the plaintext (format 6, `blake3-keyed`), or HMAC-SHA256(id key,
//!               plaintext) (format 5, `hmac-sha256`, kept by the repositories made with it):
//!               either way a bucket reader cannot test for known content. The config names
//!               which ([`ChunkIds`]); keyed BLAKE3 is a PRF like HMAC-SHA256 and runs at
//!               2.7 GB/s on a 4 KiB matrix row here against HMAC-SHA256's 1.5 (SHA-NI)
//! chunk key     HMAC-SHA256(data key, "chunk" | salt): a salt per encoder (one per worker
//!               thread of a snapshot, renewed every 2^20 chunks), stored before each sealed
//!               chunk so a ranged read of one chunk finds its key: its high 32 bits are the
//!               tag of the key it is under (0: the master key, else a graph's own key, see
//!               `graph_keys.rs`), its low 32 bits random; with random 96-bit nonces, at most
//!               2^20 messages per key (NIST SP 800-38D allows 2^32), the key derived once
//!               per encoder, not once per chunk
//! graph key     a graph's own data key, id key and chunker seed (`graphs/<id>/key`, sealed
//!               under the master key): its chunks and manifests are sealed under it
//! object key    HMAC-SHA256(data key, "object" | magic): one key per kind of object, random
//!               96-bit nonces; NIST SP 800-38D allows 2^32 messages per key, and a repository
//!               writes one manifest, index object or pack trailer per snapshot (or per 16 MiB
//!               pack): 2^32 of one kind is 4 billion snapshots, or 64 PiB of packs
//! ```
//!
//! Several key objects may wrap the same master key (one per password); changing a password
//! writes one and deletes another, never touching data.

use crate::error::{Error, Result};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
pub use ring::aead::NONCE_LEN;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::{Zeroize, Zeroizing};

/// The nonce and tag a sealed message carries: `nonce (12) | ciphertext | tag (16)`.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + 16;

/// What a key object says it is.
const KEY_FORMAT: &str = "lightrag-backup-key";
/// What a key export says it is.
const EXPORT_FORMAT: &str = "lightrag-backup-master-key";
/// The associated data of a wrapped master key.
const WRAP_AD: &[u8] = b"lightrag-backup master key v1";
/// The largest key object read (a real one is about 500 bytes).
pub const MAX_KEY_OBJECT: usize = 64 << 10;
/// At most this many key objects are tried per unlock (each costs one Argon2id derivation).
pub const MAX_KEYS: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// The context BLAKE3's key derivation turns the id key into the keyed-BLAKE3 chunk id key
/// with (BLAKE3's `derive_key` mode: a context fixed, unique to its use, and never secret).
const BLAKE3_ID_CONTEXT: &str = "lightrag-backup 2026-12-07 chunk id";

/// How a key makes chunk ids from plaintext: named in a repository's config (sealed) and in a
/// key export. Fixed for the life of a repository, like its chunker parameters: a chunk's id is
/// its name in the index, so two repositories share chunks only when they use the same key and
/// the same function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkIds {
    /// HMAC-SHA256(id key, plaintext): format 5.
    HmacSha256,
    /// BLAKE3 keyed with a key derived from the id key: format 6 on.
    Blake3Keyed,
}

impl ChunkIds {
    /// What new repositories use.
    pub const CURRENT: ChunkIds = ChunkIds::Blake3Keyed;

    /// The name the config and key exports carry.
    pub fn name(self) -> &'static str {
        match self {
            ChunkIds::HmacSha256 => "hmac-sha256",
            ChunkIds::Blake3Keyed => "blake3-keyed",
        }
    }

    /// The function a config or a key export names.
    ///
    /// # Errors
    /// `UnsupportedFormat`-like `Integrity` for a name this build does not know.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "hmac-sha256" => Ok(ChunkIds::HmacSha256),
            "blake3-keyed" => Ok(ChunkIds::Blake3Keyed),
            other => Err(Error::integrity(format!(
                "chunk ids are made with {other:?}, which this build does not know (it knows hmac-sha256 and blake3-keyed): use a newer lightrag-backup"
            ))),
        }
    }
}

/// A repository's master key. Zeroed when dropped; never printed (`Debug` shows nothing).
pub struct MasterKey {
    data: [u8; 32],
    id: [u8; 32],
    chunker_seed: u64,
    /// HMAC states keyed once, cloned per use (keying costs two SHA-256 blocks).
    data_mac: HmacSha256,
    id_mac: HmacSha256,
    /// How chunk ids are made, and the keyed-BLAKE3 key when they are made with it.
    ids: ChunkIds,
    id_blake3: [u8; 32],
    /// Random, per instance: see [`MasterKey::cache_tag`].
    cache_tag: u64,
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.data.zeroize();
        self.id.zeroize();
        self.id_blake3.zeroize();
        self.chunker_seed.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    fn from_parts(data: [u8; 32], id: [u8; 32], chunker_seed: u64, ids: ChunkIds) -> Self {
        MasterKey {
            data_mac: HmacSha256::new_from_slice(&data).expect("HMAC takes any key length"),
            id_mac: HmacSha256::new_from_slice(&id).expect("HMAC takes any key length"),
            ids,
            id_blake3: blake3::derive_key(BLAKE3_ID_CONTEXT, &id),
            data,
            id,
            // FastCDC treats a zero seed as "no seed".
            chunker_seed: chunker_seed.max(1),
            cache_tag: rand::random(),
        }
    }

    /// A new random master key (from the operating system's generator), making chunk ids
    /// the way new repositories do.
    pub fn generate() -> Result<Self> {
        Self::generate_with(ChunkIds::CURRENT)
    }

    /// A new random key making chunk ids with `ids` (a graph key takes its repository's).
    pub fn generate_with(ids: ChunkIds) -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 72]);
        getrandom(&mut bytes[..])?;
        Ok(Self::from_bytes(&bytes, ids))
    }

    /// The same key making chunk ids with `ids` (a key object wraps the key alone; the
    /// repository's config says how its ids are made).
    pub fn with_ids(&self, ids: ChunkIds) -> Self {
        Self::from_bytes(&self.to_bytes(), ids)
    }

    /// How this key makes chunk ids.
    pub fn ids(&self) -> ChunkIds {
        self.ids
    }

    fn from_bytes(bytes: &[u8; 72], ids: ChunkIds) -> Self {
        let mut data = [0u8; 32];
        let mut id = [0u8; 32];
        data.copy_from_slice(&bytes[..32]);
        id.copy_from_slice(&bytes[32..64]);
        let seed = u64::from_le_bytes(bytes[64..].try_into().expect("8 bytes"));
        let key = Self::from_parts(data, id, seed, ids);
        data.zeroize();
        id.zeroize();
        key
    }

    fn to_bytes(&self) -> Zeroizing<[u8; 72]> {
        let mut out = Zeroizing::new([0u8; 72]);
        out[..32].copy_from_slice(&self.data);
        out[32..64].copy_from_slice(&self.id);
        out[64..].copy_from_slice(&self.chunker_seed.to_le_bytes());
        out
    }

    /// The key as base64 (data key | id key | chunker seed), for a graph key object sealed
    /// under the master key.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&self.to_bytes()[..]))
    }

    /// A key written by [`MasterKey::to_base64`], making chunk ids with `ids` (its
    /// repository's).
    ///
    /// # Errors
    /// `InvalidInput` when it is not one.
    pub fn from_base64(text: &str, ids: ChunkIds) -> Result<Self> {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| Error::invalid("a key is not base64"))?,
        );
        let bytes: &[u8; 72] = bytes[..]
            .try_into()
            .map_err(|_| Error::invalid("a key is not 72 bytes"))?;
        Ok(Self::from_bytes(bytes, ids))
    }

    /// The keyed id of a chunk (see [`ChunkIds`]).
    pub fn chunk_id(&self, data: &[u8]) -> [u8; 32] {
        match self.ids {
            ChunkIds::Blake3Keyed => blake3::keyed_hash(&self.id_blake3, data).into(),
            ChunkIds::HmacSha256 => {
                let mut mac = self.id_mac.clone();
                mac.update(data);
                mac.finalize().into_bytes().into()
            }
        }
    }

    /// The secret seed of the content-defined chunker (never zero).
    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// The content-defined chunker's gear table: 256 secret 64-bit values,
    /// HMAC-SHA256(id key, "chunker gear" | seed | block) cut into words. FastCDC's rolling
    /// hash adds one gear value per byte, so with a secret table where a file is cut depends
    /// on the key (a whole random table, not the public table XORed with a seed).
    pub fn chunker_gear(&self) -> Box<[u64; 256]> {
        let mut table = Box::new([0u64; 256]);
        for (block, words) in table.chunks_mut(4).enumerate() {
            let mut mac = self.id_mac.clone();
            mac.update(b"chunker gear");
            mac.update(&self.chunker_seed.to_le_bytes());
            mac.update(&(block as u32).to_le_bytes());
            let out = mac.finalize().into_bytes();
            for (word, bytes) in words.iter_mut().zip(out.chunks(8)) {
                *word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
            }
        }
        table
    }

    /// A subkey of the data key: HMAC-SHA256(data key, label | 0 | context).
    fn subkey(&self, label: &[u8], context: &[u8]) -> LessSafeKey {
        let mut mac = self.data_mac.clone();
        mac.update(label);
        mac.update(&[0]);
        mac.update(context);
        let mut key: [u8; 32] = mac.finalize().into_bytes().into();
        let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key"));
        key.zeroize();
        sealing
    }

    /// The key chunks of `salt` are sealed with (see the module documentation).
    pub fn chunk_key(&self, salt: u64) -> LessSafeKey {
        self.subkey(b"chunk", &salt.to_le_bytes())
    }

    /// A tag telling this key apart from other keys in this process (for caches of subkeys).
    pub fn cache_tag(&self) -> u64 {
        self.cache_tag
    }

    /// The key objects of one kind (named by their magic) are sealed with.
    pub fn object_key(&self, magic: &[u8]) -> LessSafeKey {
        self.subkey(b"object", magic)
    }

    /// A public fingerprint of the key: equal for repositories that share their master key
    /// and their chunk id function (and so can take each other's chunks as stored), unrelated
    /// otherwise.
    pub fn fingerprint(&self) -> String {
        let mut mac = self.id_mac.clone();
        mac.update(b"lightrag-backup key fingerprint");
        if self.ids != ChunkIds::HmacSha256 {
            // Format 5 fingerprints stay as they were.
            mac.update(b" ");
            mac.update(self.ids.name().as_bytes());
        }
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The master key as a key export (JSON): whoever holds it reads everything.
    pub fn export(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        // Version 2 names its chunk id function; a build that knows only version 1 (which
        // means HMAC-SHA256) refuses it instead of making ids another way.
        let hmac = self.ids == ChunkIds::HmacSha256;
        let export = KeyExport {
            format: EXPORT_FORMAT.to_string(),
            version: if hmac { 1 } else { 2 },
            data_key: b64.encode(self.data),
            id_key: b64.encode(self.id),
            chunker_seed: format!("{:016x}", self.chunker_seed),
            chunk_ids: (!hmac).then(|| self.ids.name().to_string()),
        };
        serde_json::to_string_pretty(&export).expect("an export serialises")
    }

    /// Read a key export made by [`MasterKey::export`].
    ///
    /// # Errors
    /// `InvalidInput` for anything else.
    pub fn import(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid(format!("not a lightrag-backup key export: {why}"));
        let export: KeyExport =
            serde_json::from_str(text.trim()).map_err(|e| bad(&e.to_string()))?;
        let ids = match (export.format.as_str(), export.version, &export.chunk_ids) {
            (EXPORT_FORMAT, 1, None) => ChunkIds::HmacSha256,
            (EXPORT_FORMAT, 2, Some(name)) => ChunkIds::parse(name)
                .map_err(|_| bad(&format!("unknown chunk id function {name:?}")))?,
            _ => return Err(bad("unknown format or version")),
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let key32 = |text: &str, what: &str| -> Result<[u8; 32]> {
            let bytes = Zeroizing::new(b64.decode(text).map_err(|_| bad(what))?);
            bytes[..].try_into().map_err(|_| bad(what))
        };
        let data = key32(&export.data_key, "data_key is not 32 bytes of base64")?;
        let id = key32(&export.id_key, "id_key is not 32 bytes of base64")?;
        let seed = u64::from_str_radix(&export.chunker_seed, 16)
            .map_err(|_| bad("chunker_seed is not 16 hex digits"))?;
        Ok(Self::from_parts(data, id, seed, ids))
    }
}

#[derive(Serialize, Deserialize)]
struct KeyExport {
    format: String,
    version: u32,
    data_key: String,
    id_key: String,
    chunker_seed: String,
    /// Version 2: how chunk ids are made ([`ChunkIds::name`]); version 1 means `hmac-sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunk_ids: Option<String>,
}

/// Fill `out` from the operating system's random generator.
fn getrandom(out: &mut [u8]) -> Result<()> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(out)
        .map_err(|_| Error::integrity("the operating system's random generator failed"))
}

/// Seal `plain` under `key` with a random nonce, appending `nonce | ciphertext | tag` to `out`.
pub fn seal_into(key: &LessSafeKey, ad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
    out.reserve(SEAL_OVERHEAD + plain.len());
    let at = begin_sealed(out);
    out.extend_from_slice(plain);
    seal_after(key, ad, out, at);
}

/// Start a message sealed in place at the end of `out`: reserves its nonce and returns where
/// it begins. Append the plaintext to `out`, then call [`seal_after`]: the plaintext is
/// written once, where its ciphertext will be.
pub fn begin_sealed(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; NONCE_LEN]);
    at
}

/// Seal, in place, the plaintext appended to `out` after [`begin_sealed`] returned `at`, under
/// `key` with a random nonce: `out[at..]` becomes `nonce | ciphertext | tag`.
pub fn seal_after(key: &LessSafeKey, ad: &[u8], out: &mut Vec<u8>, at: usize) {
    let nonce: [u8; NONCE_LEN] = rand::random();
    out[at..at + NONCE_LEN].copy_from_slice(&nonce);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(ad),
            &mut out[at + NONCE_LEN..],
        )
        .expect("a message under 64 GiB seals");
    out.extend_from_slice(tag.as_ref());
}

/// Open `nonce | ciphertext | tag` in place; returns the plaintext's length (at the start of
/// `sealed[NONCE_LEN..]`). `None` when it is not authentic (damaged, altered, moved, or sealed
/// with another key).
pub fn open_in_place(key: &LessSafeKey, ad: &[u8], sealed: &mut [u8]) -> Option<usize> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    key.open_in_place(nonce, Aad::from(ad), rest)
        .ok()
        .map(|plain| plain.len())
}

/// Open a sealed message into a new buffer (see [`open_in_place`]).
pub fn open(key: &LessSafeKey, ad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let mut buffer = sealed.to_vec();
    let len = open_in_place(key, ad, &mut buffer)?;
    buffer.drain(..NONCE_LEN);
    buffer.truncate(len);
    Some(buffer)
}

/// Argon2id parameters of a key object, stored with it in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Always `argon2id`.
    pub algorithm: String,
    /// Argon2 version (19 = 0x13).
    pub version: u32,
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// 16 random bytes, base64.
    pub salt: String,
}

/// The memory a key object may ask for: a hostile one cannot make an unlock exhaust the
/// machine (1 GiB; the default is 19 MiB).
const MAX_KDF_MEMORY_KIB: u32 = 1 << 20;
/// The passes a key object may ask for (the default is 2).
const MAX_KDF_ITERATIONS: u32 = 64;

impl KdfParams {
    /// The defaults: Argon2id with 19 MiB, 2 passes, 1 lane (the OWASP Password Storage Cheat
    /// Sheet's first Argon2id configuration), a new random salt: about 30 ms on the bench
    /// machine, paid by every process that opens the repository (RFC 9106's 64 MiB and 3
    /// passes took 0.14-0.19 s, most of what encryption cost a CLI command). Parameters are
    /// stored with each key object, so stronger ones can be used per key.
    pub fn new_default() -> Result<Self> {
        let mut salt = [0u8; 16];
        getrandom(&mut salt)?;
        Ok(KdfParams {
            algorithm: "argon2id".to_string(),
            version: 0x13,
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            salt: base64::engine::general_purpose::STANDARD.encode(salt),
        })
    }

    fn argon2(&self) -> Result<argon2::Argon2<'static>> {
        let bad = |why: String| {
            Error::integrity(format!("key object has unusable KDF parameters: {why}"))
        };
        if self.algorithm != "argon2id" || self.version != 0x13 {
            return Err(bad(format!("{} version {}", self.algorithm, self.version)));
        }
        if self.memory_kib > MAX_KDF_MEMORY_KIB || self.iterations > MAX_KDF_ITERATIONS {
            return Err(bad(format!(
                "{} KiB and {} passes, more than this build allows ({MAX_KDF_MEMORY_KIB} KiB, {MAX_KDF_ITERATIONS} passes)",
                self.memory_kib, self.iterations
            )));
        }
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|e| bad(e.to_string()))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    /// The key `password` derives under these parameters. Derivations are remembered for the
    /// life of the process (keyed by the parameters and the password's SHA-256), so a server
    /// or a test run that opens one repository many times pays Argon2id once.
    fn derive(&self, password: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        use sha2::Digest;
        /// (parameters as JSON, SHA-256 of the password) -> derived key.
        type Derived = HashMap<(String, [u8; 32]), [u8; 32]>;
        static DERIVED: Mutex<Option<Derived>> = Mutex::new(None);
        let params_text = serde_json::to_string(self).expect("parameters serialise");
        let cache_key = (params_text, <[u8; 32]>::from(Sha256::digest(password)));
        if let Some(known) = DERIVED
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|cache| cache.get(&cache_key))
        {
            return Ok(Zeroizing::new(*known));
        }
        let salt = base64::engine::general_purpose::STANDARD
            .decode(&self.salt)
            .map_err(|_| Error::integrity("key object has a salt that is not base64"))?;
        let mut out = Zeroizing::new([0u8; 32]);
        let argon2 = self.argon2()?;
        let memory = MappedBlocks::new(argon2.params().block_count())?;
        argon2
            .hash_password_into_with_memory(password, &salt, &mut out[..], memory)
            .map_err(|e| Error::integrity(format!("key derivation failed: {e}")))?;
        let mut cache = DERIVED.lock().unwrap();
        let cache = cache.get_or_insert_with(HashMap::new);
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(cache_key, *out);
        Ok(out)
    }
}

/// Argon2id's working memory (19 MiB by default), mapped from the kernel rather than taken
/// from the allocator, and zeroed and unmapped when dropped. glibc raises its mmap threshold
/// to the size of a mapped block it frees: 19 MiB allocated and freed through `malloc` left
/// every later buffer of the process under 19 MiB (a snapshot's windows, a restore's read
/// buffers) on the heap, whose pages stay, and a CLI command peaked 15-20 MB higher encrypted.
struct MappedBlocks {
    blocks: std::ptr::NonNull<argon2::Block>,
    len: usize,
}

impl MappedBlocks {
    fn new(len: usize) -> Result<Self> {
        let bytes = len
            .checked_mul(argon2::Block::SIZE)
            .filter(|&bytes| bytes > 0)
            .ok_or_else(|| Error::integrity("key object asks for no memory or too much"))?;
        // SAFETY: a new private anonymous mapping, owned by this value until `drop` unmaps it;
        // no address is given, so nothing else is replaced.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(Error::integrity(format!(
                "cannot map {} MiB for the key derivation: {}",
                bytes >> 20,
                std::io::Error::last_os_error()
            )));
        }
        let blocks = std::ptr::NonNull::new(at.cast()).expect("mmap succeeded, so not null");
        Ok(MappedBlocks { blocks, len })
    }
}

impl AsMut<[argon2::Block]> for MappedBlocks {
    fn as_mut(&mut self) -> &mut [argon2::Block] {
        // SAFETY: the mapping holds `len` blocks, is page-aligned (a block needs 64 bytes),
        // starts zeroed (a block is 128 u64s, valid for any bits) and is borrowed mutably
        // through `&mut self` only.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.len) }
    }
}

impl Drop for MappedBlocks {
    fn drop(&mut self) {
        let bytes = self.len * argon2::Block::SIZE;
        // SAFETY: the mapping is `bytes` long and ours; nothing borrows it once we are dropped.
        unsafe {
            std::slice::from_raw_parts_mut(self.blocks.as_ptr().cast::<u8>(), bytes).zeroize();
            libc::munmap(self.blocks.as_ptr().cast(), bytes);
        }
    }
}

/// A key object (`keys/<id>`): the master key wrapped under a password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyObject {
    pub format: String,
    pub version: u32,
    pub created_at: String,
    pub hostname: String,
    pub username: String,
    pub kdf: KdfParams,
    /// `nonce | AES-256-GCM(master key) | tag`, base64.
    pub wrapped: String,
}

impl KeyObject {
    /// Wrap `master` under `password` with new parameters and salt; `hostname` says where
    /// (shown by `key list`).
    pub fn wrap(master: &MasterKey, password: &[u8], hostname: String) -> Result<Self> {
        let mut object = Self::wrap_with(master, password, KdfParams::new_default()?)?;
        object.hostname = hostname;
        Ok(object)
    }

    /// [`KeyObject::wrap`] with given parameters (tests use cheap ones).
    pub fn wrap_with(master: &MasterKey, password: &[u8], kdf: KdfParams) -> Result<Self> {
        let derived = kdf.derive(password)?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &derived[..]).expect("32 bytes"));
        let mut wrapped = Vec::new();
        seal_into(&key, WRAP_AD, &master.to_bytes()[..], &mut wrapped);
        Ok(KeyObject {
            format: KEY_FORMAT.to_string(),
            version: 1,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            hostname: String::new(),
            username: std::env::var("USER").unwrap_or_default(),
            kdf,
            wrapped: base64::engine::general_purpose::STANDARD.encode(wrapped),
        })
    }

    /// The master key, if `password` opens this key object (`Ok(None)` when it does not),
    /// making chunk ids the format 5 way until its repository's config says otherwise
    /// ([`MasterKey::with_ids`]).
    ///
    /// # Errors
    /// `Integrity` for a key object this build cannot use (bad parameters or encoding).
    pub fn unwrap(&self, password: &[u8]) -> Result<Option<MasterKey>> {
        if self.format != KEY_FORMAT || self.version != 1 {
            return Err(Error::integrity(format!(
                "not a key object this build reads ({} version {})",
                self.format, self.version
            )));
        }
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&self.wrapped)
            .map_err(|_| Error::integrity("key object's wrapped key is not base64"))?;
        let derived = self.kdf.derive(password)?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &derived[..]).expect("32 bytes"));
        let Some(plain) = open(&key, WRAP_AD, &sealed).map(Zeroizing::new) else {
            return Ok(None);
        };
        let bytes: &[u8; 72] = plain[..]
            .try_into()
            .map_err(|_| Error::integrity("key object wraps a key of the wrong length"))?;
        Ok(Some(MasterKey::from_bytes(bytes, ChunkIds::HmacSha256)))
    }

    /// Decode a key object's bytes.
    ///
    /// # Errors
    /// `Integrity` when they are not one.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        if bytes.len() > MAX_KEY_OBJECT {
            return Err(Error::integrity(format!("key object {what} is too large")));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| Error::integrity(format!("key object {what} cannot be read: {e}")))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a key object serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            ..KdfParams::new_default().unwrap()
        }
    }

    #[test]
    fn a_key_object_opens_with_its_password_only() {
        let master = MasterKey::generate().unwrap();
        let object = KeyObject::wrap_with(&master, b"right", cheap()).unwrap();
        let decoded = KeyObject::decode(&object.encode(), "k").unwrap();
        let opened = decoded.unwrap(b"right").unwrap().expect("opens");
        // A key object wraps the key alone; its repository's config names the id function.
        assert_eq!(opened.ids(), ChunkIds::HmacSha256);
        let opened = opened.with_ids(master.ids());
        assert_eq!(opened.fingerprint(), master.fingerprint());
        assert_eq!(opened.chunk_id(b"x"), master.chunk_id(b"x"));
        assert!(decoded.unwrap(b"wrong").unwrap().is_none());
    }

    #[test]
    fn an_export_round_trips_and_two_keys_differ() {
        let master = MasterKey::generate().unwrap();
        let again = MasterKey::import(&master.export()).unwrap();
        assert_eq!(again.fingerprint(), master.fingerprint());
        assert_eq!(again.chunker_seed(), master.chunker_seed());
        let other = MasterKey::generate().unwrap();
        assert_ne!(other.chunk_id(b"same"), master.chunk_id(b"same"));
        assert!(MasterKey::import("{}").is_err());
    }

    #[test]
    fn the_chunk_id_function_is_part_of_the_key() {
        let master = MasterKey::generate().unwrap();
        assert_eq!(master.ids(), ChunkIds::Blake3Keyed);
        let hmac = master.with_ids(ChunkIds::HmacSha256);
        // The same secret makes other ids another way, so the two do not share chunks.
        assert_ne!(hmac.chunk_id(b"same"), master.chunk_id(b"same"));
        assert_ne!(hmac.fingerprint(), master.fingerprint());
        // HMAC-SHA256 ids are what format 5 made: RFC 2104 over the id key.
        let mut mac = HmacSha256::new_from_slice(&master.id).unwrap();
        mac.update(b"same");
        assert_eq!(hmac.chunk_id(b"same")[..], mac.finalize().into_bytes()[..]);
        // Keyed BLAKE3 under a key derived from the id key, never the id key itself.
        let derived = blake3::derive_key(BLAKE3_ID_CONTEXT, &master.id);
        assert_eq!(
            master.chunk_id(b"same"),
            *blake3::keyed_hash(&derived, b"same").as_bytes()
        );
        assert_ne!(
            master.chunk_id(b"same"),
            *blake3::keyed_hash(&master.id, b"same").as_bytes()
        );
        // An export carries the function: version 2 names it, version 1 meant HMAC-SHA256.
        let export = master.export();
        assert!(export.contains("\"version\": 2") && export.contains("blake3-keyed"));
        let again = MasterKey::import(&export).unwrap();
        assert_eq!(again.ids(), ChunkIds::Blake3Keyed);
        assert_eq!(again.chunk_id(b"same"), master.chunk_id(b"same"));
        let old = hmac.export();
        assert!(old.contains("\"version\": 1") && !old.contains("chunk_ids"));
        let again = MasterKey::import(&old).unwrap();
        assert_eq!(again.ids(), ChunkIds::HmacSha256);
        assert_eq!(again.fingerprint(), hmac.fingerprint());
        let unknown = export.replace("blake3-keyed", "md5");
        assert!(MasterKey::import(&unknown).is_err());
        let mislabelled = export.replace("\"version\": 2", "\"version\": 1");
        assert!(MasterKey::import(&mislabelled).is_err());
        assert!(ChunkIds::parse("md5").is_err());
    }

    #[test]
    fn the_key_derived_in_mapped_memory_is_argon2ids_own() {
        let params = KdfParams {
            memory_kib: 2048,
            iterations: 2,
            ..KdfParams::new_default().unwrap()
        };
        let salt = base64::engine::general_purpose::STANDARD
            .decode(&params.salt)
            .unwrap();
        let mut expected = [0u8; 32];
        params
            .argon2()
            .unwrap()
            .hash_password_into(b"a password", &salt, &mut expected)
            .unwrap();
        assert_eq!(*params.derive(b"a password").unwrap(), expected);
        assert_ne!(*params.derive(b"another password").unwrap(), expected);
    }

    #[test]
    fn hostile_kdf_parameters_are_refused_before_deriving() {
        let master = MasterKey::generate().unwrap();
        let mut object = KeyObject::wrap_with(&master, b"pw", cheap()).unwrap();
        object.kdf.memory_kib = u32::MAX;
        assert!(object.unwrap(b"pw").is_err());
    }

    #[test]
    fn sealing_binds_the_associated_data() {
        let master = MasterKey::generate().unwrap();
        let key = master.object_key(b"LRBM");
        let mut sealed = Vec::new();
        seal_into(&key, b"snapshots/g/1", b"plaintext", &mut sealed);
        assert_eq!(open(&key, b"snapshots/g/1", &sealed).unwrap(), b"plaintext");
        assert!(open(&key, b"snapshots/g/2", &sealed).is_none());
        assert!(open(&master.object_key(b"LRBI"), b"snapshots/g/1", &sealed).is_none());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(open(&key, b"snapshots/g/1", &flipped).is_none());
    }
}
