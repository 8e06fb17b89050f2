//! The one layer every chunk and every object passes through, in both directions: compression
//! and, in an encrypted repository, authenticated encryption. No operation compresses, seals,
//! opens or hashes a chunk on its own; each asks its repository's [`Codec`].
//!
//! ```text
//!                 plain repository                encrypted repository (format 5 on)
//! chunk id        SHA-256(plaintext)              keyed BLAKE3 (format 6) or HMAC-SHA256
//!                                                 (format 5) under the id key
//!                                                 (`keys::ChunkIds`)
//! chunk in pack   zstd frame                      salt | nonce | AES-256-GCM(zstd frame) | tag
//!                                                 key: chunk key(salt) of the key the salt's
//!                                                 tag names, associated data: id
//! object          MAGIC | version | zstd(msgpack) MAGIC | version | sealed zstd(msgpack)
//!                                                 key: object key(MAGIC), associated data:
//!                                                 MAGIC | version | its path ("" for index
//!                                                 objects and pack trailers, which are named
//!                                                 by the SHA-256 of their bytes)
//! JSON object     JSON                            "LRBJ" | version | sealed JSON, bound to
//!                                                 its path the same way
//! ```
//!
//! So a chunk cannot stand in for another (its key and associated data are its id, and its
//! plaintext is checked against the id), an object cannot be moved to another name or read
//! as another kind, and in an encrypted repository nothing unsealed is ever accepted: a
//! plaintext object written there by someone without the key is reported as damage.

use super::{
    decompress_bounded, limit_of, magic_name, BlobEntry, ObjectId, FORMAT_VERSION,
    MAX_METADATA_RATIO,
};
use crate::error::{Error, Result};
use crate::keys::{self, MasterKey, SEAL_OVERHEAD};
use ring::aead::LessSafeKey;
use serde::{de::DeserializeOwned, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The name objects carried between instances (pushed manifests and recovery points) are
/// bound to: they are decoded on arrival and stored again under their own names.
pub const TRANSPORT_NAME: &str = "transport";
/// The magic of a sealed JSON object (settings, graph claims, the prune lock).
const JSON_MAGIC: &[u8; 4] = b"LRBJ";
/// The magic pack trailers are sealed under.
const TRAILER_MAGIC: &[u8; 4] = b"LRBT";
/// zstd level of metadata objects.
const ZSTD_LEVEL_METADATA: i32 = 3;

/// Compression and encryption of one repository's chunks and objects. Cheap to clone.
///
/// In a repository with per-graph keys, a graph's codec ([`Codec::for_graph`]) writes that
/// graph's chunks and manifests under the graph's own key, and everything the repository needs
/// to find and check packs (index objects, pack trailers, recovery points, settings, ...)
/// under the master key. Every codec of a repository shares one [`KeyRing`], so any of them
/// opens a chunk of any graph whose key this process holds: a sealed chunk names its key by
/// the tag in the high 32 bits of its salt (0: the master key).
#[derive(Clone, Default)]
pub struct Codec {
    /// The key chunks and manifests are written with: the master key, or a graph's own key.
    keys: Option<Arc<MasterKey>>,
    /// The tag of `keys` (0 for the master key).
    tag: u32,
    /// The repository's master key.
    master: Option<Arc<MasterKey>>,
    /// The chunker's secret gear table (encrypted repositories).
    gear: Option<Arc<[u64; 256]>>,
    /// Graph keys (and shredded graphs) this process knows, by tag.
    ring: Arc<RwLock<KeyRing>>,
}

/// The graph keys a repository's codecs know, by tag, and the tags of shredded graphs.
#[derive(Default)]
pub struct KeyRing {
    keys: HashMap<u32, Vec<Arc<MasterKey>>>,
    /// Tag -> (graph id, when it was shredded).
    shredded: HashMap<u32, (String, String)>,
}

thread_local! {
    /// This thread's reusable decompression context.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    /// This thread's buffer for opening sealed chunks in place.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// This thread's chunk keys, newest first: (master key's cache tag, salt, key). A window
    /// of one pack's chunks holds the salts of the few encoders that filled it.
    static CHUNK_KEYS: std::cell::RefCell<Vec<(u64, u64, std::rc::Rc<LessSafeKey>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The salt before a sealed chunk.
const SALT_LEN: usize = 8;
/// What sealing adds to a chunk: salt, nonce and tag.
pub const CHUNK_SEAL_OVERHEAD: usize = SALT_LEN + SEAL_OVERHEAD;
/// Chunks an encoder seals under one key before it draws a new salt.
const CHUNKS_PER_KEY: u32 = 1 << 20;

/// The chunk key of `salt` under `keys`, from this thread's cache.
fn chunk_key(keys: &MasterKey, salt: u64) -> std::rc::Rc<LessSafeKey> {
    CHUNK_KEYS.with(|cell| {
        let mut cache = cell.borrow_mut();
        let tag = keys.cache_tag();
        if let Some(at) = cache.iter().position(|(t, s, _)| *t == tag && *s == salt) {
            let entry = cache.remove(at);
            let key = entry.2.clone();
            cache.insert(0, entry);
            return key;
        }
        let key = std::rc::Rc::new(keys.chunk_key(salt));
        cache.insert(0, (tag, salt, key.clone()));
        cache.truncate(16);
        key
    })
}

/// Seal `compressed` under the key of `salt` into `salt | nonce | ciphertext | tag`.
fn seal_chunk_with(key: &LessSafeKey, salt: u64, id: &ObjectId, compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compressed.len() + CHUNK_SEAL_OVERHEAD);
    out.extend_from_slice(&salt.to_le_bytes());
    keys::seal_into(key, &id.0, compressed, &mut out);
    out
}

fn with_decompressor<T>(
    entry: &BlobEntry,
    work: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<T>,
) -> Result<T> {
    DECOMPRESSOR
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new()?);
            }
            work(slot.as_mut().expect("set above"))
        })
        .map_err(|e| Error::integrity(format!("chunk {} cannot be decompressed: {e}", entry.id)))
}

fn not_authentic(what: &str) -> Error {
    Error::integrity(format!(
        "{what} is not authentic: damaged, altered, moved from another name, or sealed with another key"
    ))
}

impl Codec {
    /// The codec of an unencrypted repository.
    pub fn plain() -> Self {
        Codec::default()
    }

    /// The codec of a repository encrypted under `keys`.
    pub fn encrypted(keys: Arc<MasterKey>) -> Self {
        Codec {
            gear: Some(Arc::from(keys.chunker_gear())),
            master: Some(keys.clone()),
            keys: Some(keys),
            tag: 0,
            ring: Arc::default(),
        }
    }

    /// The codec of one graph with a key of its own (`tag`, never 0): its chunks (ids, chunker,
    /// sealing) and manifests under `key`, the rest under this codec's master key. The key
    /// joins the ring every codec of the repository opens chunks with.
    pub fn for_graph(&self, key: Arc<MasterKey>, tag: u32) -> Codec {
        self.learn_key(tag, key.clone());
        Codec {
            gear: Some(Arc::from(key.chunker_gear())),
            keys: Some(key),
            tag,
            master: self.master.clone(),
            ring: self.ring.clone(),
        }
    }

    /// Remember a graph key so chunks sealed under it open with any codec of the repository.
    pub fn learn_key(&self, tag: u32, key: Arc<MasterKey>) {
        let mut ring = self.ring.write().unwrap();
        let keys = ring.keys.entry(tag).or_default();
        if !keys.iter().any(|k| k.fingerprint() == key.fingerprint()) {
            keys.push(key);
        }
    }

    /// Remember that the graph of `tag` was shredded: its chunks are then reported as
    /// shredded, not as damage.
    pub fn learn_shredded(&self, tag: u32, graph_id: &str, at: &str) {
        let mut ring = self.ring.write().unwrap();
        ring.keys.remove(&tag);
        ring.shredded
            .insert(tag, (graph_id.to_string(), at.to_string()));
    }

    /// The tag of this codec's chunk key: 0 for the master key, a graph key's tag otherwise.
    pub fn key_tag(&self) -> u32 {
        self.tag
    }

    pub fn is_encrypted(&self) -> bool {
        self.keys.is_some()
    }

    /// The master key, in an encrypted repository.
    pub fn master_key(&self) -> Option<&Arc<MasterKey>> {
        self.master.as_ref()
    }

    /// The master key's public fingerprint (see [`MasterKey::fingerprint`]); `None` when
    /// unencrypted.
    pub fn fingerprint(&self) -> Option<String> {
        self.master.as_ref().map(|k| k.fingerprint())
    }

    /// Whether chunks stored under `other` open here as they are (same key, or both plain).
    pub fn shares_chunks_with(&self, other: &Codec) -> bool {
        self.fingerprint() == other.fingerprint()
    }

    /// The id of a chunk of plaintext `data`.
    pub fn chunk_id(&self, data: &[u8]) -> ObjectId {
        match &self.keys {
            Some(keys) => ObjectId(keys.chunk_id(data)),
            None => ObjectId::of(data),
        }
    }

    /// The content-defined chunker's gear table: secret in an encrypted repository, FastCDC's
    /// public one (`None`) otherwise.
    pub fn chunker_gear(&self) -> Option<&[u64; 256]> {
        self.gear.as_deref()
    }

    /// A chunk encoder for one worker thread (one compression context, reused).
    ///
    /// # Errors
    /// `Integrity` when zstd cannot start.
    pub fn chunk_encoder(&self, level: i32) -> Result<ChunkEncoder> {
        Ok(ChunkEncoder {
            codec: self.clone(),
            key: None,
            compressor: zstd::bulk::Compressor::new(level)
                .map_err(|e| Error::integrity(format!("cannot start zstd: {e}")))?,
            scratch: Vec::new(),
        })
    }

    /// Seal one compressed chunk for storing, under a key of its own salt (a copy when the
    /// repository is plain). Many chunks go through a [`ChunkEncoder`], which keeps its key.
    pub fn seal_chunk(&self, id: &ObjectId, compressed: &[u8]) -> Vec<u8> {
        match &self.keys {
            Some(keys) => {
                let salt = self.new_salt();
                seal_chunk_with(&keys.chunk_key(salt), salt, id, compressed)
            }
            None => compressed.to_vec(),
        }
    }

    /// A new salt for a chunk key of this codec: its key's tag, then 32 random bits.
    fn new_salt(&self) -> u64 {
        (u64::from(self.tag) << 32) | u64::from(rand::random::<u32>())
    }

    /// The keys that may have sealed a chunk with `salt` besides the one its tag names (see
    /// [`Codec::with_frame`]): other graph keys of the same tag, then this codec's key and the
    /// master key (chunks written before tags, or a graph tag a random salt happened to match).
    fn fallback_keys(&self, salt: u64, tried: Option<&Arc<MasterKey>>) -> Vec<Arc<MasterKey>> {
        let tag = (salt >> 32) as u32;
        let mut keys: Vec<Arc<MasterKey>> = Vec::new();
        if let Some(known) = self.ring.read().unwrap().keys.get(&tag) {
            keys.extend(known.iter().cloned());
        }
        keys.extend(self.keys.iter().cloned());
        keys.extend(self.master.iter().cloned());
        let mut seen: Vec<*const MasterKey> = tried.map(Arc::as_ptr).into_iter().collect();
        keys.retain(|k| {
            let new = !seen.contains(&Arc::as_ptr(k));
            seen.push(Arc::as_ptr(k));
            new
        });
        keys
    }

    /// Why no key opened a chunk sealed with `salt`: its graph was shredded, or it is damaged.
    fn unopened(&self, entry: &BlobEntry, salt: u64) -> Error {
        let tag = (salt >> 32) as u32;
        match self.ring.read().unwrap().shredded.get(&tag) {
            Some((graph_id, at)) => Error::GraphShredded {
                graph_id: graph_id.clone(),
                at: format!(" at {at}"),
            },
            None => not_authentic(&format!("chunk {}", entry.id)),
        }
    }

    /// Run `work` on the compressed frame of a stored chunk (opened, when sealed); returns its
    /// result and the key that opened the chunk (whose id key the chunk's id is checked with).
    ///
    /// The key is the one the salt's tag names: this codec's own (the common case, no lock and
    /// no reference count touched), the master key (tag 0) or a graph key of the ring. Only a
    /// chunk that does not open with it is tried under the other candidates.
    fn with_frame<T>(
        &self,
        entry: &BlobEntry,
        stored: &[u8],
        work: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<(T, Option<Cow<'_, Arc<MasterKey>>>)> {
        if self.keys.is_none() {
            return Ok((work(stored)?, None));
        }
        if stored.len() < CHUNK_SEAL_OVERHEAD {
            return Err(not_authentic(&format!("chunk {}", entry.id)));
        }
        let salt = u64::from_le_bytes(stored[..SALT_LEN].try_into().expect("8 bytes"));
        let tag = (salt >> 32) as u32;
        let named: Option<Cow<'_, Arc<MasterKey>>> = if tag == self.tag {
            self.keys.as_ref().map(Cow::Borrowed)
        } else if tag == 0 {
            self.master.as_ref().map(Cow::Borrowed)
        } else {
            let ring = self.ring.read().unwrap();
            ring.keys
                .get(&tag)
                .and_then(|keys| keys.first().cloned())
                .map(Cow::Owned)
        };
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let open = |keys: &MasterKey, scratch: &mut Vec<u8>| -> Option<usize> {
                let key = chunk_key(keys, salt);
                scratch.clear();
                scratch.extend_from_slice(&stored[SALT_LEN..]);
                keys::open_in_place(&key, &entry.id.0, scratch)
            };
            if let Some(keys) = &named {
                if let Some(len) = open(keys, &mut scratch) {
                    let out = work(&scratch[keys::NONCE_LEN..][..len])?;
                    return Ok((out, named));
                }
            }
            for keys in self.fallback_keys(salt, named.as_deref()) {
                if let Some(len) = open(&keys, &mut scratch) {
                    let out = work(&scratch[keys::NONCE_LEN..][..len])?;
                    return Ok((out, Some(Cow::Owned(keys))));
                }
            }
            Err(self.unopened(entry, salt))
        })
    }

    fn check_chunk(
        &self,
        entry: &BlobEntry,
        plain: &[u8],
        keys: Option<&Arc<MasterKey>>,
    ) -> Result<()> {
        let id = match keys {
            Some(keys) => ObjectId(keys.chunk_id(plain)),
            None => ObjectId::of(plain),
        };
        if plain.len() != entry.raw_length as usize || id != entry.id {
            return Err(Error::integrity(format!(
                "chunk {} does not match its hash",
                entry.id
            )));
        }
        Ok(())
    }

    /// Open (decrypt, decompress) one stored chunk and check it against its id.
    ///
    /// # Errors
    /// `Integrity` when it is not authentic, does not decompress, or does not match.
    pub fn open_chunk(&self, entry: &BlobEntry, stored: &[u8]) -> Result<Vec<u8>> {
        if entry.raw_length > super::limits::MAX_CHUNK {
            return Err(Error::integrity(format!(
                "chunk {} claims {} bytes, more than the largest chunk",
                entry.id, entry.raw_length
            )));
        }
        // The plaintext length is known and bounded: decompress into one exact allocation.
        let (plain, keys) = self.with_frame(entry, stored, |frame| {
            with_decompressor(entry, |d| d.decompress(frame, entry.raw_length as usize))
        })?;
        self.check_chunk(entry, &plain, keys.as_deref())?;
        Ok(plain)
    }

    /// Open one stored chunk into `out`, which must be exactly its plaintext length, and
    /// check it against its id.
    ///
    /// # Errors
    /// As [`Codec::open_chunk`].
    pub fn open_chunk_into(&self, entry: &BlobEntry, stored: &[u8], out: &mut [u8]) -> Result<()> {
        let (written, keys) = self.with_frame(entry, stored, |frame| {
            with_decompressor(entry, |d| d.decompress_to_buffer(frame, out))
        })?;
        self.check_chunk(entry, &out[..written], keys.as_deref())
    }

    /// As [`Codec::open_chunk_into`], opening a sealed chunk where it lies in `stored`, whose
    /// bytes are spent (a read buffer the chunk is read from once): no copy into a scratch
    /// buffer first. Only where the chunk's key is certain (this codec writes under the
    /// master key and the chunk's salt names it), since a failed open in place leaves nothing
    /// to try another key on; any other chunk is opened by copy, as `open_chunk_into` does.
    ///
    /// # Errors
    /// As [`Codec::open_chunk`].
    pub fn open_chunk_in_place(
        &self,
        entry: &BlobEntry,
        stored: &mut [u8],
        out: &mut [u8],
    ) -> Result<()> {
        let keys = match &self.keys {
            Some(keys) if self.tag == 0 && stored.len() >= CHUNK_SEAL_OVERHEAD => keys,
            _ => return self.open_chunk_into(entry, stored, out),
        };
        let salt = u64::from_le_bytes(stored[..SALT_LEN].try_into().expect("8 bytes"));
        if salt >> 32 != 0 {
            return self.open_chunk_into(entry, stored, out);
        }
        let key = chunk_key(keys, salt);
        let Some(len) = keys::open_in_place(&key, &entry.id.0, &mut stored[SALT_LEN..]) else {
            return Err(self.unopened(entry, salt));
        };
        let frame = &stored[SALT_LEN + keys::NONCE_LEN..][..len];
        let written = with_decompressor(entry, |d| d.decompress_to_buffer(frame, out))?;
        self.check_chunk(entry, &out[..written], Some(keys))
    }

    /// Encode a metadata object (msgpack, zstd, sealed when encrypted) to be stored at `name`
    /// (`""` for content-addressed objects).
    ///
    /// # Errors
    /// `Integrity` when it cannot be encoded.
    pub fn encode_object<T: Serialize>(
        &self,
        magic: &[u8; 4],
        name: &str,
        value: &T,
    ) -> Result<Vec<u8>> {
        self.encode_object_at(magic, name, value, ZSTD_LEVEL_METADATA)
    }

    /// [`Codec::encode_object`] at a given zstd level.
    pub(crate) fn encode_object_at<T: Serialize>(
        &self,
        magic: &[u8; 4],
        name: &str,
        value: &T,
        level: i32,
    ) -> Result<Vec<u8>> {
        let packed = rmp_serde::to_vec_named(value)
            .map_err(|e| Error::integrity(format!("cannot encode {}: {e}", magic_name(magic))))?;
        let compressed = zstd::bulk::compress(&packed, level)
            .map_err(|e| Error::integrity(format!("cannot compress {}: {e}", magic_name(magic))))?;
        Ok(self.frame(magic, name, &compressed))
    }

    /// `magic | version | body`, the body sealed when encrypted.
    fn frame(&self, magic: &[u8; 4], name: &str, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + SEAL_OVERHEAD + body.len());
        out.extend_from_slice(magic);
        out.push(FORMAT_VERSION as u8);
        match self.object_keys(magic) {
            Some(keys) => {
                let ad = associated_data(magic, FORMAT_VERSION as u8, name);
                keys::seal_into(&keys.object_key(magic), &ad, body, &mut out);
            }
            None => out.extend_from_slice(body),
        }
        out
    }

    /// The key objects of a kind are sealed with: a graph's manifests under its codec's key
    /// (a graph's own key, when it has one), everything else under the master key.
    fn object_keys(&self, magic: &[u8; 4]) -> Option<&Arc<MasterKey>> {
        if magic == super::manifest::MAGIC {
            self.keys.as_ref()
        } else {
            self.master.as_ref()
        }
    }

    /// The body of `magic | version | body`, opened when encrypted; checks magic and version.
    fn unframe<'a>(
        &self,
        magic: &[u8; 4],
        name: &str,
        bytes: &'a [u8],
        what: &str,
    ) -> Result<std::borrow::Cow<'a, [u8]>> {
        if bytes.len() < 5 || &bytes[..4] != magic {
            return Err(Error::integrity(format!(
                "{what} is not a {} object (bad magic)",
                magic_name(magic)
            )));
        }
        let version = bytes[4];
        if version == 0 || version as u32 > FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                found: version as u32,
                supported: FORMAT_VERSION,
            });
        }
        match self.object_keys(magic) {
            Some(keys) => {
                let ad = associated_data(magic, version, name);
                keys::open(&keys.object_key(magic), &ad, &bytes[5..])
                    .map(std::borrow::Cow::Owned)
                    .ok_or_else(|| not_authentic(what))
            }
            None => Ok(std::borrow::Cow::Borrowed(&bytes[5..])),
        }
    }

    /// Decode an object written by [`Codec::encode_object`] for `name`; `what` names it in
    /// errors. Bounded by the format's limits for its kind.
    ///
    /// # Errors
    /// `Integrity` for anything damaged, altered or hostile; `UnsupportedFormat` for a newer
    /// version.
    pub fn decode_object<T: DeserializeOwned>(
        &self,
        magic: &[u8; 4],
        name: &str,
        bytes: &[u8],
        what: &str,
    ) -> Result<T> {
        let body = self.unframe(magic, name, bytes, what)?;
        // Bounding the ratio keeps a small hostile frame from inflating to the kind's whole
        // limit. (Inflated whole, then decoded: three times faster than decoding from the
        // stream, which matters for listings of big manifests.)
        let limit = limit_of(magic).min(bytes.len().saturating_mul(MAX_METADATA_RATIO) + (1 << 20));
        let packed = decompress_bounded(&body, limit)
            .map_err(|e| Error::integrity(format!("{what} cannot be decompressed: {e}")))?;
        rmp_serde::from_slice(&packed)
            .map_err(|e| Error::integrity(format!("{what} cannot be decoded: {e}")))
    }

    /// A JSON object (settings, a graph claim, the prune lock) as stored at `name`: as it is
    /// in a plain repository, sealed in an encrypted one.
    pub fn seal_json(&self, name: &str, json: Vec<u8>) -> Vec<u8> {
        if self.keys.is_none() {
            return json;
        }
        self.frame(JSON_MAGIC, name, &json)
    }

    /// The JSON of an object written by [`Codec::seal_json`] for `name`.
    ///
    /// # Errors
    /// `Integrity` when it is not authentic (in an encrypted repository).
    pub fn open_json(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
        if self.keys.is_none() {
            return Ok(bytes.to_vec());
        }
        Ok(self.unframe(JSON_MAGIC, name, bytes, name)?.into_owned())
    }

    /// Seal a pack's compressed trailer (as it is, when plain).
    pub(crate) fn seal_trailer(&self, compressed: Vec<u8>) -> Vec<u8> {
        match &self.master {
            Some(keys) => {
                let mut out = Vec::with_capacity(compressed.len() + SEAL_OVERHEAD);
                let ad = associated_data(TRAILER_MAGIC, FORMAT_VERSION as u8, "");
                keys::seal_into(&keys.object_key(TRAILER_MAGIC), &ad, &compressed, &mut out);
                out
            }
            None => compressed,
        }
    }

    /// Open a pack's sealed trailer (of a pack of `version`).
    pub(crate) fn open_trailer<'a>(
        &self,
        stored: &'a [u8],
        version: u8,
    ) -> Result<std::borrow::Cow<'a, [u8]>> {
        match &self.master {
            Some(keys) => {
                let ad = associated_data(TRAILER_MAGIC, version, "");
                keys::open(&keys.object_key(TRAILER_MAGIC), &ad, stored)
                    .map(std::borrow::Cow::Owned)
                    .ok_or_else(|| not_authentic("pack trailer"))
            }
            None => Ok(std::borrow::Cow::Borrowed(stored)),
        }
    }
}

fn associated_data(magic: &[u8; 4], version: u8, name: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(5 + name.len());
    ad.extend_from_slice(magic);
    ad.push(version);
    ad.extend_from_slice(name.as_bytes());
    ad
}

/// Turns plaintext chunks into stored ones for one worker: compress (or store a matrix raw in
/// a zstd frame), then seal.
pub struct ChunkEncoder {
    codec: Codec,
    /// The current chunk key: its salt, the key, how many chunks it sealed.
    key: Option<(u64, LessSafeKey, u32)>,
    compressor: zstd::bulk::Compressor<'static>,
    /// Where a chunk is compressed before it is sealed.
    scratch: Vec<u8>,
}

impl ChunkEncoder {
    /// The stored bytes of chunk `id` of plaintext `data`; `raw` stores it uncompressed (in a
    /// zstd frame of raw blocks, for data that does not compress).
    ///
    /// # Errors
    /// `Integrity` when zstd fails.
    pub fn encode(&mut self, id: &ObjectId, data: &[u8], raw: bool) -> Result<Vec<u8>> {
        let Some(keys) = &self.codec.keys else {
            return if raw {
                Ok(super::stored_frame(data))
            } else {
                self.compress(data).map(<[u8]>::to_vec)
            };
        };
        if self
            .key
            .as_ref()
            .is_none_or(|(_, _, used)| *used >= CHUNKS_PER_KEY)
        {
            let salt = self.codec.new_salt();
            self.key = Some((salt, keys.chunk_key(salt), 0));
        }
        // The frame is written once, where its ciphertext goes: `salt | nonce | frame`, sealed
        // in place (a matrix chunk is most of a graph's bytes; a second copy of it and a
        // second buffer per chunk cost more than the encryption).
        let frame_len = if raw {
            super::stored_frame_len(data.len())
        } else {
            self.compress(data)?.len()
        };
        let (salt, key, used) = self.key.as_mut().expect("set above");
        *used += 1;
        let mut out = Vec::with_capacity(CHUNK_SEAL_OVERHEAD + frame_len);
        out.extend_from_slice(&salt.to_le_bytes());
        let at = keys::begin_sealed(&mut out);
        if raw {
            super::stored_frame_into(data, &mut out);
        } else {
            out.extend_from_slice(&self.scratch);
        }
        keys::seal_after(key, &id.0, &mut out, at);
        Ok(out)
    }

    /// zstd-compress `data` into this encoder's scratch buffer.
    fn compress(&mut self, data: &[u8]) -> Result<&[u8]> {
        self.scratch.clear();
        self.scratch
            .reserve(zstd::zstd_safe::compress_bound(data.len()));
        self.compressor
            .compress_to_buffer(data, &mut self.scratch)
            .map_err(|e| Error::integrity(format!("zstd compression failed: {e}")))?;
        Ok(&self.scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn encrypted() -> Codec {
        Codec::encrypted(Arc::new(MasterKey::generate().unwrap()))
    }

    #[test]
    fn chunks_round_trip_and_refuse_another_id() {
        for codec in [Codec::plain(), encrypted()] {
            let data = b"a chunk of a knowledge graph".repeat(40);
            let id = codec.chunk_id(&data);
            let stored = codec
                .chunk_encoder(1)
                .unwrap()
                .encode(&id, &data, false)
                .unwrap();
            let entry = BlobEntry {
                id,
                offset: 8,
                length: stored.len() as u32,
                raw_length: data.len() as u32,
            };
            assert_eq!(codec.open_chunk(&entry, &stored).unwrap(), data);
            let mut out = vec![0u8; data.len()];
            codec.open_chunk_into(&entry, &stored, &mut out).unwrap();
            assert_eq!(out, data);
            let other = BlobEntry {
                id: codec.chunk_id(b"other"),
                ..entry
            };
            assert!(codec.open_chunk(&other, &stored).is_err());
        }
    }

    #[test]
    fn chunks_of_interleaved_encoders_open_each_under_its_own_salt() {
        let codec = encrypted();
        let mut encoders: Vec<ChunkEncoder> =
            (0..20).map(|_| codec.chunk_encoder(1).unwrap()).collect();
        let mut stored = Vec::new();
        for round in 0..3u8 {
            for (n, encoder) in encoders.iter_mut().enumerate() {
                let data = vec![round ^ n as u8; 100 + n];
                let id = codec.chunk_id(&data);
                stored.push((id, data.clone(), encoder.encode(&id, &data, false).unwrap()));
            }
        }
        let salts: HashSet<&[u8]> = stored.iter().map(|(_, _, s)| &s[..SALT_LEN]).collect();
        assert_eq!(
            salts.len(),
            20,
            "one salt per encoder, kept across its chunks"
        );
        // More salts than the thread's key cache holds, read in interleaved order.
        for (id, data, bytes) in &stored {
            let entry = BlobEntry {
                id: *id,
                offset: 8,
                length: bytes.len() as u32,
                raw_length: data.len() as u32,
            };
            assert_eq!(&codec.open_chunk(&entry, bytes).unwrap(), data);
        }
    }

    #[test]
    fn chunks_open_in_place_as_by_copy_and_a_graph_codec_falls_back_to_copy() {
        let codec = encrypted();
        let graph = codec.for_graph(Arc::new(MasterKey::generate().unwrap()), 7);
        for codec in [codec, graph] {
            let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
            let id = codec.chunk_id(&data);
            let stored = codec
                .chunk_encoder(3)
                .unwrap()
                .encode(&id, &data, false)
                .unwrap();
            let entry = BlobEntry {
                id,
                offset: 0,
                length: stored.len() as u32,
                raw_length: data.len() as u32,
            };
            let mut spent = stored.clone();
            let mut out = vec![0u8; data.len()];
            codec
                .open_chunk_in_place(&entry, &mut spent, &mut out)
                .unwrap();
            assert_eq!(out, data);
            // A flipped bit is refused in place too, and nothing is written past the check.
            let mut damaged = stored.clone();
            damaged[40] ^= 1;
            assert!(codec
                .open_chunk_in_place(&entry, &mut damaged, &mut out)
                .is_err());
        }
    }

    #[test]
    fn sealed_objects_are_bound_to_kind_and_name() {
        let codec = encrypted();
        let value = vec![1u32, 2, 3];
        let bytes = codec
            .encode_object(b"LRBM", "snapshots/g/a", &value)
            .unwrap();
        let back: Vec<u32> = codec
            .decode_object(b"LRBM", "snapshots/g/a", &bytes, "m")
            .unwrap();
        assert_eq!(back, value);
        assert!(codec
            .decode_object::<Vec<u32>>(b"LRBM", "snapshots/g/b", &bytes, "m")
            .is_err());
        let mut renamed = bytes.clone();
        renamed[..4].copy_from_slice(b"LRBI");
        assert!(codec
            .decode_object::<Vec<u32>>(b"LRBI", "", &renamed, "i")
            .is_err());
        // A plaintext object is never accepted in an encrypted repository.
        let plain = Codec::plain()
            .encode_object(b"LRBM", "snapshots/g/a", &value)
            .unwrap();
        assert!(codec
            .decode_object::<Vec<u32>>(b"LRBM", "snapshots/g/a", &plain, "m")
            .is_err());
        let json = codec.seal_json("settings/a", b"{}".to_vec());
        assert_eq!(codec.open_json("settings/a", &json).unwrap(), b"{}");
        assert!(codec.open_json("settings/b", &json).is_err());
    }
}
