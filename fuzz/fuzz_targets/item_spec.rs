#![no_main]
//! cargo-fuzz target `item_spec`: its body is passerelle::fuzz_targets::item_spec,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::item_spec(data);
});
