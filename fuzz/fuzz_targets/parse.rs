//! Bytes → text → the parser and the print/parse round trip (see `../harness.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(finding) = harness::parse_only(text) {
            panic!("{finding}");
        }
    }
});
