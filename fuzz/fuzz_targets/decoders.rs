//! Every decoder of the format on the fuzzer's bytes: none may panic, abort or allocate past
//! the format's limits (libFuzzer's -rss_limit_mb and -malloc_limit_mb catch the latter).
#![no_main]

use lightrag_backup::format::{decode, limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = decode::manifest(bytes);
    let _ = decode::index(bytes, limits::MAX_ROW_CHUNK);
    let _ = decode::pack_trailer(bytes);
    let _ = decode::recovery_point(bytes);
    let _ = decode::validation(bytes);
    let _ = decode::prune_marker(bytes);
    let _ = decode::damage_record(bytes);
    let _ = lightrag_backup::lease::decode_record(bytes, "slot");
});
