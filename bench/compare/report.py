#!/usr/bin/env python3
"""Turn compare.py's JSON into the comparison table (printed, and written into
docs/performance.md between the RESULTS markers) and the chart docs/performance.png.
Separate from the measuring so the report can be redrawn without measuring again.

Usage: report.py RESULTS.json [--doc docs/performance.md] [--png docs/performance.png]
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

REF = "tini-static"
BEGIN = "<!-- BEGIN RESULTS: written by bench/compare/report.py; edits here are overwritten -->"
END = "<!-- END RESULTS -->"
HIGHLIGHT = "#d9541e"
OTHERS = "#5b7fa6"


def ms(ns):
    return ns / 1e6


def us(ns):
    return ns / 1e3


def fmt(x, digits):
    return f"{x:,.{digits}f}"


def rows(r):
    """The table as (metric, {init: (number or None, text)}); the number drives the ratio."""
    names = [i["name"] for i in r["inits"]]
    out = []

    def row(metric, get, text, ratio=True):
        cells = {}
        for n in names:
            v = get(n)
            cells[n] = (v if ratio else None, text(v))
        out.append((metric, cells))

    size = r["size"]
    row("binary size (bytes)", lambda n: size[n]["bytes"], lambda v: fmt(v, 0))
    row(
        "static (`ldd`, `file`)",
        lambda n: size[n]["static"],
        lambda v: "yes" if v else "no (glibc)",
        ratio=False,
    )

    st = r["startup"]["summary"]
    row(
        "start-up: time added to `/bin/true`, median (ms)",
        lambda n: ms(st[n]["added_median"]),
        lambda v: fmt(v, 2),
    )
    row("start-up: total, p90 (ms)", lambda n: ms(st[n]["p90"]), lambda v: fmt(v, 2))
    if all("minflt_added_median" in st[n] for n in names):
        row(
            "start-up: page faults added to `/bin/true` (minor, median)",
            lambda n: st[n]["minflt_added_median"],
            lambda v: fmt(v, 0),
        )
    counts = r.get("counts", {})
    for key, metric in (
        ("instructions", "start-up: instructions of the init (callgrind, not PID 1)"),
        ("syscalls", "start-up: syscalls of the init (strace -c, not PID 1)"),
        ("syscalls_with_child", "start-up: syscalls with the child's until exec (strace -f)"),
    ):
        if all(counts.get(n, {}).get(key) is not None for n in names):
            row(metric, lambda n, k=key: counts[n][k], lambda v: fmt(v, 0))

    idle = r["idle"]["rounds"]
    med = lambda n, k: statistics.median(x[k] for x in idle[n])  # noqa: E731
    row("idle RSS, VmRSS (kB)", lambda n: med(n, "vmrss_kb"), lambda v: fmt(v, 0))
    row("idle PSS (kB)", lambda n: med(n, "pss_kb"), lambda v: fmt(v, 0))
    window = r["idle"]["window_s"]
    row(
        f"idle wake-ups in {window:g} s (context switches, worst round)",
        lambda n: max(x["switches"] for x in idle[n]),
        lambda v: fmt(v, 0),
    )

    n_orph = r["config"]["orphans"]
    bl = r["reap"]["backlog"]["summary"]
    row(
        f"reap {n_orph} zombies (backlog), median (ms)",
        lambda n: ms(bl[n]["wall"]["median"]),
        lambda v: fmt(v, 1),
    )
    row(
        f"reap {n_orph} zombies (backlog), p90 (ms)",
        lambda n: ms(bl[n]["wall"]["p90"]),
        lambda v: fmt(v, 1),
    )
    row(
        f"reap {n_orph} zombies: the init's CPU, median (ms)",
        lambda n: ms(bl[n]["cpu"]["median"]),
        lambda v: fmt(v, 1),
    )
    bu = r["reap"]["burst"]["summary"]
    row(
        f"{n_orph} orphans exit at once, until all reaped, median (ms)",
        lambda n: ms(bu[n]["wall"]["median"]),
        lambda v: fmt(v, 1),
    )

    lat = r["latency"]["summary"]
    row(
        "signal forwarding latency, median (µs)",
        lambda n: us(lat[n]["median"]),
        lambda v: fmt(v, 1),
    )
    row("signal forwarding latency, p99 (µs)", lambda n: us(lat[n]["p99"]), lambda v: fmt(v, 1))
    lost = r["latency"]["lost"]
    row(
        "signals lost (of samples)",
        lambda n: (lost[n], lat[n]["n"] + lost[n]),
        lambda v: f"{v[0]} of {v[1]}",
        ratio=False,
    )

    storm = r["storm"]["runs"]
    count = r["storm"]["count"]
    sm = lambda n, k: statistics.median(x.get(k, 0) for x in storm[n])  # noqa: E731
    row(
        f"signal storm ({count:,} SIGUSR1): the init's CPU, median (ms)",
        lambda n: ms(sm(n, "cpu_ns")),
        lambda v: fmt(v, 1),
    )
    row(
        "signal storm: handler runs in the child, median",
        lambda n: sm(n, "delivered"),
        lambda v: fmt(v, 0),
        ratio=False,
    )
    row(
        "signal storm: survived and still forwarding",
        lambda n: (
            sum(1 for x in storm[n] if x.get("alive") == 1 and x.get("probes_ok") == 5),
            len(storm[n]),
        ),
        lambda v: f"{'yes' if v[0] == v[1] else 'NO'} ({v[0]}/{v[1]} runs)",
        ratio=False,
    )
    return names, out


def cell(cells, n, ref_value):
    v, text = cells[n]
    if n == REF or v is None:
        return text
    if ref_value in (None, 0):
        return text
    return f"{text} ({v / ref_value:.2f}×)"


def table(r):
    names, rs = rows(r)
    head = "| metric | " + " | ".join(f"{n} (reference)" if n == REF else n for n in names) + " |"
    lines = [head, "|---|" + "---:|" * len(names)]
    for metric, cells in rs:
        ref = cells[REF][0]
        lines.append(f"| {metric} | " + " | ".join(cell(cells, n, ref) for n in names) + " |")
    return "\n".join(lines)


def floors(r):
    arm = r.get("size_arm64")
    arm = f"The arm64 build of drainit is {arm:,} bytes. " if arm else ""
    st = r["startup"]["summary"]
    bl = r["reap"]["backlog"]["summary"]["minit"]
    bu = r["reap"]["burst"]["summary"]["minit"]
    return arm + (
        f"Floors, measured in the same rounds: `unshare --pid --fork --mount-proc /bin/true` alone "
        f"takes {ms(st['baseline']['median']):.2f} ms (median); `minit` (a blocking `waitpid` "
        f"loop, no signal handling, `bench/compare/minit.c`) adds "
        f"{ms(st['minit']['added_median']):.2f} ms "
        f"to start-up, reaps the backlog in {ms(bl['wall']['median']):.1f} ms "
        f"(p90 {ms(bl['wall']['p90']):.1f}, CPU {ms(bl['cpu']['median']):.1f} ms) and the burst in "
        f"{ms(bu['wall']['median']):.1f} ms."
    )


def load(m):
    if "loadavg_start" not in m:
        return "not recorded"
    return f"{m['loadavg_start'][0]:g} at the start, {m.get('loadavg_end', ['?'])[0]:g} at the end"


def header(r):
    m = r["machine"]
    v = r["versions"]
    c = r["config"]
    return (
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, {m['date']}; "
        f"full run {r['elapsed_s']:.0f} s; load average (1 min) {load(m)}.  \n"
        f"Versions: {v['drainit']} (commit {r.get('drainit_commit', '?')}), {v['tini']}, "
        f"{v['dumb-init']}, catatonit {v['catatonit'].split()[-1]} (Debian packages).  \n"
        f"Repetitions: start-up {c['startup_reps']} rounds, idle {c['idle_rounds']} rounds, "
        f"reaping {c['reap_reps']} rounds per mode, "
        f"latency {c['latency_samples']} samples per init, "
        f"storm {c['storm_reps']} runs per init. Ratios are against tini-static."
    )


def chart(r, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [i["name"] for i in r["inits"]]
    colors = [HIGHLIGHT if n == "drainit" else OTHERS for n in names]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle(
        f"drainit vs other container inits — {r['machine']['nproc']} CPUs, "
        f"Linux {r['machine']['kernel']}, {r['machine']['date'][:10]}, "
        f"load average {load(r['machine'])}",
        fontsize=12,
    )

    def bars(ax, values, title, unit, errs=None, extra=None, digits=1):
        labels = list(names)
        vals = list(values)
        cols = list(colors)
        if extra:
            labels.append(extra[0])
            vals.append(extra[1])
            cols.append("#b0b0b0")
            if errs is not None:
                errs = list(errs) + [extra[2]]
        x = range(len(labels))
        yerr = None
        if errs is not None:
            yerr = [[0] * len(vals), [max(e - v, 0) for e, v in zip(errs, vals)]]
        ax.bar(x, vals, color=cols, yerr=yerr, capsize=4, ecolor="#333333")
        tops = errs if errs is not None else vals
        top = max(max(tops), 1e-9)
        for i, v in enumerate(vals):
            # Above the whisker, if any, so the number never sits on it.
            ax.text(i, tops[i] + top * 0.01, fmt(v, digits), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=20, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.set_ylim(0, top * 1.15)
        ax.spines[["top", "right"]].set_visible(False)

    lat = r["latency"]["summary"]
    bars(
        axes[0][0],
        [us(lat[n]["median"]) for n in names],
        "signal forwarding latency, kill(init) → child's handler:\nmedian (lower is better)",
        "µs",
    )
    bars(
        axes[0][1],
        [us(lat[n]["p99"]) for n in names],
        "signal forwarding latency: p99\n(lower is better)",
        "µs",
        digits=0,
    )

    st = r["startup"]["summary"]
    bars(
        axes[0][2],
        [ms(st[n]["added_median"]) for n in names],
        "start-up: time added to `/bin/true` as PID 1, median\n(lower is better)",
        "ms",
        extra=("minit (floor)", ms(st["minit"]["added_median"])),
        digits=2,
    )

    bl = r["reap"]["backlog"]["summary"]
    n_orph = r["config"]["orphans"]
    bars(
        axes[1][0],
        [ms(bl[n]["wall"]["median"]) for n in names],
        f"reap {n_orph:,} zombies (backlog): median, whisker to p90\n(lower is better)",
        "ms",
        errs=[ms(bl[n]["wall"]["p90"]) for n in names],
        extra=("minit (floor)", ms(bl["minit"]["wall"]["median"]), ms(bl["minit"]["wall"]["p90"])),
    )

    storm = r["storm"]["runs"]
    idle = r["idle"]["rounds"]
    bars(
        axes[1][1],
        [max(x["switches"] for x in idle[n]) for n in names],
        f"idle wake-ups in {r['idle']['window_s']:g} s, child asleep\n(lower is better)",
        "context switches",
        digits=0,
    )
    bars(
        axes[1][2],
        [ms(statistics.median(x["cpu_ns"] for x in storm[n])) for n in names],
        f"the init's CPU time during {r['storm']['count']:,} SIGUSR1, median\n(lower is better)",
        "ms",
    )
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--doc", type=Path, help="markdown file with the RESULTS markers to fill")
    ap.add_argument("--png", type=Path, help="where to draw the chart")
    a = ap.parse_args()
    r = json.loads(a.results.read_text())

    body = [header(r), "", table(r), "", floors(r)]
    print("\n".join(body))
    if a.png:
        try:
            chart(r, a.png)
        except ImportError:
            print("report: matplotlib missing: no chart (pip install matplotlib)", file=sys.stderr)
            a.png = None
    if a.png:
        alt = "drainit vs other inits: latency, start-up, reaping, idle wake-ups, storm CPU"
        body += ["", f"![{alt}]({a.png.name})"]
    if a.doc:
        doc = a.doc.read_text()
        if BEGIN not in doc or END not in doc:
            sys.exit(f"report: {a.doc} lacks the RESULTS markers")
        before, rest = doc.split(BEGIN, 1)
        _, after = rest.split(END, 1)
        a.doc.write_text(before + BEGIN + "\n" + "\n".join(body) + "\n" + END + after)


if __name__ == "__main__":
    main()
