//! Fuzzes `parse::remap` (`--remap-exit FROM:TO`, DRAINIT_REMAP_EXIT). Properties: never panics;
//! whatever is accepted prints back as `FROM:TO` and parses to the same pair.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/parse.rs"]
mod parse;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((from, to)) = parse::remap(s) {
        assert_eq!(
            parse::remap(&format!("{from}:{to}")),
            Ok((from, to)),
            "{s:?}"
        );
    }
});
