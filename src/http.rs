//! The readiness endpoints' HTTP policy (contract, point 7), pure: request bytes and the current
//! health in, response bytes out. It decides what `/readyz` and `/livez` answer, how malformed,
//! oversized and pipelined requests are treated, and whether the connection stays open. It does
//! no I/O, reads no clock and imports nothing from the crate, so a fuzz target can include this
//! file on its own (`#[path = "../../src/http.rs"] mod http;`). The sockets, timers and bounds on
//! connections live in ready.rs.
//!
//! Parsing is httparse's (the parser hyper uses): hand-written HTTP parsing is where request
//! smuggling lives. We never read a request body, so a request that announces one is answered
//! and its connection closed: nothing after it can be told apart from the body.

use std::io::Write;

/// The longest request head we accept; a longer one gets 431 and the connection is closed.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most header fields in one request head; more get 431. The contract bounds a head by its
/// size (8 KiB); 100 fields is far past any probe or proxy, and costs 3 KiB of stack.
pub const MAX_HEADERS: usize = 100;
/// `answer_all` stops taking pipelined requests once this much output waits to be sent, so a
/// client that sends and never reads cannot make us buffer without bound. Small, because every
/// connection with something to answer holds this much (ready.rs): a probe's answer is one
/// response, and a pipelining client gets the rest as it reads.
pub const OUTPUT_SOFT_LIMIT: usize = 2 * 1024;
/// The longest response `Response::write_to` writes (the 431 with `Connection: close` is
/// about 160 bytes), so `answer_all` never writes past `OUTPUT_SOFT_LIMIT + MAX_RESPONSE`.
pub const MAX_RESPONSE: usize = 256;

/// What `/readyz` reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReadyState {
    /// 200 `ok`: running and (with `--ready-check`) the check passes.
    Ready,
    /// 503 `not ready`: the check has not passed (yet), or no longer passes.
    NotReady,
    /// 503 `draining`: a stop signal came, or the child exited.
    Draining,
}

/// What the endpoints report, decided by the event loop for each batch of requests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Health {
    pub ready: ReadyState,
    /// `/livez`: 200 while the child runs (also while draining), 503 once it has exited.
    pub live: bool,
}

/// What the `Connection` header of a response says, and so what happens to the connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Persist {
    /// HTTP/1.1's default: stay open, say nothing.
    KeepAlive,
    /// An HTTP/1.0 client asked for `Connection: keep-alive`: stay open and say so.
    KeepAliveEchoed,
    /// `Connection: close`, then close once the response is sent.
    Close,
}

/// One response, before it is written out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Response {
    pub status: u16,
    /// A word or two; on the wire it ends with a newline, so `curl .../readyz` ends its line.
    pub body: &'static str,
    /// A HEAD request: the headers a GET would get, and no body.
    pub head_only: bool,
    pub persist: Persist,
}

impl Response {
    /// 408: the request head did not arrive in time (the caller keeps the clock).
    pub fn timeout() -> Response {
        Response::closing(408, "request timeout")
    }

    fn closing(status: u16, body: &'static str) -> Response {
        Response {
            status,
            body,
            head_only: false,
            persist: Persist::Close,
        }
    }

    /// Is the connection closed once this response is sent?
    pub fn closes(&self) -> bool {
        self.persist == Persist::Close
    }

    /// Append the response, head and (unless HEAD) body, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.body.len() + 1
        );
        if self.status == 405 {
            out.extend_from_slice(b"Allow: GET, HEAD\r\n");
        }
        match self.persist {
            Persist::KeepAlive => {}
            Persist::KeepAliveEchoed => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            Persist::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
            out.push(b'\n');
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// What to do about the bytes at the start of a buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    /// The request head is not complete yet: read more.
    Partial,
    /// A request (or garbage) of `used` bytes, and its answer.
    Answer { used: usize, response: Response },
}

/// Decide about the first request in `buf`.
pub fn next_request(buf: &[u8], health: Health) -> Step {
    // Look at no more than the limit: a head that does not end within it is too large.
    let window = buf.get(..MAX_HEAD).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let response = match req.parse(window) {
        Ok(httparse::Status::Complete(used)) => {
            return Step::Answer {
                used,
                response: decide(&req, health),
            };
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Step::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            Response::closing(431, "request header fields too large")
        }
        Err(_) => Response::closing(400, "bad request"),
    };
    Step::Answer {
        used: buf.len(),
        response,
    }
}

/// What `answer_all` did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Served {
    /// Bytes of `buf` answered; drop them. Whatever follows is the start of a later request.
    pub consumed: usize,
    /// The last response closes the connection: read nothing more from it.
    pub close: bool,
}

/// Answer the complete requests at the start of `buf` in order (pipelining), appending the
/// responses to `out`. Stops at an incomplete head, after a response that closes the
/// connection, or once `out` holds `OUTPUT_SOFT_LIMIT` bytes (call again when it has drained).
pub fn answer_all(buf: &[u8], health: Health, out: &mut Vec<u8>) -> Served {
    let mut consumed = 0;
    while out.len() < OUTPUT_SOFT_LIMIT {
        let rest = buf.get(consumed..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
        match next_request(rest, health) {
            Step::Partial => break,
            Step::Answer { used, response } => {
                response.write_to(out);
                consumed = consumed.saturating_add(used).min(buf.len());
                if response.closes() {
                    return Served {
                        consumed: buf.len(),
                        close: true,
                    };
                }
            }
        }
    }
    Served {
        consumed,
        close: false,
    }
}

/// The answer to one well-formed request head.
fn decide(req: &httparse::Request, health: Health) -> Response {
    let mut asked_close = false;
    let mut asked_keep_alive = false;
    let mut has_body = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                asked_close |= token.eq_ignore_ascii_case(b"close");
                asked_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // `Content-Length = 1*DIGIT` (RFC 9110, 8.6): u64's from_str would also take `+0`.
            let value = h.value.trim_ascii();
            let digits = !value.is_empty() && value.iter().all(u8::is_ascii_digit);
            match std::str::from_utf8(value).map(str::parse::<u64>) {
                Ok(Ok(0)) if digits => {}
                Ok(Ok(_)) if digits => has_body = true,
                // A length we cannot read means we cannot tell where the next request starts.
                _ => return Response::closing(400, "bad request"),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        }
    }
    let persist = if asked_close || has_body {
        Persist::Close
    } else if req.version == Some(1) {
        Persist::KeepAlive
    } else if asked_keep_alive {
        Persist::KeepAliveEchoed
    } else {
        Persist::Close
    };
    let (status, body) = match route(req.path.unwrap_or_default()) {
        Some(Endpoint::Ready) => match health.ready {
            ReadyState::Ready => (200, "ok"),
            ReadyState::NotReady => (503, "not ready"),
            ReadyState::Draining => (503, "draining"),
        },
        Some(Endpoint::Live) if health.live => (200, "ok"),
        Some(Endpoint::Live) => (503, "exited"),
        None => (404, "not found"),
    };
    let method = req.method.unwrap_or_default();
    let (status, body) = match method {
        _ if status == 404 => (status, body),
        "GET" | "HEAD" => (status, body),
        _ => (405, "method not allowed"),
    };
    Response {
        status,
        body,
        head_only: method == "HEAD",
        persist,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Endpoint {
    Ready,
    Live,
}

/// Which endpoint a request target names. The query is ignored (`/readyz?verbose`), and the
/// absolute form a proxy may send (`http://host:port/readyz`, RFC 9112 3.2.2) is accepted.
fn route(target: &str) -> Option<Endpoint> {
    let lower = target.get(..8).map(str::to_ascii_lowercase);
    let path = match lower.as_deref() {
        Some(scheme) if scheme.starts_with("http://") || scheme == "https://" => {
            let after = target.split_once("//").map_or("", |(_, rest)| rest);
            after.find('/').and_then(|i| after.get(i..)).unwrap_or("/")
        }
        _ => target,
    };
    match path.split(['?', '#']).next() {
        Some("/readyz") => Some(Endpoint::Ready),
        Some("/livez") => Some(Endpoint::Live),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: Health = Health {
        ready: ReadyState::Ready,
        live: true,
    };
    const NOT_READY: Health = Health {
        ready: ReadyState::NotReady,
        live: true,
    };
    const DRAINING: Health = Health {
        ready: ReadyState::Draining,
        live: true,
    };
    const EXITED: Health = Health {
        ready: ReadyState::Draining,
        live: false,
    };

    /// The whole output for `input`, as text, and whether the connection closes.
    fn serve(input: &[u8], health: Health) -> (String, Served) {
        let mut out = Vec::new();
        let served = answer_all(input, health, &mut out);
        (String::from_utf8(out).unwrap(), served)
    }

    fn answer(input: &str, health: Health) -> Response {
        match next_request(input.as_bytes(), health) {
            Step::Answer { response, .. } => response,
            Step::Partial => panic!("partial: {input:?}"),
        }
    }

    fn status(input: &str, health: Health) -> (u16, &'static str) {
        let r = answer(input, health);
        (r.status, r.body)
    }

    #[test]
    fn readyz_follows_the_ready_state() {
        let get = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(status(get, READY), (200, "ok"));
        assert_eq!(status(get, NOT_READY), (503, "not ready"));
        assert_eq!(status(get, DRAINING), (503, "draining"));
        assert_eq!(status(get, EXITED), (503, "draining"));
    }

    #[test]
    fn livez_is_ok_while_the_child_runs_even_when_draining() {
        let get = "GET /livez HTTP/1.1\r\n\r\n";
        assert_eq!(status(get, READY), (200, "ok"));
        assert_eq!(status(get, NOT_READY), (200, "ok"));
        assert_eq!(status(get, DRAINING), (200, "ok"));
        assert_eq!(status(get, EXITED), (503, "exited"));
    }

    #[test]
    fn query_strings_and_fragments_are_ignored() {
        for target in [
            "/readyz?verbose",
            "/readyz?",
            "/readyz#x",
            "/readyz?a=1&b=2",
        ] {
            let req = format!("GET {target} HTTP/1.1\r\n\r\n");
            assert_eq!(status(&req, DRAINING), (503, "draining"), "{target}");
        }
        assert_eq!(status("GET /livez?x HTTP/1.1\r\n\r\n", READY).0, 200);
    }

    #[test]
    fn the_absolute_form_of_a_target_is_accepted() {
        assert_eq!(
            status("GET http://127.0.0.1:8080/readyz HTTP/1.1\r\n\r\n", READY).0,
            200
        );
        assert_eq!(
            status("GET HTTP://h/livez?x HTTP/1.1\r\n\r\n", READY).0,
            200
        );
        assert_eq!(status("GET http://h HTTP/1.1\r\n\r\n", READY).0, 404);
    }

    #[test]
    fn other_paths_are_not_found() {
        for target in [
            "/", "/readyz/", "/readyzz", "/READYZ", "/livez/x", "*", "/ready", "readyz",
        ] {
            let req = format!("GET {target} HTTP/1.1\r\n\r\n");
            assert_eq!(status(&req, READY), (404, "not found"), "{target}");
        }
        // Unknown path with an unknown method: the path decides.
        assert_eq!(status("POST /nope HTTP/1.1\r\n\r\n", READY).0, 404);
    }

    #[test]
    fn other_methods_are_not_allowed_and_say_what_is() {
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "TRACE"] {
            let req = format!("{method} /readyz HTTP/1.1\r\n\r\n");
            assert_eq!(status(&req, READY), (405, "method not allowed"), "{method}");
        }
        let (text, served) = serve(b"OPTIONS /livez HTTP/1.1\r\n\r\n", READY);
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"), "{text}");
        assert!(!served.close);
    }

    #[test]
    fn every_body_ends_with_a_newline() {
        for (request, health) in [
            ("GET /readyz HTTP/1.1\r\n\r\n", READY),
            ("GET /readyz HTTP/1.1\r\n\r\n", NOT_READY),
            ("GET /readyz HTTP/1.1\r\n\r\n", DRAINING),
            ("GET /livez HTTP/1.1\r\n\r\n", EXITED),
            ("GET /nope HTTP/1.1\r\n\r\n", READY),
            ("POST /readyz HTTP/1.1\r\n\r\n", READY),
            ("GARBAGE\r\n\r\n", READY),
        ] {
            let (text, _) = serve(request.as_bytes(), health);
            let (_, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                body.ends_with('\n') && body.len() > 1,
                "{request:?}: {body:?}"
            );
            assert!(
                text.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
                "{text}"
            );
        }
        let mut out = Vec::new();
        Response::timeout().write_to(&mut out);
        assert!(out.ends_with(b"\r\n\r\nrequest timeout\n"));
    }

    #[test]
    fn a_response_has_every_header_we_promise() {
        let (text, served) = serve(b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n", READY);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\
             Cache-Control: no-store\r\n\r\nok\n"
        );
        assert!(!served.close);
        let (text, _) = serve(b"GET /readyz HTTP/1.1\r\n\r\n", DRAINING);
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nContent-Length: 9\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\ndraining\n"), "{text}");
    }

    #[test]
    fn head_gets_the_headers_of_get_and_no_body() {
        let (text, served) = serve(b"HEAD /readyz HTTP/1.1\r\n\r\n", DRAINING);
        assert_eq!(
            text,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
             Content-Length: 9\r\nCache-Control: no-store\r\n\r\n"
        );
        assert!(!served.close);
        let (text, _) = serve(b"HEAD /nope HTTP/1.1\r\n\r\n", READY);
        assert!(
            text.starts_with("HTTP/1.1 404 ") && text.ends_with("\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn http_1_1_keeps_the_connection_unless_told_to_close() {
        let r = answer("GET /readyz HTTP/1.1\r\n\r\n", READY);
        assert_eq!(r.persist, Persist::KeepAlive);
        for conn in ["close", "Close", "keep-alive, close", " CLOSE "] {
            let req = format!("GET /readyz HTTP/1.1\r\nConnection: {conn}\r\n\r\n");
            assert_eq!(answer(&req, READY).persist, Persist::Close, "{conn}");
        }
        let (text, served) = serve(b"GET /readyz HTTP/1.1\r\nConnection: close\r\n\r\n", READY);
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(served.close);
    }

    #[test]
    fn http_1_0_closes_unless_asked_to_keep_alive_and_then_echoes_it() {
        let (text, served) = serve(b"GET /readyz HTTP/1.0\r\n\r\n", READY);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(served.close);
        let (text, served) = serve(
            b"GET /readyz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            READY,
        );
        assert!(text.contains("\r\nConnection: keep-alive\r\n"), "{text}");
        assert!(!served.close);
        let r = answer(
            "GET /readyz HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
            READY,
        );
        assert_eq!(r.persist, Persist::Close);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let input = b"GET /readyz HTTP/1.1\r\n\r\nHEAD /livez HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\nGET /re";
        let (text, served) = serve(input, READY);
        let statuses: Vec<&str> = text
            .split("HTTP/1.1 ")
            .skip(1)
            .map(|r| r.get(..3).unwrap())
            .collect();
        assert_eq!(statuses, ["200", "200", "404"]);
        assert!(text.ends_with("\r\n\r\nnot found\n"), "{text}");
        // The partial fourth request stays for later.
        assert_eq!(served.consumed, input.len() - "GET /re".len());
        assert!(!served.close);
    }

    #[test]
    fn nothing_after_a_closing_response_is_answered() {
        let input =
            b"GET /readyz HTTP/1.1\r\nConnection: close\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n";
        let (text, served) = serve(input, READY);
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
        assert!(served.close);
        assert_eq!(served.consumed, input.len());
    }

    #[test]
    fn an_incomplete_head_waits_for_more() {
        for partial in [
            "",
            "G",
            "GET /readyz",
            "GET /readyz HTTP/1.1",
            "GET /readyz HTTP/1.1\r\n",
            "GET /readyz HTTP/1.1\r\nHost: x\r\n",
            "\r\n\r\n",
        ] {
            assert_eq!(
                next_request(partial.as_bytes(), READY),
                Step::Partial,
                "{partial:?}"
            );
            let (text, served) = serve(partial.as_bytes(), READY);
            assert_eq!(
                (text.as_str(), served.consumed, served.close),
                ("", 0, false)
            );
        }
    }

    #[test]
    fn malformed_requests_get_400_and_close() {
        for bad in [
            "GET /readyz HTTP/2.0\r\n\r\n",
            "GET /readyz HTTP/1.1 extra\r\n\r\n",
            "GET  /readyz HTTP/1.1\r\n\r\n",
            "GET /readyz\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET /readyz HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET /readyz HTTP/1.1\r\n: empty name\r\n\r\n",
            "GET /readyz HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
            "GET /readyz HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET /readyz HTTP/1.1\r\nContent-Length: +0\r\n\r\n",
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03",
            "GET /re\x00dyz HTTP/1.1\r\n\r\n",
        ] {
            let (text, served) = serve(bad.as_bytes(), READY);
            assert!(
                text.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{bad:?}: {text}"
            );
            assert!(text.contains("\r\nConnection: close\r\n"), "{bad:?}");
            assert!(served.close, "{bad:?}");
            assert_eq!(served.consumed, bad.len());
        }
    }

    #[test]
    fn a_head_over_8_kib_gets_431_and_close() {
        let mut big = b"GET /readyz HTTP/1.1\r\nX-Pad: ".to_vec();
        big.resize(MAX_HEAD, b'a');
        let (text, served) = serve(&big, READY);
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(served.close);
        // Even when the end of the head is in the buffer, past the limit.
        big.extend_from_slice(b"\r\n\r\n");
        let (text, _) = serve(&big, READY);
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        // Just under the limit is fine.
        let mut fits = b"GET /readyz HTTP/1.1\r\nX-Pad: ".to_vec();
        fits.resize(MAX_HEAD - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        assert_eq!(fits.len(), MAX_HEAD);
        let (text, served) = serve(&fits, READY);
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        assert_eq!(served.consumed, MAX_HEAD);
        // Endless blank lines are not a way around the limit.
        let blank = b"\r\n".repeat(MAX_HEAD / 2);
        assert!(serve(&blank, READY).0.starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn too_many_headers_get_431() {
        let mut req = "GET /readyz HTTP/1.1\r\n".to_string();
        for i in 0..MAX_HEADERS {
            req.push_str(&format!("X-{i}: v\r\n"));
        }
        assert_eq!(status(&format!("{req}\r\n"), READY).0, 200);
        req.push_str("X-last: v\r\n\r\n");
        let r = answer(&req, READY);
        assert_eq!((r.status, r.persist), (431, Persist::Close));
    }

    #[test]
    fn a_request_with_a_body_is_answered_then_the_connection_closed() {
        for headers in [
            "Content-Length: 5",
            "Transfer-Encoding: chunked",
            "Content-Length: 5\r\nConnection: keep-alive",
        ] {
            let req =
                format!("POST /readyz HTTP/1.1\r\n{headers}\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n");
            let (text, served) = serve(req.as_bytes(), READY);
            assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
            assert!(text.starts_with("HTTP/1.1 405 "), "{text}");
            assert!(served.close, "{headers}");
        }
        let r = answer("GET /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", READY);
        assert_eq!((r.status, r.persist), (200, Persist::KeepAlive));
        let r = answer("GET /readyz HTTP/1.1\r\nContent-Length: 3\r\n\r\n", READY);
        assert_eq!((r.status, r.persist), (200, Persist::Close));
    }

    #[test]
    fn every_response_fits_in_max_response() {
        for status in [200, 400, 404, 405, 408, 431, 503] {
            for persist in [Persist::KeepAlive, Persist::KeepAliveEchoed, Persist::Close] {
                let mut out = Vec::new();
                // Longer than any body drainit sends.
                let body = "request header fields too large, really\n";
                let r = Response {
                    status,
                    body,
                    head_only: false,
                    persist,
                };
                r.write_to(&mut out);
                assert!(out.len() <= MAX_RESPONSE, "{status}: {}", out.len());
            }
        }
    }

    #[test]
    fn output_waiting_to_be_sent_bounds_how_many_pipelined_requests_are_taken() {
        let one = b"GET /readyz HTTP/1.1\r\n\r\n";
        let many = one.repeat(1000);
        let mut out = Vec::new();
        let served = answer_all(&many, READY, &mut out);
        assert!(out.len() >= OUTPUT_SOFT_LIMIT);
        assert!(out.len() < OUTPUT_SOFT_LIMIT + MAX_RESPONSE);
        assert!(served.consumed < many.len() && served.consumed.is_multiple_of(one.len()));
        // Once drained, the rest is taken.
        let mut rest = Vec::new();
        let more = answer_all(&many[served.consumed..], READY, &mut rest);
        assert!(more.consumed > 0);
    }

    #[test]
    fn the_timeout_response_is_408_and_closes() {
        let mut out = Vec::new();
        Response::timeout().write_to(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(Response::timeout().closes());
    }

    #[test]
    fn any_bytes_get_an_answer_or_a_wait_and_never_a_panic() {
        // A small deterministic sweep in place of the fuzz target: every prefix of some
        // requests, and each with one byte flipped.
        let seeds: [&[u8]; 3] = [
            b"GET /readyz?x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"HEAD http://h/livez HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ];
        for seed in seeds {
            for end in 0..=seed.len() {
                for flip in 0..end {
                    let mut input = seed[..end].to_vec();
                    input[flip] ^= 0x20;
                    let mut out = Vec::new();
                    let served = answer_all(&input, READY, &mut out);
                    assert!(served.consumed <= input.len());
                    assert!(served.consumed == 0 || !out.is_empty());
                }
            }
        }
    }
}
