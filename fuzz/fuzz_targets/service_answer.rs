#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sciauth_fuzz::service_answer(data));
