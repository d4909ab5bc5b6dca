#!/usr/bin/env python3
"""A rolling recreate in the real Docker engine: how many requests does each init lose?

RisingStack's benchmark of graceful shutdown, with Compose: HAProxy (deploy/compose-haproxy.cfg:
`GET /readyz` checks, `inter 1s fall 2 rise 2`, `retries 0`, no redispatch) in front of three
containers of the Dockerfile.example image, `ab -n REQUESTS -c 20` (and `-k`) through HAProxy's
port on 127.0.0.1, and while ab runs every app container is recreated in turn
(`up -d --no-deps --force-recreate appN`, then wait until it is healthy and HAProxy has it UP),
round after round until ab is done. The inits:

  drainit  the image as built: drainit as ENTRYPOINT (--drain-delay 4s), HAProxy checks drainit's
           /readyz, HEALTHCHECK `drainit --probe`
  tini     Docker's own init (`init: true`, Docker's docker-init = tini), `npm start`; HAProxy
           checks the app's own /readyz (GRACEFUL=1: 503 once SIGTERM came)
  npm      `npm start` as PID 1, no init; checks as for tini

Each container gets stop_grace_period 15 s. Standard library only; run.sh builds the images
(scripts/docker-bases.sh + Dockerfile.example) and calls this. Results: a table on stdout,
OUT/results.json, OUT/<case>.ab.txt (ab's output), OUT/<case>.haproxy.log, OUT/<case>.events.json;
with --docs FILE the table replaces the block between `<!-- docker-results:begin -->` and
`<!-- docker-results:end -->` in FILE.
"""

import argparse
import datetime
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REPLICAS = ["app1", "app2", "app3"]
INITS = ["drainit", "tini", "npm"]
MODES = ["new", "keepalive"]

# Per init: what replaces the image's ENTRYPOINT, and where HAProxy and HEALTHCHECK look.
# For tini and npm the app's own /readyz (GRACEFUL=1: 503 once SIGTERM came) is the check.
NPM_START = """
    init: {init}
    entrypoint: ["npm", "start"]
    command: []
    healthcheck:
      test: ["CMD", "drainit", "--probe", "http://127.0.0.1:3000/readyz"]
      interval: 1s
      timeout: 3s
      retries: 3
      start_period: 10s"""
INIT_SERVICE = {
    "drainit": "",
    "tini": NPM_START.format(init="true"),
    "npm": NPM_START.format(init="false"),
}


def log(msg):
    print(f"docker-rollout: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    return round(os.getloadavg()[0], 1)


def compose_cmd():
    for cmd in (["docker", "compose"], ["docker-compose"]):
        try:
            if subprocess.run(cmd + ["version"], capture_output=True).returncode == 0:
                return cmd
        except FileNotFoundError:
            pass
    sys.exit("docker-rollout: neither `docker compose` nor `docker-compose` works")


class Project:
    """One Compose project: the app image under one init, three replicas, HAProxy."""

    def __init__(self, args, init, workdir):
        self.init = init
        self.dir = workdir
        self.name = f"drainitbench{os.getpid()}{init}"
        self.port, self.stats = free_port(), free_port()
        check_port = "8086" if init == "drainit" else "3000"
        with open(os.path.join(ROOT, "deploy", "compose-haproxy.cfg")) as f:
            cfg = f.read().replace("check port 8086", f"check port {check_port}")
        with open(os.path.join(workdir, "compose-haproxy.cfg"), "w") as f:
            f.write(cfg)
        services = "".join(
            f"  {r}:\n    <<: *app{INIT_SERVICE[init]}\n" for r in REPLICAS)
        with open(os.path.join(workdir, "compose.yaml"), "w") as f:
            f.write(f"""x-app: &app
  image: {args.app_image}
  stop_grace_period: 15s
  healthcheck:
    test: ["CMD", "drainit", "--probe"]
    interval: 1s
    timeout: 3s
    retries: 3
    start_period: 10s
services:
{services}  haproxy:
    image: {args.haproxy_image}
    volumes: ["./compose-haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]
    ports: ["127.0.0.1:{self.port}:8080", "127.0.0.1:{self.stats}:8404"]
    depends_on:
""" + "".join(f"      {r}: {{condition: service_healthy}}\n" for r in REPLICAS))
        self.cmd = compose_cmd() + ["-p", self.name, "-f", os.path.join(workdir, "compose.yaml")]

    def run(self, *args, timeout=180):
        p = subprocess.run(self.cmd + list(args), capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"compose {' '.join(args)}: {p.stderr}")
        return p.stdout.strip()

    def status(self, replica):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.stats}/stats;csv", timeout=2) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith(f"app,{replica},"):
                        return line.split(",")[17]
        except OSError:
            pass
        return ""

    def health(self, container):
        p = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", container],
                           capture_output=True, text=True)
        return p.stdout.strip()

    def wait(self, what, cond, timeout=90):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def recreate(self, replica):
        self.run("up", "-d", "--no-deps", "--force-recreate", replica)
        new = self.run("ps", "-q", replica)
        self.wait(f"{replica} healthy", lambda: self.health(new) == "healthy")
        self.wait(f"{replica} UP in HAProxy", lambda: self.status(replica) == "UP")

    def haproxy_log(self):
        c = self.run("ps", "-q", "haproxy")
        p = subprocess.run(["docker", "logs", c], capture_output=True, text=True)
        return p.stdout + p.stderr

    def down(self):
        subprocess.run(self.cmd + ["down", "-t", "2", "--remove-orphans", "-v"],
                       capture_output=True)


def parse_ab(text):
    def num(label, default=None):
        m = re.search(rf"^{re.escape(label)}:\s+([\d.]+)", text, re.M)
        return float(m.group(1)) if m else default
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", text)
    connect, receive, length, exceptions = map(int, m.groups()) if m else (0, 0, 0, 0)
    non2xx = int(num("Non-2xx responses", 0))
    return {
        "complete": int(num("Complete requests", 0)),
        "ab_failed": int(num("Failed requests", 0)),
        "connect": connect, "receive": receive, "length": length, "exceptions": exceptions,
        "non_2xx": non2xx,
        # A 2xx body of another length ("hello from <pid>": pids differ in width) is an answer.
        "failed": non2xx + connect + receive + exceptions,
        "rps": num("Requests per second", 0),
        "seconds": num("Time taken for tests", 0),
    }


def run_case(args, init, mode):
    case = f"{init}-{mode}"
    workdir = os.path.join(args.out, case)
    os.makedirs(workdir, exist_ok=True)
    proj = Project(args, init, workdir)
    load_before = loadavg()
    events = []
    try:
        log(f"{case}: up")
        proj.run("up", "-d")
        for r in REPLICAS:
            proj.wait(f"{r} UP", lambda r=r: proj.status(r) == "UP")
        ab_args = ["ab", "-r", "-s", "10", "-n", str(args.requests), "-c", str(args.concurrency)]
        if mode == "keepalive":
            ab_args.append("-k")
        ab_out = open(os.path.join(args.out, f"{case}.ab.txt"), "w")
        t0 = time.monotonic()
        ab = subprocess.Popen(ab_args + [f"http://127.0.0.1:{proj.port}/"], stdout=ab_out,
                              stderr=subprocess.STDOUT)
        restarts = 0
        while ab.poll() is None or restarts < len(REPLICAS):
            replica = REPLICAS[restarts % len(REPLICAS)]
            start = time.monotonic() - t0
            during_load = ab.poll() is None
            proj.recreate(replica)
            events.append({"replica": replica, "start": round(start, 3),
                           "up": round(time.monotonic() - t0, 3), "during_load": during_load})
            restarts += 1
            log(f"{case}: {replica} recreated ({restarts}), {events[-1]['up'] - start:.1f} s")
        ab.wait()
        ab_out.close()
        with open(os.path.join(args.out, f"{case}.ab.txt")) as f:
            result = parse_ab(f.read())
        hlog = proj.haproxy_log()
        with open(os.path.join(args.out, f"{case}.haproxy.log"), "w") as f:
            f.write(hlog)
        states = {}
        for m in re.finditer(r" (\d{3}) \d+ \S+ \S+ ([A-Za-z-]{4}) ", hlog):
            if not m.group(1).startswith("5"):
                continue  # 400 CR--: ab closing idle connections at its end, not a failure
            key = f"{m.group(1)} {m.group(2)}"
            states[key] = states.get(key, 0) + 1
    finally:
        proj.down()
    with open(os.path.join(args.out, f"{case}.events.json"), "w") as f:
        json.dump(events, f, indent=1)
    during = sum(1 for e in events if e["during_load"])
    result.update({
        "init": init, "mode": mode, "restarts": len(events), "restarts_during_load": during,
        "haproxy": states, "load": f"{load_before}→{loadavg()}",
        "s_per_restart": round(sum(e["up"] - e["start"] for e in events) / len(events), 1),
    })
    log(f"{case}: {result['failed']} of {result['complete']} failed "
        f"({result['restarts']} restarts, {during} during the load)")
    return result


def machine():
    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except FileNotFoundError:
            return "?"
    docker = version(["docker", "version", "-f", "{{.Server.Version}}"])
    # What `init: true` runs: the daemon's docker-init (tini in Docker's packages).
    init = next((p for p in ("/usr/libexec/docker/docker-init", "/usr/bin/docker-init",
                             "/usr/local/bin/docker-init") if os.path.exists(p)), None)
    init = version([init, "--version"]) if init else "docker-init not found"
    return (f"{os.cpu_count()} CPUs (nproc), Linux {platform.release()}, Docker Engine {docker}, "
            f"{' '.join(compose_cmd())}, docker-init: {init}, Node.js {version(['node', '-v'])}, "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")


def table(results):
    rows = ["| init | ab | requests | failed | non-2xx | ab exceptions/receive/connect | "
            "ab Length | HAProxy log of failures | restarts (under load) | s per restart | "
            "req/s | load avg |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        hap = ", ".join(f"{k}: {v}" for k, v in sorted(r["haproxy"].items())) or "-"
        rows.append(
            f"| {r['init']} | {'-k' if r['mode'] == 'keepalive' else 'new connections'} | "
            f"{r['complete']} | **{r['failed']}** | {r['non_2xx']} | "
            f"{r['exceptions']}/{r['receive']}/{r['connect']} | {r['length']} | {hap} | "
            f"{r['restarts']} ({r['restarts_during_load']}) | {r['s_per_restart']} | "
            f"{r['rps']:.0f} | {r['load']} |")
    return "\n".join(rows)


def report(summary):
    return (f"Machine: {summary['machine']}.\n\nSettings: `ab -n {summary['requests']} "
            f"-c {summary['concurrency']}` (and `-k`) through HAProxy, 3 app containers recreated "
            f"in turn until ab is done; drainit `--drain-delay 4s --grace-period 5s`, "
            f"stop_grace_period 15s.\n\n" + table(summary["results"]))


def publish(text, path):
    with open(path) as f:
        doc = f.read()
    begin, end = "<!-- docker-results:begin -->", "<!-- docker-results:end -->"
    if begin in doc:
        head, rest = doc.split(begin, 1)
        doc = head + begin + "\n" + text + "\n" + end + rest.split(end, 1)[1]
        with open(path, "w") as f:
            f.write(doc)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--app-image")
    p.add_argument("--haproxy-image")
    p.add_argument("--out", required=True)
    p.add_argument("--requests", type=int, default=100000)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--inits", default=",".join(INITS))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--docs")
    p.add_argument("--report-only", action="store_true",
                   help="no run: print (and --docs) the table of OUT/results.json again")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.report_only:
        with open(os.path.join(args.out, "results.json")) as f:
            summary = json.load(f)
    else:
        if not (args.app_image and args.haproxy_image):
            p.error("--app-image and --haproxy-image are needed (run.sh passes them)")
        summary = {"machine": machine(), "requests": args.requests,
                   "concurrency": args.concurrency, "results": []}
        for init in args.inits.split(","):
            for mode in args.modes.split(","):
                summary["results"].append(run_case(args, init, mode))
                with open(os.path.join(args.out, "results.json"), "w") as f:
                    json.dump(summary, f, indent=1)
    text = report(summary)
    print(text)
    if args.docs:
        publish(text, args.docs)


if __name__ == "__main__":
    main()
