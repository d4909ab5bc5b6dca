#!/usr/bin/env python3
"""What one forwarded signal costs each init, one init at a time: median latency, the init's
CPU time per signal (schedstat) and its context switches per signal, for a given pause between
signals. A diagnostic behind docs/performance.md's finding 2 (run it with a 1 ms and a 10 ms
pause to see warm and cold caches), not part of the comparison: the inits do not take turns
here, so run it several times before believing a difference.

Usage (as root, after bench/compare/run.sh --quick has built the helpers):
    bench/compare/signal_cost.py [GAP_US] [SAMPLES]        defaults: 10000 500
"""

import os
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import compare  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target/bench-compare/bin"
DRAINIT = ROOT / "target/x86_64-unknown-linux-musl/release/drainit"


def cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def switches(pid):
    st = compare.proc_status(pid)
    return st["voluntary_ctxt_switches"] + st["nonvoluntary_ctxt_switches"]


def main():
    gap = sys.argv[1] if len(sys.argv) > 1 else "10000"
    samples = sys.argv[2] if len(sys.argv) > 2 else "500"
    logdir = ROOT / "target/bench-compare/logs"
    logdir.mkdir(parents=True, exist_ok=True)
    print(f"{samples} SIGUSR1 per init, {gap} us apart")
    for init in compare.inits(str(DRAINIT)):
        r, w = os.pipe()
        run = compare.Running(init, [str(BIN / "sigrecv")], logdir, stdout=w)
        os.close(w)
        try:
            run.wait_child("sigrecv")
            c0, s0 = cpu_ns(run.pid), switches(run.pid)
            out = subprocess.run(
                [str(BIN / "siglat"), "latency", samples, gap, f"{init['name']}:{run.pid}:{r}"],
                pass_fds=[r],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            c1, s1 = cpu_ns(run.pid), switches(run.pid)
        finally:
            run.stop()
            os.close(r)
        lat = [int(line.split()[3]) for line in out.splitlines() if line.startswith("lat ")]
        n = max(len(lat), 1)
        print(
            f"{init['name']:12} latency median {compare.percentile(lat, 50) / 1e3:6.1f} us   "
            f"init CPU per signal {(c1 - c0) / n / 1e3:5.1f} us   "
            f"context switches per signal {(s1 - s0) / n:.2f}"
        )


if __name__ == "__main__":
    main()
