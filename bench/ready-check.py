#!/usr/bin/env python3
"""Benchmark of --ready-check following the app at start-up, and of --probe (contract, points 8
and 9), on loopback only.

1. app listens -> /readyz 200: drainit (plainly, not PID 1) runs `sleep` with
   `--ready-check tcp://127.0.0.1:P`; this script polls /readyz every millisecond on a kept-alive
   connection, starts listening on P itself at a random moment 0.3-1.3 s after drainit started
   (so the moment falls anywhere in drainit's check cadence), and measures from just before
   listen(2) to the first 200 it has read. One fresh drainit per sample.
2. --probe: wall time of `drainit --probe` (process start to exit) against a healthy drainit,
   a refused port, and a server that accepts and never answers (bounded at 2 s).

Usage: bench/ready-check.py [SAMPLES] [DRAINIT ...]
  SAMPLES defaults to 40 (section 1; section 2 runs SAMPLES probes per case, 3 for the silent
  server). DRAINIT defaults to target/release/drainit, built first; give several binaries (for
  instance an older build) to compare them. Prints medians, p90 and max.
"""

import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_drainit(binary, args):
    """drainit with ARGS -- sleep 1000, and the port its readiness server got."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAINIT_")}
    p = subprocess.Popen(
        [binary, "--ready-addr", "127.0.0.1:0", *args, "--", "sleep", "1000"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    marker = "serving /readyz and /livez on "
    for line in p.stderr:
        if marker in line:
            return p, int(line.rsplit(":", 1)[1])
    sys.exit(f"bench: {binary} did not start its readiness server")


def stop(p):
    """SIGTERM, so drainit stops its `sleep` too (a SIGKILLed drainit would leave it behind)."""
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


class Poller:
    """GET /readyz on one kept-alive connection."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def status(self):
        self.s.sendall(b"GET /readyz HTTP/1.1\r\n\r\n")
        buf = b""
        while True:
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(body) >= length:
                    return int(buf[9:12])
            chunk = self.s.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk


def listen_to_200(binary):
    app_port = free_port()
    p, port = start_drainit(binary, ["--ready-check", f"tcp://127.0.0.1:{app_port}"])
    try:
        poller = Poller(port)
        listen_at = time.monotonic() + random.uniform(0.3, 1.3)
        while time.monotonic() < listen_at:
            assert poller.status() == 503, "ready before the app listens"
            time.sleep(0.001)
        app = socket.socket()
        app.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        app.bind(("127.0.0.1", app_port))
        t0 = time.monotonic_ns()
        app.listen(16)
        deadline = time.monotonic() + 10
        while poller.status() != 200:
            if time.monotonic() > deadline:
                sys.exit("bench: /readyz did not turn 200 within 10 s")
            time.sleep(0.001)
        took = (time.monotonic_ns() - t0) / 1e6
        app.close()
        return took
    finally:
        stop(p)


def probe_ms(binary, target):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAINIT_")}
    t0 = time.monotonic_ns()
    r = subprocess.run([binary, "--probe", target], env=env, capture_output=True)
    return (time.monotonic_ns() - t0) / 1e6, r.returncode


def summary(label, ms):
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(
        f"   {label}: {len(ms)} runs, median {statistics.median(ms):.1f} ms, "
        f"p90 {p90:.1f} ms, max {ms[-1]:.1f} ms"
    )


def main():
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    binaries = sys.argv[2:]
    if not binaries:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        binaries = [os.path.join(ROOT, "target", "release", "drainit")]
    print("== 1. app listens -> first 200 on /readyz (--ready-check tcp://127.0.0.1:P)")
    for b in binaries:
        summary(b, [listen_to_200(b) for _ in range(samples)])
    print("== 2. drainit --probe, process start to exit")
    for b in binaries:
        if subprocess.run([b, "--probe", "--help"], capture_output=True).returncode != 0:
            print(f"   {b}: has no --probe")
            continue
        p, port = start_drainit(b, [])
        try:
            runs = [probe_ms(b, f":{port}") for _ in range(samples)]
            assert all(code == 0 for _, code in runs), runs
            summary(f"{b} healthy", [ms for ms, _ in runs])
        finally:
            stop(p)
        refused = f":{free_port()}"
        runs = [probe_ms(b, refused) for _ in range(samples)]
        assert all(code == 1 for _, code in runs), runs
        summary(f"{b} refused", [ms for ms, _ in runs])
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        target = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        runs = [probe_ms(b, target) for _ in range(3)]
        assert all(code == 1 for _, code in runs), runs
        summary(f"{b} silent server", [ms for ms, _ in runs])
        silent.close()


if __name__ == "__main__":
    main()
