#![no_main]
//! cargo-fuzz target `item_json`: its body is passerelle::fuzz_targets::item_json,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::item_json(data);
});
