//! Fuzzes the signal parsers behind `--stop-signal`, `--rewrite` and their env vars:
//! `parse::signal`, `parse::catchable_signal`, `parse::rewrite`. Properties: never panics; a
//! parsed signal is always 1..=64; its printed name (as logged), if it has one, parses back to the same number;
//! case does not matter; `RTMIN+` with no offset is refused; a catchable signal is never KILL, STOP, CHLD, PIPE or a fault signal; a rewrite's
//! FROM is catchable and its TO, if any, is a valid signal.
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

use parse::Sig;

fn check_sig(input: &str, sig: Sig) {
    assert!((1..=64).contains(&sig.0), "{input:?} -> {sig:?}");
    let shown = sig.to_string();
    // 32 and 33 have no name (glibc keeps them, `kill -l` skips them): they print as a number.
    if shown != format!("signal {}", sig.0) {
        assert_eq!(
            parse::signal(&shown),
            Ok(sig),
            "{input:?} -> {sig:?} prints as {shown:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let sig = parse::signal(s);
    if let Ok(sig) = sig {
        check_sig(s, sig);
        // `RTMIN+` and `RTMAX-` name no signal: the offset must have digits.
        assert!(!s.trim().ends_with(['+', '-']), "{s:?} -> {sig:?}");
    }
    assert_eq!(
        parse::signal(&s.to_ascii_lowercase()).ok(),
        sig.clone().ok(),
        "case changes the meaning of {s:?}"
    );
    match parse::catchable_signal(s) {
        Ok(c) => {
            assert_eq!(sig, Ok(c), "{s:?}");
            assert!(
                !c.is_uncatchable() && !c.is_fault() && c != Sig::CHLD && c != Sig::PIPE,
                "{s:?} -> {c:?} accepted as catchable"
            );
        }
        Err(_) => {
            if let Ok(sig) = sig {
                assert!(
                    sig.is_uncatchable() || sig.is_fault() || sig == Sig::CHLD || sig == Sig::PIPE,
                    "{s:?}"
                );
            }
        }
    }
    if let Ok(r) = parse::rewrite(s) {
        check_sig(s, r.from);
        assert!(!r.from.is_uncatchable() && !r.from.is_fault() && r.from != Sig::CHLD && r.from != Sig::PIPE);
        if let Some(to) = r.to {
            check_sig(s, to);
        }
    }
});
