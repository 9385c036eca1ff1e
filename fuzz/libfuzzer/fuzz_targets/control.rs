#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gossip_fuzz::targets::control(data));
