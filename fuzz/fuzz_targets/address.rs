//! Fuzzes `parse::ready_addr` (`--ready-addr`), `parse::check_target` (`--ready-check`) and
//! `parse::probe_target` (`--probe`).
//!
//! `ready_addr` resolves a host name once, through getaddrinfo, when HOST is not an IP literal. A
//! fuzzer must not send DNS queries (slow, not loopback-only, and the answer is not ours to
//! test), so inputs that would reach a lookup are skipped there: `reaches_lookup` mirrors the
//! checks that `host_port` makes before it resolves. Check and probe targets keep their names
//! (they are resolved at each check, in check.rs), so they are fuzzed whole.
//! Properties: never panics; `:PORT` means all interfaces (`[::]`, dual-stack) for
//! `--ready-addr` and 127.0.0.1 for `--probe`; an HTTP target's path starts with '/' and has no
//! spaces or control characters, and its Host header is the authority given; a target's port
//! is never 0 and a host name is dot-separated labels; a target prints as text that parses back
//! to the same target.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/parse.rs"]
mod parse;

use parse::{CheckTarget, Host};

/// Would `host_port(t)` call the resolver? Only when `t` is no socket address literal, has a
/// port of digits after its last ':', and a non-empty host without brackets, '/' or spaces that
/// is no IP literal (std parses IP literals itself, without getaddrinfo). `host_port` refuses
/// more than that before it resolves (names that end in a number); skipping a few more inputs
/// is safe.
fn reaches_lookup(t: &str) -> bool {
    if t.parse::<SocketAddr>().is_ok() {
        return false;
    }
    let Some((host, port)) = t.rsplit_once(':') else {
        return false;
    };
    port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok()
        && !host.is_empty()
        && !host.contains(['[', ']', '/', ' '])
        && host.parse::<IpAddr>().is_err()
}

fn ready_addr(s: &str) {
    let t = s.trim();
    if !t.starts_with(':') && reaches_lookup(t) {
        return;
    }
    if let Ok(addr) = parse::ready_addr(s) {
        if let Some(port) = t.strip_prefix(':') {
            assert_eq!(
                addr,
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port.parse().unwrap())
            );
        }
    }
}

/// The authority of a `tcp://` or `http://` target as written, or `None` for anything else.
fn authority(t: &str) -> Option<&str> {
    if let Some(rest) = t.strip_prefix("tcp://") {
        Some(rest.trim_end_matches('/'))
    } else if let Some(rest) = t.strip_prefix("http://") {
        Some(rest.find('/').map_or(rest, |i| &rest[..i]))
    } else {
        None
    }
}

/// What holds of every target, however it was written.
fn well_formed(s: &str, target: &CheckTarget) {
    let endpoint = target.endpoint();
    assert_ne!(endpoint.port, 0, "{s:?}");
    if let Host::Name(name) = &endpoint.host {
        assert!(
            name.split('.').all(|l| !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')),
            "{s:?} -> name {name:?}"
        );
    }
    if let CheckTarget::Http { path, .. } = target {
        assert!(path.starts_with('/'), "{s:?} -> path {path:?}");
        assert!(
            !path.bytes().any(|b| b <= b' ' || b == 0x7f),
            "{s:?} -> path {path:?}"
        );
    }
    assert_eq!(
        parse::check_target(&target.to_string()).as_ref(),
        Ok(target),
        "{s:?} prints as {target}"
    );
}

fn check_target(s: &str) {
    let t = s.trim();
    let Ok(target) = parse::check_target(s) else {
        return;
    };
    well_formed(s, &target);
    match &target {
        CheckTarget::Http { host, .. } => {
            assert!(t.starts_with("http://"), "{s:?}");
            assert_eq!(Some(host.as_str()), authority(t), "{s:?}");
        }
        CheckTarget::Tcp(_) => assert!(t.starts_with("tcp://"), "{s:?}"),
    }
}

fn probe_target(s: &str) {
    let t = s.trim();
    let Ok(target) = parse::probe_target(s) else {
        return;
    };
    well_formed(s, &target);
    if authority(t).is_some() {
        assert_eq!(parse::check_target(s).as_ref(), Ok(&target), "{s:?}");
        return;
    }
    // An ADDR: its /readyz, with `:PORT` on 127.0.0.1.
    let CheckTarget::Http { host, path, .. } = &target else {
        panic!("{s:?} -> {target:?}");
    };
    assert_eq!(path, "/readyz", "{s:?}");
    match t.strip_prefix(':') {
        Some(port) => assert_eq!(*host, format!("127.0.0.1:{}", port.parse::<u16>().unwrap())),
        None => assert_eq!(host, t, "{s:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    ready_addr(s);
    check_target(s);
    probe_target(s);
});
