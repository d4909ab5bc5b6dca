#!/usr/bin/env python3
"""Draw the Docker rollout picture from a bench.py output directory.

    plot.py OUT_DIR PNG

Failed requests per init, new connections and `-k` side by
side, over every container recreate of the run. Needs matplotlib.
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after use("Agg"))

COLORS = {"drainit": "#1a7f37", "tini": "#cf222e", "npm": "#8250df"}
LABELS = {"drainit": "drainit (ENTRYPOINT)", "tini": "docker run --init (tini)",
          "npm": "npm start as PID 1"}
MODES = [("new", "new connections"), ("keepalive", "ab -k")]


def main():
    out, png = sys.argv[1], sys.argv[2]
    with open(os.path.join(out, "results.json")) as f:
        summary = json.load(f)
    results = summary["results"]
    inits = list(dict.fromkeys(r["init"] for r in results))
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    width = 0.38
    top = max([r["failed"] for r in results] + [10])
    ticks, labels = [], []
    for i, (mode, mode_label) in enumerate(MODES):
        for j, init in enumerate(inits):
            r = next((r for r in results if r["init"] == init and r["mode"] == mode), None)
            if r is None:
                continue
            x = j + (i - 0.5) * width
            ax.bar(x, r["failed"], width * 0.92, color=COLORS.get(init, "#555"),
                   alpha=1.0 if mode == "new" else 0.55, edgecolor="#333", lw=0.6)
            ax.text(x, r["failed"] + top * 0.015, f"{r['failed']}\nof {r['complete']}",
                    ha="center", va="bottom", fontsize=8,
                    fontweight="bold" if r["failed"] == 0 else "normal")
            ticks.append(x)
            labels.append(mode_label)
    ax.set_ylim(0, top * 1.2)
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=8)
    for j, init in enumerate(inits):
        ax.text(j, -0.11, LABELS.get(init, init), transform=ax.get_xaxis_transform(),
                ha="center", va="top", fontsize=10)
    ax.set_ylabel("failed requests (no 2xx answer)")
    ax.grid(axis="y", alpha=0.3)
    n = summary["requests"]
    ax.set_title(f"Rolling recreate of 3 containers behind HAProxy, docker compose:\n"
                 f"failed requests of ab -n {n} -c {summary['concurrency']}", fontsize=11)
    fig.text(0.5, 0.005, summary["machine"], ha="center", fontsize=7, color="#555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(png, dpi=110)
    print(f"plot.py: wrote {png}")


if __name__ == "__main__":
    main()
