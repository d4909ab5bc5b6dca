#!/usr/bin/env python3
"""Rolling restarts behind HAProxy: how many requests does each init lose?

The setup of /work/shared/field-notes.md, on loopback: HAProxy with active checks
(`GET /readyz`, `inter 1s fall 2 rise 2`, `retries 0`, no redispatch) in front of N backends.
Each backend is examples/node-app started by `npm start` under an init that is PID 1 of its own
PID namespace (`unshare --pid --fork --mount-proc INIT ... npm start`). HAProxy checks drainit's
own readiness endpoint (--ready-addr) for drainit, and the app's `/readyz` for the other inits,
which have none. A load generator sends a fixed rate of kept-alive requests and a fixed rate of
requests on new connections, and records every request and every kind of failure. While it
runs, each backend is restarted in turn, ROUNDS times: SIGTERM to the init, wait for it to exit,
start a new one, wait until HAProxy has it UP again.

Standard library only (matplotlib is needed by plot.py alone). run.sh installs what is missing
(scripts/install-deps.sh) and calls this. Results: a table on stdout, OUT/results.json (and .tsv),
OUT/<case>.csv (one line per request), OUT/<case>.events.json, OUT/<case>.haproxy.log, the
backends' output in OUT/<case>-bN.log, and with --docs FILE the table replaces the block
between `<!-- results:begin -->` and `<!-- results:end -->` in FILE.
Exit status: 0, or 1 with --fail-on-loss if any drainit case lost a request, or 2 on a setup
failure (a backend that never came up, HAProxy that would not start).
"""

import argparse
import asyncio
import collections
import datetime
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APP_DIRS = {"node": os.path.join(ROOT, "examples", "node-app"),
            "gunicorn": os.path.join(ROOT, "examples", "fastapi-app")}
VENV = os.environ.get("DRAINIT_VENV", "/opt/drainit-venv")
INITS = ["drainit", "tini", "dumb-init", "catatonit"]
MODES = ["graceful", "default"]
# Failure kinds, in table order. http503/http502 come from HAProxy: 503 when no server is up or
# the connect to the chosen one was refused (SC--), 502 when the server died mid-request (SH--).
FAIL_KINDS = ["refused", "reset", "closed", "truncated", "timeout", "http503", "http502",
              "http5xx", "http_other", "error"]
DRAIN_DELAY = "3s"  # field notes: fall x inter (2 s) + check timeout + longest request


class SetupError(Exception):
    """The benchmark could not be set up or a backend never came back: no result."""


def now():
    return time.monotonic()


def free_port():
    """A port nobody listens on right now (tiny race, fine on a test machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, cond, timeout, interval=0.05):
    deadline = now() + timeout
    while True:
        if cond():
            return
        if now() >= deadline:
            raise SetupError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_status(port, path="/readyz", timeout=0.5):
    """Status of GET path on 127.0.0.1:port, or None if there is no answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            head = s.recv(64).decode("latin1")
            return int(head.split()[1])
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- load generator

class Loader:
    """Open-loop load at fixed rates, in a thread with its own asyncio loop.

    Every request is recorded as (t_issue, latency, conn, kind) with t relative to `t0`
    (time.monotonic); conn is "k" (kept-alive, reused from a pool) or "n" (a new connection
    with `Connection: close`). A kept-alive connection that fails is dropped, not retried.
    """

    def __init__(self, port, rate_keepalive, rate_new, delay_ms, timeout, t0, post=False):
        self.port = port
        self.post = post  # every other request of each kind is a POST with a small body
        self._sent = [0, 0]
        self.rates = (rate_keepalive, rate_new)
        self.path = f"/?delay={delay_ms}" if delay_ms else "/"
        self.timeout = timeout
        self.t0 = t0
        self.records = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loader", daemon=True)
        self._pool = collections.deque()  # idle kept-alive connections: (reader, writer, t_idle)

    def start(self):
        self._thread.start()

    def stop(self):
        """Stop issuing; wait for the requests in flight (at most the timeout)."""
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        tasks = set()

        async def ticker(rate, one):
            if rate <= 0:
                return
            loop = asyncio.get_running_loop()
            start, n = loop.time(), 0
            while not self._stop.is_set():
                delay = start + n / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1

        await asyncio.gather(ticker(self.rates[0], self._keepalive), ticker(self.rates[1], self._new))
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout + 1)
        while self._pool:
            self._pool.popleft()[1].close()

    def _record(self, t, conn, kind):
        self.records.append((t - self.t0, now() - t, conn, kind))

    async def _new(self):
        t = now()
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port), self.timeout)
            status, _ = await asyncio.wait_for(
                self._exchange(reader, writer, keepalive=False), self.timeout - (now() - t))
            kind = classify(status)
        except Exception as e:  # every failure is a result, none may escape
            kind = failure_kind(e)
        finally:
            if writer:
                writer.close()
        self._record(t, "n", kind)

    async def _keepalive(self):
        t = now()
        conn = None
        while self._pool:
            reader, writer, idle_since = self._pool.popleft()
            # HAProxy closes idle client connections after `timeout http-keep-alive`; a request
            # racing that close would be a client bug, not a restart loss: drop old ones first.
            if t - idle_since < 5:
                conn = (reader, writer)
                break
            writer.close()
        try:
            if conn is None:
                conn = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), self.timeout)
            status, close = await asyncio.wait_for(
                self._exchange(*conn, keepalive=True), self.timeout - (now() - t))
            kind = classify(status)
            if close:
                conn[1].close()
            else:
                self._pool.append((conn[0], conn[1], now()))
        except Exception as e:  # every failure is a result, none may escape
            kind = failure_kind(e)
            if conn:
                conn[1].close()
        self._record(t, "k", kind)

    async def _exchange(self, reader, writer, keepalive):
        hdr = "" if keepalive else "Connection: close\r\n"
        n = self._sent[keepalive]
        self._sent[keepalive] += 1
        if self.post and n % 2:
            body = "x" * 512
            writer.write(f"POST {self.path} HTTP/1.1\r\nHost: bench\r\n{hdr}Content-Type: "
                         f"text/plain\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        else:
            writer.write(f"GET {self.path} HTTP/1.1\r\nHost: bench\r\n{hdr}\r\n".encode())
        await writer.drain()
        return await read_response(reader)


async def read_response(reader):
    """(status, server_closes) of one HTTP/1.1 response; the body is read and dropped."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin1")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
        return status, headers.get("connection") == "close"
    while await reader.read(65536):  # no length: the body ends at close
        pass
    return status, True


def classify(status):
    if 200 <= status < 300:
        return "ok"
    if status in (502, 503):
        return f"http{status}"
    if status >= 500:
        return "http5xx"
    return "http_other"


def failure_kind(e):
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(e, asyncio.IncompleteReadError):
        # EOF before any byte of a response: the connection was closed under the request.
        return "closed" if not e.partial else "truncated"
    if isinstance(e, asyncio.TimeoutError):
        return "timeout"
    return "error"


# ---------------------------------------------------------------- HAProxy

def terminate(proc):
    """SIGTERM `proc`, SIGKILL it if it is still there 5 s later, and reap it."""
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class HAProxy:
    """HAProxy in the foreground, its log lines time-stamped as they arrive."""

    def __init__(self, workdir, port, backends, events):
        self.sock = os.path.join(workdir, "haproxy.sock")
        self.cfg = os.path.join(workdir, "haproxy.cfg")
        self.port = port
        self.events = events
        self.log = []
        servers = "\n".join(
            f"    server {b.name} 127.0.0.1:{b.app_port} check"
            + (f" port {b.check_port}" if b.check_port != b.app_port else "")
            for b in backends)
        # Mirrors deploy/haproxy.cfg (the example for users); ports are picked per run.
        with open(self.cfg, "w") as f:
            f.write(f"""\
global
    log stdout format raw local0
    stats socket {self.sock} level admin
    maxconn 4096

defaults
    mode http
    log global
    # Log only the requests that went wrong, with their termination state (%tsc: SC--, SH--).
    option dontlog-normal
    log-format "%ci:%cp %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc"
    retries 0
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    timeout check 1s

frontend web
    bind 127.0.0.1:{port}
    default_backend app

backend app
    balance roundrobin
    option httpchk GET {backends[0].check_path}
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
""")
        subprocess.run(["haproxy", "-c", "-q", "-f", self.cfg], check=True)
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "haproxy", "-db", "-f", self.cfg],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read_log, daemon=True).start()
        wait_until("HAProxy's stats socket", lambda: self._try_stat() is not None, 10)

    def _read_log(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.log.append((now(), line))
            m = re.match(r"Server app/(\S+) is (UP|DOWN)", line)  # the log line, not the stderr copy
            if m:
                self.events.append((now(), m.group(1), f"haproxy {m.group(2)}"))

    def _try_stat(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.sock)
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return None
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return None
        header = lines[0][2:].split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r["status"] for r in rows if r.get("pxname") == "app"}

    def status(self, server):
        return (self._try_stat() or {}).get(server)

    def termination_states(self, since, until):
        """Counts of %tsc in the log lines of failed requests between since and until."""
        counts = collections.Counter()
        for t, line in self.log:
            # -1: no response at all (HAProxy closed the client connection, e.g. "CD--").
            m = re.match(r"\S+ app/\S+ \S+ (-?\d+) \d+ (\S{4})$", line)
            if m and since <= t <= until:
                counts[f"{m.group(1)} {m.group(2)}"] += 1
        return dict(counts)

    def save_log(self, path):
        with open(path, "w") as f:
            f.writelines(f"{t:.3f} {line}\n" for t, line in self.log)

    def stop(self):
        terminate(self.proc)


class Nginx:
    """nginx open source with deploy/nginx.conf's settings: no active checks (it never asks
    /readyz), passive `max_fails=3 fail_timeout=2s`, `proxy_next_upstream error timeout`,
    kept-alive upstream connections. The access log holds the failed requests only."""

    def __init__(self, workdir, port, backends, events):
        self.port = port
        self.workdir = workdir
        self.cfg = os.path.join(workdir, "nginx.conf")
        self.access = os.path.join(workdir, "failed.log")
        servers = "\n".join(f"        server 127.0.0.1:{b.app_port} max_fails=3 fail_timeout=2s;"
                            for b in backends)
        temp = "\n".join(f"    {k}_temp_path {os.path.join(workdir, k)};"
                         for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(self.cfg, "w") as f:
            f.write(f"""\
daemon off;
worker_processes 1;
pid {os.path.join(workdir, "nginx.pid")};
error_log {os.path.join(workdir, "error.log")} warn;
events {{ worker_connections 4096; }}
http {{
{temp}
    map $status $failed {{ ~^[45] 1; default 0; }}
    log_format failed '$status $upstream_status';
    access_log {self.access} failed if=$failed;
    upstream app {{
{servers}
        keepalive 16;
        keepalive_timeout 1s;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_timeout 10s;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 5s;
            proxy_connect_timeout 1s;
        }}
    }}
}}
""")
        base = ["nginx", "-c", self.cfg, "-p", workdir, "-e", os.path.join(workdir, "error.log")]
        subprocess.run(base + ["-t", "-q"], check=True)
        self.proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL"] + base,
                                     stdin=subprocess.DEVNULL)
        # A connect, not a request: a request now would be logged as a failure of the run.
        wait_until("nginx to listen", lambda: self._listens(), 10)

    def _listens(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def status(self, server):
        return "UP"  # nothing to ask: nginx keeps no state but its passive failure counts

    def termination_states(self, since, until):
        """Counts of `status upstream_status` of the failed requests (the whole run)."""
        try:
            with open(self.access) as f:
                return dict(collections.Counter(line.strip() for line in f if line.strip()))
        except OSError:
            return {}

    def save_log(self, path):
        for name in ("failed.log", "error.log"):
            src = os.path.join(self.workdir, name)
            if os.path.exists(src):
                with open(src) as f, open(f"{path}.{name}", "w") as out:
                    out.write(f.read())

    def stop(self):
        terminate(self.proc)


# ---------------------------------------------------------------- backends

class Backend:
    """One app (node-app by `npm start`, or the FastAPI app under gunicorn) under INIT, as PID 1
    of its own PID namespace."""

    def __init__(self, index, init, mode, drainit, logdir, events, drain_delay, ready_check,
                 app="node"):
        self.name = f"b{index + 1}"
        self.app = app
        self.init = init
        self.mode = mode
        self.drainit = drainit
        self.drain_delay = drain_delay
        self.ready_check = ready_check
        self.app_port = free_port()
        self.check_port = free_port() if init == "drainit" else self.app_port
        # What the load balancer checks: drainit's /readyz, else the app's own endpoint.
        self.check_path = "/healthz" if app == "gunicorn" and init != "drainit" else "/readyz"
        self.logfile = os.path.join(logdir, f"{init}-{mode}-{self.name}.log")
        if os.path.exists(self.logfile):
            os.remove(self.logfile)  # appended to across restarts, fresh for each run
        self.events = events
        self.proc = None

    def app_command(self):
        if self.app == "gunicorn":
            # --no-control-socket: gunicorn 27's default socket is one path for every instance.
            # --keep-alive 30: longer than the load balancer keeps an idle connection to a node
            # (gunicorn's docs advise it behind one); with the default 2 s, a request that
            # HAProxy sends on a connection the app is just closing fails.
            return [os.path.join(VENV, "bin", "gunicorn"), "-w", "2", "-k",
                    "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{self.app_port}",
                    "--keep-alive", "30", "--no-control-socket", "app:app"]
        return ["npm", "start"]

    def ready_check_target(self):
        # gunicorn's master binds before a worker can answer: tcp:// would pass too early.
        if self.app == "gunicorn":
            return f"http://127.0.0.1:{self.app_port}/healthz"
        return f"tcp://127.0.0.1:{self.app_port}"

    def init_command(self):
        app = self.app_command()
        if self.init == "drainit":
            check = (["--ready-check", self.ready_check_target()]
                     if self.ready_check else [])
            return [self.drainit, "--drain-delay", self.drain_delay,
                    "--ready-addr", f"127.0.0.1:{self.check_port}"] + check + [
                    "--grace-period", "10s", "--"] + app
        if self.init in ("tini", "catatonit"):
            return [self.init, "-g", "--"] + app  # -g: signal the whole group, as drainit does
        return [self.init, "--"] + app  # dumb-init signals the group by default

    def start(self):
        env = dict(os.environ, PORT=str(self.app_port), HOST="127.0.0.1",
                   NPM_CONFIG_UPDATE_NOTIFIER="false", NPM_CONFIG_FUND="false")
        env.pop("GRACEFUL", None)
        if self.mode == "graceful":
            env["GRACEFUL"] = "1"
        # setpriv --pdeathsig and unshare --kill-child: if this script dies, so does the
        # namespace, whatever killed us.
        cmd = ["setpriv", "--pdeathsig", "KILL", "unshare", "--pid", "--fork", "--kill-child",
               "--mount-proc"] + self.init_command()
        with open(self.logfile, "a") as log:
            log.write(f"==== {datetime.datetime.now().isoformat()} {' '.join(cmd)}\n")
            log.flush()
            self.proc = subprocess.Popen(cmd, cwd=APP_DIRS[self.app], env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.events.append((now(), self.name, "started"))

    def init_pid(self):
        """The pid (outside the namespace) of the init, unshare's only child."""
        path = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"
        pid = []

        def found():
            try:
                with open(path) as f:
                    pid[:] = f.read().split()[:1]
            except OSError:
                pass
            return bool(pid) or self.proc.poll() is not None
        wait_until(f"{self.name}'s init to start", found, 10, 0.01)
        if not pid:
            raise SetupError(f"{self.name} exited at once; see {self.logfile}")
        return int(pid[0])

    def stop(self, timeout=30):
        """SIGTERM to the init; wait for it (and so its whole namespace) to be gone."""
        pid = self.init_pid()
        self.events.append((now(), self.name, "SIGTERM"))
        os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise SetupError(f"{self.name} ({self.init}) did not exit {timeout}s after SIGTERM")
        self.events.append((now(), self.name, f"exited {self.proc.returncode}"))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # unshare --kill-child takes the namespace with it
            self.proc.wait()

    def wait_up(self, haproxy, timeout):
        """Until the new instance answers its readiness probe and HAProxy has it UP.

        Both, because right after a quick restart HAProxy may still show the stale UP of the
        old instance; once the new one is ready, that UP is true again.
        """
        wait_until(f"{self.name} ready",
                   lambda: http_status(self.check_port, self.check_path) == 200, timeout)
        wait_until(f"HAProxy to mark {self.name} UP",
                   lambda: haproxy.status(self.name) == "UP", timeout)
        self.events.append((now(), self.name, "UP"))


# ---------------------------------------------------------------- one case

def run_case(args, init, mode, workdir):
    events = []  # (t, backend, what)
    backends = [Backend(i, init, mode, args.drainit, args.out, events, args.drain_delay,
                        not args.no_ready_check, args.app)
                for i in range(args.backends)]
    haproxy = None
    loader = None
    load = [os.getloadavg()[0]]
    try:
        for b in backends:
            b.start()
        haproxy = (Nginx if args.lb == "nginx" else HAProxy)(workdir, free_port(), backends,
                                                               events)
        for b in backends:
            b.wait_up(haproxy, args.up_timeout)
        t0 = now()
        loader = Loader(haproxy.port, args.rate_keepalive, args.rate_new, args.delay_ms,
                        args.timeout, t0, args.post)
        loader.start()
        time.sleep(args.warmup)
        restarts = []
        for rnd in range(args.rounds):
            for b in backends:
                t_term = now()
                b.stop()
                b.start()
                b.wait_up(haproxy, args.up_timeout)
                restarts.append(now() - t_term)
                log(f"  {init}/{mode}: round {rnd + 1}, {b.name} restarted in "
                    f"{restarts[-1]:.1f}s, {len(loader.records)} requests so far")
                time.sleep(args.pause)
        time.sleep(args.tail)
        loader.stop()
        load.append(os.getloadavg()[0])
        t_end = now()
        tsc = haproxy.termination_states(t0, t_end + 1)
        haproxy.save_log(os.path.join(args.out, f"{init}-{mode}.{args.lb}.log"))
    finally:
        if loader:
            loader.stop()
        for b in backends:
            b.kill()
        if haproxy:
            haproxy.stop()

    counts = collections.Counter(r[3] for r in loader.records)
    by_conn = {c: dict(collections.Counter(r[3] for r in loader.records if r[2] == c))
               for c in ("k", "n")}
    failures = sum(v for k, v in counts.items() if k != "ok")
    name = f"{init}-{mode}"
    with open(os.path.join(args.out, f"{name}.csv"), "w") as f:
        f.write("t_issue,latency,conn,kind\n")
        for t, lat, conn, kind in loader.records:
            f.write(f"{t:.4f},{lat:.4f},{conn},{kind}\n")
    with open(os.path.join(args.out, f"{name}.events.json"), "w") as f:
        json.dump([(t - t0, b, what) for t, b, what in events], f, indent=0)
    return {
        "init": init, "mode": mode, "requests": len(loader.records), "failures": failures,
        "kinds": {k: counts.get(k, 0) for k in FAIL_KINDS},
        "by_conn": by_conn, "haproxy_termination": tsc,
        "restarts": len(restarts),
        # The machine's 1-minute load average at the start and the end: on a busy machine the
        # checks, the restarts and the load generator all run late.
        "load": [round(x, 1) for x in load],
        "restart_seconds": round(sum(restarts) / len(restarts), 2) if restarts else None,
    }


# ---------------------------------------------------------------- report

def machine_line():
    kernel = platform.release()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split()[2]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} CPUs (nproc), Linux {kernel}, HAProxy {haproxy}, Node.js {node}, "
            f"{date}")


def table(results, args):
    def pct(r):
        return f"{100 * r['failures'] / r['requests']:.2f} %" if r["requests"] else "-"
    shown = [k for k in FAIL_KINDS if any(r["kinds"][k] for r in results)] or ["http503"]
    head = (["init", "app mode", "requests", "failed", "failed %"] + shown
            + ["failed per restart", f"{'nginx' if args.lb == 'nginx' else 'HAProxy'} log of "
               "failures", "s per restart", "load avg"])
    rows = []
    for r in results:
        tsc = ", ".join(f"{k}: {v}" for k, v in sorted(r["haproxy_termination"].items())) or "-"
        rows.append([f"`{r['init']}`", r["mode"], str(r["requests"]), f"**{r['failures']}**",
                     pct(r)] + [str(r["kinds"][k]) for k in shown]
                    + [f"{r['failures'] / max(r['restarts'], 1):.1f}", tsc,
                       str(r["restart_seconds"]), "→".join(f"{x:g}" for x in r["load"])])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def settings_line(args):
    app = ("gunicorn -w 2 -k uvicorn.workers.UvicornWorker --keep-alive 30 (examples/fastapi-app)"
           if args.app == "gunicorn" else "`npm start` (examples/node-app)")
    check = "http://127.0.0.1:APP_PORT/healthz" if args.app == "gunicorn" else \
        "tcp://127.0.0.1:APP_PORT"
    return (f"app: {app}; {args.backends} backends, each restarted {args.rounds}x in turn; "
            f"{args.rate_keepalive:g} req/s kept-alive + {args.rate_new:g} req/s on new "
            "connections "
            + ("through nginx (deploy/nginx.conf: no active checks, `max_fails=3 fail_timeout=2s`, "
               "`proxy_next_upstream error timeout`); " if args.lb == "nginx" else
               "through HAProxy (`inter 1s fall 2 rise 2`, `retries 0`); ")
            + f"requests `/?delay={args.delay_ms}` (ms)"
            + (", half of them POSTs" if args.post else "") + f", timeout {args.timeout:g} s; drainit "
            f"`--drain-delay {args.drain_delay} "
            + ("" if args.no_ready_check else f"--ready-check {check} ")
            + "--grace-period 10s`")


def write_docs(path, block):
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    text = open(path).read() if os.path.exists(path) else ""
    new = f"{begin}\n{block}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + new + text[text.index(end) + len(end):]
    else:
        text += ("\n" if text else "") + new + "\n"
    with open(path, "w") as f:
        f.write(text)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inits", default=",".join(INITS), help="comma list, default: all")
    p.add_argument("--modes", default=",".join(MODES), help="graceful,default")
    p.add_argument("--drainit", default=os.path.join(ROOT, "target", "release", "drainit"))
    p.add_argument("--drain-delay", default=DRAIN_DELAY)
    p.add_argument("--no-ready-check", action="store_true",
                   help="run drainit without --ready-check (its /readyz says 200 before node "
                        "listens: requests are lost at start-up)")
    p.add_argument("--app", choices=sorted(APP_DIRS), default="node",
                   help="node: examples/node-app by `npm start`; gunicorn: examples/fastapi-app "
                        "under `gunicorn -w 2 -k uvicorn.workers.UvicornWorker` (from $DRAINIT_VENV)")
    p.add_argument("--lb", choices=["haproxy", "nginx"], default="haproxy",
                   help="the load balancer: HAProxy with active checks on /readyz, or nginx "
                        "open source (deploy/nginx.conf), which has none")
    p.add_argument("--post", action="store_true",
                   help="every other request is a POST with a 512-byte body")
    p.add_argument("--backends", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2, help="restarts of each backend")
    p.add_argument("--rate-keepalive", type=float, default=100, help="req/s kept-alive")
    p.add_argument("--rate-new", type=float, default=100, help="req/s on new connections")
    p.add_argument("--delay-ms", type=int, default=5, help="the app's answer time")
    p.add_argument("--timeout", type=float, default=5, help="per request, seconds")
    p.add_argument("--warmup", type=float, default=3, help="seconds of load before restarts")
    p.add_argument("--pause", type=float, default=5,
                   help="seconds between restarts (keeps them apart in the picture)")
    p.add_argument("--tail", type=float, default=2, help="seconds of load after the last")
    p.add_argument("--up-timeout", type=float, default=30)
    p.add_argument("--out", default=None, help="directory for raw results (default: a tmpdir)")
    p.add_argument("--docs", default=None, help="markdown file to write the results block to")
    p.add_argument("--fail-on-loss", action="store_true",
                   help="exit 1 if a drainit case lost any request")
    args = p.parse_args()
    args.inits = [i for i in args.inits.split(",") if i]
    args.modes = [m for m in args.modes.split(",") if m]
    for i in args.inits:
        if i not in INITS:
            p.error(f"unknown init {i!r}")
    for m in args.modes:
        if m not in MODES:
            p.error(f"unknown mode {m!r}")
    if os.geteuid() != 0:
        p.error("needs root (unshare --pid)")
    # Backends run in examples/node-app: a relative path would not resolve there.
    if os.sep in args.drainit:
        args.drainit = os.path.abspath(args.drainit)
    args.out = os.path.abspath(args.out or tempfile.mkdtemp(prefix="rolling-restart-"))
    os.makedirs(args.out, exist_ok=True)

    # A SIGTERM (a test's cleanup, a Ctrl-C) must still run the finally blocks that stop
    # every backend and HAProxy.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    machine = machine_line()
    log(f"rolling-restart: {machine}; raw results in {args.out}")
    results = []
    try:
        for init in args.inits:
            for mode in args.modes:
                log(f"rolling-restart: {init} / {mode}")
                with tempfile.TemporaryDirectory(prefix="rr-") as workdir:
                    results.append(run_case(args, init, mode, workdir))
                r = results[-1]
                log(f"rolling-restart: {init} / {mode}: {r['failures']} of {r['requests']} "
                    f"requests failed {r['kinds']}")
    except SetupError as e:
        log(f"rolling-restart: setup failed: {e}")
        return 2
    summary = {"machine": machine, "settings": settings_line(args), "results": results,
               "drain_delay": args.drain_delay}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    # The same counts as plain columns, for tests/rolling_restart.rs (no JSON parser there).
    with open(os.path.join(args.out, "results.tsv"), "w") as f:
        f.write("init\tmode\trequests\tfailures\trestarts\n")
        for r in results:
            f.write(f"{r['init']}\t{r['mode']}\t{r['requests']}\t{r['failures']}\t"
                    f"{r['restarts']}\n")
    block = f"Machine: {machine}.\n\nSettings: {summary['settings']}.\n\n{table(results, args)}"
    print(block)
    if args.docs:
        write_docs(args.docs, block)
    lost = [r for r in results if r["init"] == "drainit" and r["failures"]]
    if args.fail_on_loss and lost:
        log("rolling-restart: drainit lost requests: " + "; ".join(
            f"{r['mode']}: {r['failures']} {r['kinds']}" for r in lost))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
