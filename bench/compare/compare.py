#!/usr/bin/env python3
"""Measure drainit against tini, tini-static, dumb-init and catatonit; write raw samples and
summaries as JSON for report.py.

Every init runs as PID 1 of a fresh PID namespace (`unshare --pid --fork --mount-proc INIT
[-g] -- CHILD`), each in its group-forwarding mode. Wherever a metric has repetitions, the inits
take turns within each repetition (the order rotates), so the noise of this shared 2-core
machine falls on all of them alike; we report medians and high percentiles, never single runs.
The timing-critical parts are small C programs next to this file (see their header comments):
sigrecv (the child that timestamps signals), siglat (the sender), orphans (the reaping test),
minit (a blocking-waitpid init, the floor for reaping and start-up).

Usage: compare.py --bin BUILD_DIR --drainit PATH --out RESULTS.json [--quick]
"""

import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


def inits(drainit):
    """The inits compared, each in the mode that forwards to the child's process group."""
    return [
        {"name": "drainit", "path": drainit, "args": []},
        {"name": "tini", "path": "/usr/bin/tini", "args": ["-g"]},
        {"name": "tini-static", "path": "/usr/bin/tini-static", "args": ["-g"]},
        {"name": "dumb-init", "path": "/usr/bin/dumb-init", "args": []},
        {"name": "catatonit", "path": "/usr/bin/catatonit", "args": ["-g"]},
    ]


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def percentile(xs, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(xs)
    if not s:
        return None
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs):
    return {
        "n": len(xs),
        "median": statistics.median(xs) if xs else None,
        "p90": percentile(xs, 90),
        "p99": percentile(xs, 99),
        "min": min(xs) if xs else None,
        "max": max(xs) if xs else None,
    }


def rotated(items, k):
    k %= len(items)
    return items[k:] + items[:k]


def wait_for(cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.001)


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def proc_status(pid):
    """All tasks' /proc status, merged: counters summed over threads, the rest from the leader."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                v = v.strip()
                if k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                    out[k] = out.get(k, 0) + int(v)
                elif int(tid) == pid:
                    out[k] = v
    return out


def smaps_rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


class Running:
    """One init as PID 1 of a new PID namespace, with `child` as its command."""

    def __init__(self, init, child, logdir, stdin=None, stdout=subprocess.DEVNULL):
        self.init = init
        argv = UNSHARE + [init["path"], *init["args"], "--", *child]
        self.err = open(logdir / f"{init['name']}.stderr", "ab")
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=self.err)
        want = os.path.realpath(init["path"])
        # unshare's forked child is PID 1 of the namespace; wait until it has exec'd the init.
        self.pid = wait_for(
            lambda: next((c for c in children(self.proc.pid) if exe(c) == want), None),
            f"{init['name']} to start",
        )

    def wait_child(self, name):
        """Wait until the init's child has exec'd `name`; return its (host) pid."""
        return wait_for(
            lambda: next((c for c in children(self.pid) if comm(c) == name), None),
            f"{self.init['name']}'s child {name}",
        )

    def stop(self):
        # SIGKILL to a namespace's PID 1 takes the whole namespace down with it.
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.err.close()


def measure_size(all_inits):
    out = {}
    for i in all_inits:
        p = i["path"]
        f = subprocess.run(["file", "-L", p], capture_output=True, text=True).stdout.strip()
        ldd = subprocess.run(["ldd", p], capture_output=True, text=True)
        ldd_out = (ldd.stdout + ldd.stderr).strip()
        static = "statically linked" in ldd_out or "not a dynamic executable" in ldd_out
        out[i["name"]] = {
            "bytes": os.stat(p).st_size,
            "static": static,
            "file": f.split(":", 1)[-1].strip(),
            "ldd": ldd_out,
        }
    return out


def time_spawn(argv):
    """One run of argv, spawn to reap: (wall time in ns, minor page faults of it and all it
    waited for, from wait4's rusage); argv must exit 0."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} exited with {os.waitstatus_to_exitcode(status)}")
    return t1 - t0, usage.ru_minflt


def measure_counts(all_inits):
    """Deterministic start-up costs of `INIT -- /bin/true`, not as PID 1 (the tools would be
    PID 1 instead): instructions (valgrind's callgrind, the init alone, not its child) and
    syscalls (strace -c: the init alone; strace -f -c: with the child up to its exec and
    /bin/true, less /bin/true's own count). Skipped when valgrind or strace is missing."""
    out = {}
    true_alone = None
    for i in [None] + all_inits:
        argv = ["/bin/true"] if i is None else [i["path"], *i["args"], "--", "/bin/true"]
        row = {}
        with tempfile.TemporaryDirectory() as tmp:
            if i is not None and shutil.which("valgrind"):
                cg = f"{tmp}/cg"
                r = subprocess.run(
                    ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", *argv],
                    capture_output=True,
                    text=True,
                )
                m = re.search(r"Collected : (\d+)", r.stderr)
                row["instructions"] = int(m.group(1)) if m else None
            if shutil.which("strace"):
                for key, follow in (("syscalls", []), ("syscalls_with_child", ["-f"])):
                    st = f"{tmp}/st"
                    subprocess.run(
                        ["strace", *follow, "-c", "-o", st, *argv], capture_output=True
                    )
                    # "% time, seconds, usecs/call, calls, [errors,] total"
                    with open(st) as f:
                        total = [ln.split() for ln in f if ln.split()[-1:] == ["total"]]
                    row[key] = int(total[0][3]) if total else None
        if i is None:
            true_alone = row.get("syscalls")
        else:
            if true_alone is not None and row.get("syscalls_with_child") is not None:
                row["syscalls_with_child"] -= true_alone
            out[i["name"]] = row
    return out


def measure_startup(all_inits, minit, reps, warmup):
    """INIT -- /bin/true as PID 1 of a new namespace, against /bin/true alone in one."""
    variants = [("baseline", UNSHARE + ["/bin/true"])]
    for i in all_inits + [minit]:
        variants.append((i["name"], UNSHARE + [i["path"], *i["args"], "--", "/bin/true"]))
    # The inits log to stderr (drainit: two info lines at exit); keep that cost, drop the text.
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    os.dup2(devnull, 2)
    samples = {name: [] for name, _ in variants}
    minflt = {name: [] for name, _ in variants}
    try:
        for rep in range(warmup + reps):
            for name, argv in rotated(variants, rep):
                ns, faults = time_spawn(argv)
                if rep >= warmup:
                    samples[name].append(ns)
                    minflt[name].append(faults)
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
    base = statistics.median(samples["baseline"])
    base_flt = statistics.median(minflt["baseline"])
    out = {"samples_ns": samples, "minflt": minflt, "summary": {}}
    for name, xs in samples.items():
        s = summary(xs)
        s["added_median"] = s["median"] - base
        s["minflt_added_median"] = statistics.median(minflt[name]) - base_flt
        out["summary"][name] = s
    return out


def measure_idle(all_inits, logdir, rounds, window):
    """All inits at once, each with `sleep infinity` as child: RSS/PSS and context switches
    (voluntary + involuntary, all threads) over `window` seconds."""
    out = {i["name"]: [] for i in all_inits}
    for r in range(rounds):
        runs = [Running(i, ["sleep", "infinity"], logdir) for i in all_inits]
        try:
            for run in runs:
                run.wait_child("sleep")
            time.sleep(1.0)  # let start-up work (logging, page faults) finish
            before = {run.init["name"]: proc_status(run.pid) for run in runs}
            time.sleep(window)
            for run in runs:
                name = run.init["name"]
                st = proc_status(run.pid)
                b = before[name]
                switches = (
                    st["voluntary_ctxt_switches"]
                    - b["voluntary_ctxt_switches"]
                    + st["nonvoluntary_ctxt_switches"]
                    - b["nonvoluntary_ctxt_switches"]
                )
                sm = smaps_rollup(run.pid)
                out[name].append(
                    {
                        "switches": switches,
                        "vmrss_kb": int(st["VmRSS"].split()[0]),
                        "rss_kb": sm.get("Rss"),
                        "pss_kb": sm.get("Pss"),
                        "threads": int(st["Threads"]),
                    }
                )
        finally:
            for run in runs:
                run.stop()
        log(f"idle round {r + 1}/{rounds} done")
    return {"window_s": window, "rounds": out}


def reap_once(init, bindir, logdir, n, backlog):
    child = [str(bindir / "orphans"), str(n)] + (["--backlog"] if backlog else [])
    run = Running(init, child, logdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if backlog:
            line = readline(run.proc.stdout, 60)
            if line != "up":
                raise RuntimeError(f"{init['name']}: orphans said {line!r}")
            os.kill(run.pid, signal.SIGSTOP)
            wait_for(lambda: stat_state(run.pid) == "T", f"{init['name']} to stop")
            run.proc.stdin.write(b"go\n")
            run.proc.stdin.flush()
            line = readline(run.proc.stdout, 60)
            if line != "zombies":
                raise RuntimeError(f"{init['name']}: orphans said {line!r}")
            t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            os.kill(run.pid, signal.SIGCONT)
        line = readline(run.proc.stdout, 60)
        fields = dict(kv.split("=") for kv in line.split()[1:])
        ns = int(fields["t1"]) - t0 if backlog else int(fields["ns"])
        run.proc.wait(timeout=30)
        return ns, int(fields["init_cpu_ns"])
    finally:
        run.stop()


def readline(pipe, timeout):
    r, _, _ = select.select([pipe], [], [], timeout)
    if not r:
        raise TimeoutError("no line from the child")
    return pipe.readline().decode().strip()


def stat_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def measure_reap(all_inits, minit, bindir, logdir, n, reps):
    out = {}
    for mode, backlog in (("burst", False), ("backlog", True)):
        variants = all_inits + [minit]
        wall = {i["name"]: [] for i in variants}
        cpu = {i["name"]: [] for i in variants}
        for rep in range(reps):
            for init in rotated(variants, rep):
                ns, cpu_ns = reap_once(init, bindir, logdir, n, backlog)
                wall[init["name"]].append(ns)
                cpu[init["name"]].append(cpu_ns)
            log(f"reap {mode} rep {rep + 1}/{reps} done")
        out[mode] = {
            "wall_ns": wall,
            "init_cpu_ns": cpu,
            "summary": {
                name: {"wall": summary(wall[name]), "cpu": summary(cpu[name])} for name in wall
            },
        }
    return out


def measure_signals(all_inits, bindir, logdir, samples, gap_us, storm_count, storm_reps):
    runs, reads = [], []
    try:
        for i in all_inits:
            r, w = os.pipe()
            runs.append(Running(i, [str(bindir / "sigrecv")], logdir, stdout=w))
            os.close(w)
            reads.append(r)
        for run in runs:
            run.wait_child("sigrecv")
        targets = [f"{run.init['name']}:{run.pid}:{fd}" for run, fd in zip(runs, reads)]
        log(f"signal latency: {samples} rounds x {len(runs)} inits")
        res = subprocess.run(
            [str(bindir / "siglat"), "latency", str(samples), str(gap_us), *targets],
            pass_fds=reads,
            capture_output=True,
            text=True,
            check=True,
        )
        lat = {run.init["name"]: [] for run in runs}
        lost = {run.init["name"]: 0 for run in runs}
        for line in res.stdout.splitlines():
            parts = line.split()
            if parts[0] == "lat":
                lat[parts[1]].append(int(parts[3]))
            elif parts[0] == "lost":
                lost[parts[1]] += 1
        storms = {run.init["name"]: [] for run in runs}
        for rep in range(storm_reps):
            for k in rotated(list(range(len(runs))), rep):
                res = subprocess.run(
                    [str(bindir / "siglat"), "storm", str(storm_count), targets[k]],
                    pass_fds=reads,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                fields = dict(kv.split("=") for kv in res.stdout.split()[2:])
                storms[runs[k].init["name"]].append(
                    {k2: int(v) if v.isdigit() else v for k2, v in fields.items()}
                )
            log(f"signal storm rep {rep + 1}/{storm_reps} done")
    finally:
        for run in runs:
            run.stop()
        for fd in reads:
            os.close(fd)
    return {
        "latency": {
            "samples_ns": lat,
            "lost": lost,
            "gap_us": gap_us,
            "summary": {name: summary(xs) for name, xs in lat.items()},
        },
        "storm": {"count": storm_count, "runs": storms},
    }


def machine():
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": model,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        # Other work on the machine: the honest context for every number below.
        "loadavg_start": [round(x, 1) for x in os.getloadavg()],
    }


def versions(all_inits):
    out = {}
    for i in all_inits:
        v = subprocess.run([i["path"], "--version"], capture_output=True, text=True)
        lines = (v.stdout + v.stderr).strip().splitlines()
        out[i["name"]] = lines[0] if lines else "?"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, type=Path, help="directory of the built C helpers")
    ap.add_argument("--drainit", required=True, help="the drainit binary to measure")
    ap.add_argument("--drainit-arm64", help="the arm64 build: only its size is recorded")
    ap.add_argument("--out", required=True, type=Path, help="where to write the JSON results")
    ap.add_argument("--quick", action="store_true", help="few repetitions: a smoke test")
    a = ap.parse_args()

    q = a.quick
    cfg = {
        "startup_reps": 20 if q else 300,
        "startup_warmup": 3 if q else 20,
        "idle_rounds": 1 if q else 2,
        "idle_window_s": 5.0,
        "orphans": 5000,
        "reap_reps": 2 if q else 15,
        "latency_samples": 50 if q else 1500,
        "latency_gap_us": 2000,
        "storm_count": 50000,
        "storm_reps": 1 if q else 5,
    }
    all_inits = inits(os.path.realpath(a.drainit))
    minit = {"name": "minit", "path": str((a.bin / "minit").resolve()), "args": []}
    logdir = a.out.parent / "logs"
    logdir.mkdir(parents=True, exist_ok=True)

    res = {"config": cfg, "machine": machine(), "versions": versions(all_inits)}
    git = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    )
    res["drainit_commit"] = git.stdout.strip() or "?"
    res["inits"] = [{k: i[k] for k in ("name", "path", "args")} for i in all_inits]
    t = time.monotonic()
    log("sizes")
    res["size"] = measure_size(all_inits)
    if a.drainit_arm64:
        res["size_arm64"] = os.stat(a.drainit_arm64).st_size
    log("instructions and syscalls (callgrind, strace)")
    res["counts"] = measure_counts(all_inits)
    log(f"start-up: {cfg['startup_reps']} rounds")
    res["startup"] = measure_startup(all_inits, minit, cfg["startup_reps"], cfg["startup_warmup"])
    log(f"idle: {cfg['idle_rounds']} rounds of {cfg['idle_window_s']} s")
    res["idle"] = measure_idle(all_inits, logdir, cfg["idle_rounds"], cfg["idle_window_s"])
    log(f"reaping {cfg['orphans']} orphans: {cfg['reap_reps']} rounds per mode")
    res["reap"] = measure_reap(all_inits, minit, a.bin, logdir, cfg["orphans"], cfg["reap_reps"])
    res.update(
        measure_signals(
            all_inits,
            a.bin,
            logdir,
            cfg["latency_samples"],
            cfg["latency_gap_us"],
            cfg["storm_count"],
            cfg["storm_reps"],
        )
    )
    res["elapsed_s"] = round(time.monotonic() - t, 1)
    res["machine"]["loadavg_end"] = [round(x, 1) for x in os.getloadavg()]
    a.out.write_text(json.dumps(res, indent=1))
    log(f"done in {res['elapsed_s']} s; results in {a.out}")


if __name__ == "__main__":
    main()
