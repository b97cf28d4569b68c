#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sciauth_fuzz::ssh_private_key(data));
