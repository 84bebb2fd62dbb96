//! Bytes → text → the whole matcalc pipeline (see `../harness.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(finding) = harness::pipeline(text) {
            panic!("{finding}");
        }
    }
});
