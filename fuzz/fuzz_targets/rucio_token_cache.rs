#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sciauth_fuzz::rucio_token_cache(data));
