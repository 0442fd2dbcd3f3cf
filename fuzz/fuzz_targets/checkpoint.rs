#![no_main]
//! cargo-fuzz target `checkpoint`: its body is passerelle::fuzz_targets::checkpoint,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::checkpoint(data);
});
