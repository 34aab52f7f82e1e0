#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fec_fuzz_bodies::rs16::decode(data));
