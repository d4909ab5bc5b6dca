//! Fuzzes the readiness server's pure HTTP policy (`src/http.rs`): arbitrary bytes arriving in
//! arbitrary chunks on one connection, handled the way `ready.rs` handles a socket (reads capped
//! so at most `MAX_HEAD` unanswered bytes are held, `answer_all` after each read, stop after a
//! closing response). The output is taken to be read at once by the client.
//!
//! Input layout: byte 0 picks the health (ready/not ready/draining, live or not); then chunks,
//! each a length byte L and L bytes (L >= 0xF0: (L - 0xEF) KiB, to reach past the 8 KiB limit).
//!
//! Properties, beyond "never panics":
//! - every response is well-formed HTTP/1.1: a known status with its reason, Content-Type,
//!   Content-Length, Cache-Control, and a body of exactly Content-Length bytes (none for HEAD),
//!   lowercase words ending with a newline;
//! - 400, 408 and 431 always close, and a closing response says `Connection: close`;
//! - the head limit holds: never more than `MAX_HEAD` bytes waiting, and a full buffer is always
//!   answered (else the connection would stall until the head timeout);
//! - chunking does not matter: the same bytes in one piece get the same responses.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/http.rs"]
mod http;

use http::{Health, MAX_HEAD, ReadyState};

/// What the client receives, and whether the server closed the connection.
struct Outcome {
    output: Vec<u8>,
    closed: bool,
}

/// Feed `chunks` through one simulated connection.
fn serve(chunks: &[&[u8]], health: Health) -> Outcome {
    let mut input: Vec<u8> = Vec::new();
    let mut output = Vec::new();
    // Bytes sent by the client and not read by the server yet (the socket's receive queue).
    let mut queue: Vec<u8> = Vec::new();
    for chunk in chunks {
        queue.extend_from_slice(chunk);
        // Read while there is room, as poll would let ready.rs do, answering after each read.
        loop {
            let room = MAX_HEAD - input.len();
            let take = room.min(queue.len());
            input.extend(queue.drain(..take));
            assert!(input.len() <= MAX_HEAD);
            // The client reads everything at once, so each call starts with nothing waiting to
            // be sent, as in ready.rs once its output is flushed.
            let mut out = Vec::new();
            let served = http::answer_all(&input, health, &mut out);
            assert!(served.consumed <= input.len(), "consumed past the input");
            if input.len() == MAX_HEAD {
                assert!(
                    served.consumed > 0 || served.close,
                    "a full buffer got no answer: the connection would stall"
                );
            }
            if served.consumed > 0 {
                assert!(!out.is_empty(), "input consumed without an answer");
            }
            output.extend_from_slice(&out);
            if served.close {
                return Outcome {
                    output,
                    closed: true,
                };
            }
            input.drain(..served.consumed);
            // Go on while answering made progress (more pipelined requests may be complete, as
            // ready.rs answers again once its output is flushed) or more bytes can be read.
            if served.consumed == 0 && (queue.is_empty() || input.len() == MAX_HEAD) {
                break;
            }
        }
    }
    Outcome {
        output,
        closed: false,
    }
}

/// Check that `out` is a sequence of well-formed responses; returns how many.
fn check_responses(out: &[u8], closed: bool) -> usize {
    let mut rest = out;
    let mut count = 0;
    let mut last_closes = false;
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "malformed response {other:?}: {:?}",
                String::from_utf8_lossy(rest)
            ),
        };
        let code = resp.code.unwrap();
        let expected_reason = match code {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => panic!("unexpected status {code}"),
        };
        assert_eq!(resp.version, Some(1));
        assert_eq!(resp.reason, Some(expected_reason));
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| std::str::from_utf8(h.value).unwrap().to_string())
        };
        assert_eq!(header("Content-Type").as_deref(), Some("text/plain"));
        assert_eq!(header("Cache-Control").as_deref(), Some("no-store"));
        let len: usize = header("Content-Length")
            .expect("Content-Length")
            .parse()
            .unwrap();
        let closes = header("Connection").as_deref() == Some("close");
        if matches!(code, 400 | 408 | 431) {
            assert!(closes, "{code} must close the connection");
        }
        if code == 405 {
            assert_eq!(header("Allow").as_deref(), Some("GET, HEAD"));
        }
        rest = &rest[head_len..];
        // Bodies are short words, never the start of a response: no body means HEAD.
        if !rest.is_empty() && !rest.starts_with(b"HTTP/1.1 ") {
            assert!(rest.len() >= len, "body shorter than Content-Length");
            let body = std::str::from_utf8(&rest[..len]).unwrap();
            let words = body.strip_suffix('\n').expect("a body ends with a newline");
            assert!(
                !words.is_empty() && words.bytes().all(|b| b.is_ascii_lowercase() || b == b' '),
                "{body:?}"
            );
            rest = &rest[len..];
        }
        last_closes = closes;
        count += 1;
        if closes {
            assert!(rest.is_empty(), "a response after a closing one");
        }
    }
    assert_eq!(
        closed,
        last_closes && count > 0,
        "closing and Connection: close disagree"
    );
    count
}

fuzz_target!(|data: &[u8]| {
    let Some((&h, mut rest)) = data.split_first() else {
        return;
    };
    let health = Health {
        ready: match h % 3 {
            0 => ReadyState::Ready,
            1 => ReadyState::NotReady,
            _ => ReadyState::Draining,
        },
        live: h & 4 != 0,
    };
    let mut chunks: Vec<&[u8]> = Vec::new();
    while let Some((&l, tail)) = rest.split_first() {
        let len = if l >= 0xF0 {
            usize::from(l - 0xEF) * 1024
        } else {
            usize::from(l)
        };
        let (chunk, tail) = tail.split_at(len.min(tail.len()));
        chunks.push(chunk);
        rest = tail;
    }
    let chunked = serve(&chunks, health);
    check_responses(&chunked.output, chunked.closed);

    let whole: Vec<u8> = chunks.concat();
    let at_once = serve(&[&whole], health);
    assert_eq!(
        String::from_utf8_lossy(&chunked.output),
        String::from_utf8_lossy(&at_once.output),
        "the answers depend on how the bytes were chunked"
    );
    assert_eq!(chunked.closed, at_once.closed);
});
