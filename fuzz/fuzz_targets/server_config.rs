#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sciauth_fuzz::server_config(data));
