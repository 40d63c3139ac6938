//! Fuzz target: the pipeline parser and validator must never panic, whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let registry = eqlab::stages::Registry::builtin();
        let _ = eqlab::spec::parse(text, std::path::Path::new("fuzz.yaml"), &registry, &[]);
    }
});
