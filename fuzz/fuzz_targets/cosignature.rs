#![no_main]
//! cargo-fuzz target `cosignature`: its body is passerelle::fuzz_targets::cosignature,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::cosignature(data);
});
