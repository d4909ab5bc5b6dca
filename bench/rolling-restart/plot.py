#!/usr/bin/env python3
"""Draw the rolling-restart picture from a bench.py output directory.

    plot.py OUT_DIR PNG

One column per app mode; top row: requests answered 2xx per second, bottom row: failed
requests per second, both against the time since the SIGTERM of a restart, averaged over every
restart of the run. One line per init. A request belongs to the restart whose SIGTERM came last
before it (from 1 s before that SIGTERM), so a restart's window ends where the next one begins.
Needs matplotlib.
"""

import csv
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after use("Agg"))

BIN = 0.5  # seconds; finer bins show the load generator's stalls on a busy machine
BEFORE, AFTER = 1.0, 9.0
COLORS = {"drainit": "#1a7f37", "tini": "#cf222e", "dumb-init": "#8250df", "catatonit": "#bc4c00"}
LABELS = {"drainit": "drainit", "tini": "tini -g", "dumb-init": "dumb-init",
          "catatonit": "catatonit -g"}
MODE_TITLES = {"graceful": "app closes its server on SIGTERM (GRACEFUL=1)",
               "default": "app has no SIGTERM handler"}


def seconds(dur):
    m = re.fullmatch(r"([\d.]+)(ms|s)?", dur)
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1) if m else 0.0


def series(out, case):
    """(offsets, ok per s, failed per s), averaged over the restarts of `case`."""
    with open(os.path.join(out, f"{case}.events.json")) as f:
        events = json.load(f)
    terms = sorted(t for t, _, what in events if what == "SIGTERM")
    nbins = int((BEFORE + AFTER) / BIN)
    ok, bad, cover = [0.0] * nbins, [0.0] * nbins, [0] * nbins
    starts = [t - BEFORE for t in terms]
    ends = starts[1:] + [float("inf")]
    with open(os.path.join(out, f"{case}.csv")) as f:
        rows = [(float(r["t_issue"]), r["kind"]) for r in csv.DictReader(f)]
    last = max((t for t, _ in rows), default=0)
    for term, start, end in zip(terms, starts, ends):
        for i in range(nbins):
            lo = start + i * BIN
            if lo + BIN <= min(end, last):
                cover[i] += 1
        for t, kind in rows:
            if start <= t < min(end, term + AFTER):
                i = int((t - start) / BIN)
                (ok if kind == "ok" else bad)[i] += 1
    xs, oks, bads = [], [], []
    # Where fewer than half the restarts reach (the tail of the last one only), the mean is
    # one sample: leave it out.
    for i in range(nbins):
        if cover[i] and cover[i] * 2 >= len(terms):
            xs.append(-BEFORE + (i + 0.5) * BIN)
            oks.append(ok[i] / cover[i] / BIN)
            bads.append(bad[i] / cover[i] / BIN)
    return xs, oks, bads


def main():
    out, png = sys.argv[1], sys.argv[2]
    with open(os.path.join(out, "results.json")) as f:
        summary = json.load(f)
    results = summary["results"]
    modes = [m for m in ("graceful", "default") if any(r["mode"] == m for r in results)]
    delay = seconds(summary.get("drain_delay", "3s"))
    fig, axes = plt.subplots(2, len(modes), figsize=(6.2 * len(modes), 7.2), sharex=True,
                             sharey="row", squeeze=False)
    for col, mode in enumerate(modes):
        top, bottom = axes[0][col], axes[1][col]
        for r in (r for r in results if r["mode"] == mode):
            case = f"{r['init']}-{mode}"
            xs, oks, bads = series(out, case)
            color = COLORS.get(r["init"])
            # drainit on top and thicker: its failure line is flat at zero, under the others.
            style = dict(color=color, lw=2.4 if r["init"] == "drainit" else 1.5,
                         zorder=3 if r["init"] == "drainit" else 2)
            label = (f"{LABELS.get(r['init'], r['init'])}: {r['failures']} of {r['requests']} "
                     f"failed")
            top.step(xs, oks, where="mid", label=label, **style)
            bottom.step(xs, bads, where="mid", label=label, **style)
        for ax in (top, bottom):
            ax.axvline(0, color="#555", ls="--", lw=1)
            ax.axvline(delay, color=COLORS["drainit"], ls=":", lw=1)
            ax.grid(alpha=0.3)
        top.set_title(MODE_TITLES[mode], fontsize=11)
        top.text(0.05, 0.03, "SIGTERM", transform=top.get_xaxis_transform(), fontsize=8,
                 color="#555")
        top.text(delay + 0.05, 0.03, "drainit forwards it", transform=top.get_xaxis_transform(),
                 fontsize=8, color=COLORS["drainit"])
        bottom.set_xlabel("seconds since SIGTERM to one backend's init (mean over restarts)")
        bottom.legend(loc="upper right", fontsize=9)
    axes[0][0].set_ylabel("answered requests/s (2xx)")
    axes[1][0].set_ylabel("failed requests/s")
    axes[0][0].set_ylim(bottom=0)
    axes[1][0].set_ylim(bottom=0)
    fig.suptitle("Rolling restart behind HAProxy: 3 × node (npm start), each under an init as PID 1",
                 fontsize=12)
    fig.text(0.5, 0.005, summary["machine"], ha="center", fontsize=8, color="#555")
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    fig.savefig(png, dpi=110)
    print(f"plot.py: wrote {png}")


if __name__ == "__main__":
    main()
