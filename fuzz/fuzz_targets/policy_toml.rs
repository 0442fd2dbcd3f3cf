#![no_main]
//! cargo-fuzz target `policy_toml`: its body is passerelle::fuzz_targets::policy_toml,
//! which tests/fuzz_corpus.rs also runs on stable.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passerelle::fuzz_targets::policy_toml(data);
});
