#![no_main]
//! cargo-fuzz target `cose_sign1`: its body is passerelle::fuzz_targets::cose_sign1,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::cose_sign1(data);
});
