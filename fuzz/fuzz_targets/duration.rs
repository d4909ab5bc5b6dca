//! Fuzzes `parse::duration` (`-d`, `-g` and their env vars) and the printer that logs durations
//! back, `parse::human`. Properties: never panics; an accepted duration is at most a year (the
//! bound that keeps `Instant` arithmetic safe) and a whole number of milliseconds (drainit's
//! timer resolution: finer ones are refused); an exponent or a sign is never accepted; what
//! `human` prints parses back to exactly the same duration, in the user's own notation.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/parse.rs"]
mod parse;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(d) = parse::duration(s) else {
        return;
    };
    assert!(d <= Duration::from_secs(31_536_000), "{s:?} -> {d:?}");
    assert_eq!(d.subsec_nanos() % 1_000_000, 0, "{s:?} -> {d:?}: finer than a millisecond");
    assert!(
        !s.contains(['e', 'E', '+', '-']),
        "{s:?} -> {d:?}: an exponent or a sign was accepted"
    );
    let shown = parse::human(d);
    let back = parse::duration(&shown).unwrap_or_else(|e| {
        panic!("{s:?} -> {d:?} prints as {shown:?}, which does not parse: {e}")
    });
    assert_eq!(
        back, d,
        "{s:?} -> {d:?} prints as {shown:?}, which parses as {back:?}"
    );
    // Printed as a user writes it: digits, at most one '.', with digits on both sides, and units.
    assert!(
        !shown.contains(".s") && !shown.starts_with('.'),
        "{s:?} -> {d:?} prints as {shown:?}"
    );
});
