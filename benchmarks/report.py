"""Tables, markdown and the scaling figure, from a results dict (or its JSON)."""

from __future__ import annotations

import math

from .engines import reference

COLUMNS = ("engine", "workload", "n", "wall s", "ms/subject", "x baseline", "plasma rel err",
           "receptor abs err", "peak MB", "note")


def fmt_num(x, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    ax = abs(x)
    if ax != 0 and (ax < 1e-2 or ax >= 1e5):
        s = f"{x:.1e}"
    elif ax >= 100:
        s = f"{x:.0f}"
    elif ax >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.3g}"
    return s + unit


#: Issue 5's goals: pkpd's speed-up over each peer, standard workload, 10,000 subjects.
GOALS = {"scipy_loop": 500.0, "roadrunner_loop": 80.0, "diffrax_vmap": 20.0}
GOAL_WORKLOAD, GOAL_N = "standard", 10000
#: Accuracy goals for pkpd: plasma relative error, receptor readouts absolute error.
GOAL_PLASMA_REL, GOAL_RECEPTOR_ABS = 1e-5, 1e-6


def goals(result: dict) -> list:
    """One line per goal of issue 5 that this run can judge."""
    rows = {r["engine"]: r for r in result["rows"]
            if r["workload"] == GOAL_WORKLOAD and r["n"] == GOAL_N and r.get("status") == "ok"}
    lines = []
    me = rows.get("pkpd")
    if me:
        for peer, goal in GOALS.items():
            if peer in rows:
                x = rows[peer]["wall_s"] / me["wall_s"]
                verdict = "met" if x >= goal else f"missed by {goal / x:.2f}x"
                lines.append(f"pkpd vs {peer}: {x:.0f}x faster (goal {goal:.0f}x: {verdict})")
        if me["wall_s"] is not None:
            lines.append(f"pkpd wall time at {GOAL_N} subjects: {me['wall_s']:.2f} s "
                         f"(goal < 1 s: {'met' if me['wall_s'] < 1 else 'missed'})")
    acc = result.get("accuracy", {}).get(f"{GOAL_WORKLOAD}/pkpd")
    if acc and acc.get("status") == "ok":
        ok = acc["plasma_rel"] <= GOAL_PLASMA_REL and acc["receptor_abs"] <= GOAL_RECEPTOR_ABS
        lines.append(f"pkpd accuracy: plasma {acc['plasma_rel']:.1e} (goal 1e-5), receptor readouts "
                     f"{acc['receptor_abs']:.1e} (goal 1e-6): {'met' if ok else 'missed'}")
    return lines


def attach_ratios(result: dict) -> None:
    """``ratio`` on every row: baseline wall time / this row's (same workload and n)."""
    base = {(r["workload"], r["n"]): r for r in result["rows"]
            if r["engine"] == result["baseline"] and r.get("status") == "ok"}
    for r in result["rows"]:
        b = base.get((r["workload"], r["n"]))
        r["ratio"] = b["wall_s"] / r["wall_s"] if b and r.get("status") == "ok" and r["wall_s"] > 0 else None
        acc = result.get("accuracy", {}).get(f"{r['workload']}/{r['engine']}", {})
        r["plasma_rel"] = acc.get("plasma_rel")
        r["receptor_abs"] = acc.get("receptor_abs")


def _cells(r: dict) -> list:
    ok = r.get("status") == "ok"
    if ok:
        note = r.get("note", "")
    elif r.get("status") == "skipped":
        note = "skipped (not installed; see below)"
    else:
        note = f"{r.get('status')}: {r.get('note', '')}"
        note = note if len(note) <= 90 else note[:87] + "..."
    return [
        r["engine"], r["workload"], str(r["n"]),
        fmt_num(r.get("wall_s")) if ok else "-",
        fmt_num(r.get("ms_per_subject")) if ok else "-",
        (fmt_num(r["ratio"]) + "x") if r.get("ratio") else "-",
        fmt_num(r.get("plasma_rel")), fmt_num(r.get("receptor_abs")),
        fmt_num(r.get("peak_mb")) if ok else "-",
        note,
    ]


def _sorted_rows(result: dict) -> list:
    order = {w: i for i, w in enumerate(result.get("workloads", {}))}
    eng = {e: i for i, e in enumerate(result.get("engines", {}))}
    return sorted(result["rows"], key=lambda r: (order.get(r["workload"], 99), r["n"], eng.get(r["engine"], 99)))


def machine_line(result: dict) -> str:
    m = result.get("machine", {})
    parts = [m.get("date", "?"), m.get("cpu", m.get("machine", "?")), f"{m.get('cpu_count', '?')} CPUs",
             f"{m.get('memory_gb', '?')} GB", m.get("platform", "?"), f"Python {m.get('python', '?')}",
             f"numpy {m.get('numpy', '?')}", f"scipy {m.get('scipy', '?')}"]
    for k in ("pkpd", "roadrunner", "jax", "diffrax"):
        if k in m:
            parts.append(f"{k} {m[k]}")
    if "load_avg_1m_at_start" in m:
        parts.append(f"load average {m['load_avg_1m_at_start']} at start, "
                     f"{m.get('load_avg_1m_at_end', '?')} at end")
    return "; ".join(str(p) for p in parts)


def table(result: dict) -> str:
    """The plain-text table the runner prints."""
    rows = [list(COLUMNS)] + [_cells(r) for r in _sorted_rows(result)]
    rows[0][5] = f"x {result.get('baseline', 'baseline')}"
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for g in goals(result):
        lines.append("goal: " + g)
    lines.append("machine: " + machine_line(result))
    skipped = {e: v["note"] for e, v in result.get("engines", {}).items() if not v.get("available")}
    for e, note in skipped.items():
        lines.append(f"skipped {e}: {note}")
    lines.append("errors: plasma max relative error (where > 1e-3 of the subject's peak) and max absolute "
                 "error on occupancy, receptor density, adaptation, excitability, vs the reference "
                 f"(scipy {reference.METHOD} rtol {reference.RTOL:g}), "
                 f"{_acc_subjects(result)} subjects; peak MB is the measuring process's high-water mark")
    return "\n".join(lines)


def _acc_subjects(result) -> str:
    n = {a.get("subjects") for a in result.get("accuracy", {}).values() if a.get("subjects")}
    return ", ".join(str(x) for x in sorted(n)) or "-"


def markdown(result: dict) -> str:
    """The table as markdown, with the machine and the command that made it."""
    head = list(COLUMNS)
    head[5] = f"x {result.get('baseline', 'baseline')}"
    out = [f"Machine: {machine_line(result)}", "", f"Command: `{result.get('command', '?')}`", "",
           f"Subjects: {result.get('subjects', '?')}", "",
           "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in _sorted_rows(result):
        out.append("| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |")
    skipped = {e: v["note"] for e, v in result.get("engines", {}).items() if not v.get("available")}
    if skipped:
        out.append("")
        for e, note in skipped.items():
            out.append(f"- `{e}` skipped: {note}")
    settings = {e: v.get("settings") for e, v in result.get("engines", {}).items() if v.get("available")}
    out.append("")
    for g in goals(result):
        out.append(f"- Goal: {g}")
    out.append("")
    for e, s in settings.items():
        out.append(f"- `{e}`: {s}")
    return "\n".join(out) + "\n"


def figure(result: dict, path: str, workload: str = "standard") -> None:
    """Log-log wall time against subjects, one line per engine (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    rows = [r for r in result["rows"] if r.get("status") == "ok" and r["workload"] == workload]
    if not rows:  # fall back to whatever workload has several sizes
        rows = [r for r in result["rows"] if r.get("status") == "ok"]
        workload = rows[0]["workload"] if rows else workload
        rows = [r for r in rows if r["workload"] == workload]
    for i, engine in enumerate(result.get("engines", {})):
        pts = sorted((r["n"], r["wall_s"], r.get("scaled", False)) for r in rows if r["engine"] == engine)
        if not pts:
            continue
        n, wall, scaled = zip(*pts)
        color = f"C{i}"
        ax.plot(n, wall, "-", color=color, label=engine + (" (scaled from a subset)" if any(scaled) else ""))
        ax.plot([a for a, s in zip(n, scaled) if not s], [b for b, s in zip(wall, scaled) if not s],
                "o", color=color)
        ax.plot([a for a, s in zip(n, scaled) if s], [b for b, s in zip(wall, scaled) if s],
                "o", mfc="white", color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("subjects")
    ax.set_ylabel("wall time (s)")
    ax.set_title(f"pkpd benchmark: '{workload}' workload", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    m = result.get("machine", {})
    fig.text(0.01, 0.01, f"{m.get('cpu', m.get('machine', ''))}, {m.get('cpu_count', '?')} CPUs, {m.get('date', '')}; "
             "open markers: scaled from a subset", fontsize=6, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)
