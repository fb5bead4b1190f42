//! Any bytes read back as the head of a stored object: decoding must never
//! panic, whatever a damaged or hostile cache directory holds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferry_cache::meta::Meta::decode(data);
    let mut with_magic = ferry_cache::meta::MAGIC.to_vec();
    with_magic.extend_from_slice(data);
    let _ = ferry_cache::meta::Meta::decode(&with_magic);
});
