//! Host-name lookups that never block the caller. getaddrinfo (/etc/hosts, then DNS) waits as
//! long as the resolver takes: with a nameserver that never answers, 10 s and more. drainit has
//! no threads, so a lookup runs in a short-lived forked helper process (sys.rs `fork_helper`)
//! that resolves the name, writes the addresses to a pipe as text lines and exits; the caller
//! polls the pipe's read end with everything else and reads it to EOF. A caller that stops
//! waiting drops the `Lookup`: the helper finishes on its own (it dies of SIGALRM within
//! `HELPER_LIFETIME`) and is reaped like any other child.
//!
//! The answer, one line each: `A <socket address>` per address, or `E <why>`.

use std::fs::File;
use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags};

use crate::sys;

/// A helper lives at most this long (seconds): longer than any caller waits (the check's 1 s,
/// the probe's 1.9 s), so a helper stuck on a silent nameserver never outlives its use by much.
const HELPER_LIFETIME: u32 = 2;
/// An answer longer than this is not one getaddrinfo gives: fail rather than keep reading.
const MAX_ANSWER: usize = 64 * 1024;

/// A lookup in progress: the pipe from its helper and what it has sent so far.
pub struct Lookup {
    name: String,
    pipe: File,
    got: Vec<u8>,
    /// Has the helper's EOF (or a read error) been seen? Then it has finished with the pipe.
    done: bool,
}

impl Lookup {
    /// Start looking `name` up (for `port`) in a helper process.
    pub fn start(name: &str, port: u16) -> Result<Lookup, String> {
        let pipe = sys::fork_helper(HELPER_LIFETIME, || encode(&resolve(name, port)))
            .map_err(|e| format!("cannot resolve '{name}': cannot start a lookup: {e}"))?;
        Ok(Lookup {
            name: name.to_string(),
            pipe: File::from(pipe),
            got: Vec::new(),
            done: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn poll_fd(&self) -> PollFd<'_> {
        PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN)
    }

    /// Is the helper still at work (no EOF read yet)?
    pub fn running(&self) -> bool {
        !self.done
    }

    /// Read what the helper sent. `None` until EOF; then the addresses, or why there are none.
    pub fn read(&mut self) -> Option<Result<Vec<SocketAddr>, String>> {
        let answer = self.read_more();
        self.done |= answer.is_some();
        answer
    }

    fn read_more(&mut self) -> Option<Result<Vec<SocketAddr>, String>> {
        let mut buf = [0u8; 512];
        loop {
            match self.pipe.read(&mut buf) {
                Ok(0) => return Some(decode(&self.name, &self.got)),
                Ok(n) => self.got.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => return Some(Err(format!("cannot resolve '{}': {e}", self.name))),
            }
            if self.got.len() > MAX_ANSWER {
                return Some(Err(format!(
                    "cannot resolve '{}': answer too long",
                    self.name
                )));
            }
        }
    }
}

/// The blocking lookup itself (getaddrinfo), run in the helper.
pub fn resolve(name: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = (name, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{name}': {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("cannot resolve '{name}': no address"));
    }
    Ok(addrs)
}

fn encode(answer: &Result<Vec<SocketAddr>, String>) -> Vec<u8> {
    let text = match answer {
        Ok(addrs) => addrs.iter().map(|a| format!("A {a}\n")).collect(),
        Err(why) => format!("E {}\n", why.replace('\n', " ")),
    };
    text.into_bytes()
}

fn decode(name: &str, got: &[u8]) -> Result<Vec<SocketAddr>, String> {
    let text = String::from_utf8_lossy(got);
    let mut addrs = Vec::new();
    for line in text.lines() {
        if let Some(why) = line.strip_prefix("E ") {
            return Err(why.to_string());
        }
        match line.strip_prefix("A ").and_then(|a| a.parse().ok()) {
            Some(addr) => addrs.push(addr),
            None => return Err(format!("cannot resolve '{name}': a garbled answer")),
        }
    }
    if got.is_empty() {
        // The helper died (of its SIGALRM, or killed) before it answered.
        return Err(format!(
            "cannot resolve '{name}': the resolver did not answer"
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_survive_the_pipe_encoding() {
        let addrs: Vec<SocketAddr> =
            vec!["[::1]:80".parse().unwrap(), "127.0.0.1:80".parse().unwrap()];
        assert_eq!(decode("x", &encode(&Ok(addrs.clone()))), Ok(addrs));
        let why = "cannot resolve 'x': failed\nto look up".to_string();
        assert_eq!(
            decode("x", &encode(&Err(why))),
            Err("cannot resolve 'x': failed to look up".to_string())
        );
        assert!(decode("x", b"").unwrap_err().contains("did not answer"));
        assert!(
            decode("x", b"A nonsense\n")
                .unwrap_err()
                .contains("garbled")
        );
    }

    #[test]
    fn a_name_is_resolved_to_its_addresses() {
        let addrs = resolve("localhost", 80).unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }
}
