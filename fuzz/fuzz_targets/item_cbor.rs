#![no_main]
//! cargo-fuzz target `item_cbor`: its body is passerelle::fuzz_targets::item_cbor,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::item_cbor(data);
});
