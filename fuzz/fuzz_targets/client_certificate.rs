#![no_main]
//! cargo-fuzz target `client_certificate`: its body is passerelle::fuzz_targets::client_certificate,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::client_certificate(data);
});
