#![no_main]
//! cargo-fuzz target `signed_note`: its body is passerelle::fuzz_targets::signed_note,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::signed_note(data);
});
