//! Fuzzes `parse::ready_addr` (`--ready-addr`) and `parse::check_target` (`--ready-check`).
//!
//! Both resolve a host name once, through getaddrinfo, when HOST is not an IP literal. A fuzzer
//! must not send DNS queries (slow, not loopback-only, and the answer is not ours to test), so
//! inputs that would reach a lookup are skipped: `reaches_lookup` mirrors the checks that
//! `host_port` makes before it resolves. Everything of ours — prefixes, splitting, port and
//! bracket checks, the path check — is still fuzzed; only the C resolver is left out.
//! Properties: never panics; `:PORT` means all interfaces (`[::]`, dual-stack); an HTTP target's path starts with
//! '/' and has no spaces or control characters, and its Host header is the authority given.
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

use parse::CheckTarget;

/// Would `host_port(t)` call the resolver? Only when `t` is no socket address literal, has a
/// valid port after its last ':', and a non-empty host without brackets, '/' or spaces that is no
/// IP literal (std parses IP literals itself, without getaddrinfo).
fn reaches_lookup(t: &str) -> bool {
    if t.parse::<SocketAddr>().is_ok() {
        return false;
    }
    let Some((host, port)) = t.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
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

fn check_target(s: &str) {
    let t = s.trim();
    let authority = if let Some(rest) = t.strip_prefix("tcp://") {
        rest.trim_end_matches('/')
    } else if let Some(rest) = t.strip_prefix("http://") {
        rest.find('/').map_or(rest, |i| &rest[..i])
    } else {
        ""
    };
    if reaches_lookup(authority) {
        return;
    }
    match parse::check_target(s) {
        Ok(CheckTarget::Http { host, path, .. }) => {
            assert!(path.starts_with('/'), "{s:?} -> path {path:?}");
            assert!(
                !path.bytes().any(|b| b <= b' ' || b == 0x7f),
                "{s:?} -> path {path:?}"
            );
            assert_eq!(host, authority, "{s:?}");
        }
        Ok(CheckTarget::Tcp(_)) => assert!(t.starts_with("tcp://"), "{s:?}"),
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    ready_addr(s);
    check_target(s);
});
