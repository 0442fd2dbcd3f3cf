#![no_main]
//! cargo-fuzz target `receipt`: its body is passerelle::fuzz_targets::receipt,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::receipt(data);
});
