"""A page to share: one self-contained HTML file for a scenario's run.

:func:`write_report` runs a scenario (:func:`pkpd.run.run`), draws its
figure (:func:`pkpd.plotting.plot_run`) and writes ``report.html``: the
disclaimer, the figure as a base64 PNG data URI, the summary
(:meth:`pkpd.run.RunResult.summary_rows`) as an HTML table with units, the
run's warnings and the scenario's TOML text.  The page loads nothing from
anywhere (no scripts, no web fonts, no stylesheets outside it), so a
teacher can put the one file on a course site or open it offline.  It is
written atomically (:func:`pkpd.run.write_together`).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Callable, Sequence

from . import metrics, plotting
from .run import RunResult, default_output_folder, run, write_together
from .scenario import Scenario, builtin_text

#: Name of the page in the output folder.
REPORT_FILE = "report.html"
#: The disclaimer at the top of the page (and in the footer).
DISCLAIMER = ("pkpd is a teaching and research model: not for dosing decisions. "
              "Its curves illustrate pharmacology; they are not predictions for any patient.")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1200px; margin: 0 auto; padding: 1.5em; color: #222; background: #fff; line-height: 1.45; }
h1 { font-size: 1.7em; margin: 0.2em 0; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.disclaimer { border: 2px solid #B2182B; background: #fdecea; color: #7a0c1e; padding: 0.8em 1em;
              font-weight: bold; font-size: 1.1em; border-radius: 4px; }
.meta { color: #444; }
figure { margin: 1em 0; }
figure img { width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto; font-size: 0.88em; }
.warnings li { color: #8a5300; }
footer { margin-top: 2em; color: #666; font-size: 0.9em; font-style: italic; }
"""


def scenario_text(scenario: Scenario) -> str:
    """The TOML text the scenario was read from (a built-in's, or its file's); '' when unknown."""
    source = scenario.source or ""
    if source.startswith("builtin:"):
        return builtin_text(source.removeprefix("builtin:"))
    if os.path.isfile(source):
        with open(source, "rb") as f:
            return f.read().decode("utf-8-sig", errors="replace")
    return ""


def figure_png(result: RunResult, *, dpi: int = 110) -> bytes:
    """The run figure (:func:`pkpd.plotting.plot_run`) as PNG bytes."""
    buf = io.BytesIO()
    plotting.plot_run(result, buf, dpi=dpi)
    return buf.getvalue()


def _number(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.4g}"


def summary_table(rows: Sequence[tuple[str, str, str, float, float, float]]) -> str:
    """The summary rows as an HTML table: arm, metric (with its label), unit, median, 5th and 95th percentiles."""
    labels = {m.name: m.label for m in metrics.METRICS}
    e = html.escape
    out = ['<table id="summary">',
           "<thead><tr><th>arm</th><th>metric</th><th>unit</th>"
           "<th>median</th><th>5th percentile</th><th>95th percentile</th></tr></thead>", "<tbody>"]
    for arm, name, unit, med, p05, p95 in rows:
        label = labels.get(name, name)
        out.append(f"<tr><td>{e(arm)}</td><td title=\"{e(name)}\">{e(label)}</td><td>{e(unit)}</td>"
                   f'<td class="num">{_number(med)}</td><td class="num">{_number(p05)}</td>'
                   f'<td class="num">{_number(p95)}</td></tr>')
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def render_html(result: RunResult, *, png: bytes, text: str, options: str = "") -> str:
    """The page of one run: disclaimer, figure (data URI), summary table, warnings, scenario text."""
    sc = result.scenario
    e = html.escape
    n = sc.subjects.n
    arms = ", ".join(a.name for a in sc.arms)
    days = sc.duration_h / 24.0
    meta = (f"{len(sc.arms)} arm{'s' * (len(sc.arms) != 1)} ({e(arms)}); {n} subject{'s' * (n != 1)}; "
            f"{sc.duration_h:g} h ({days:.3g} days); scenario {e(sc.source)}")
    if options:
        meta += f"; options: {e(options)}"
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    stats = ("Median and 5th-95th percentiles over subjects; an empty cell: the metric does not apply "
             "or could not be computed for some subjects.") if n > 1 else "One subject: the three columns agree."
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>pkpd: {e(sc.name)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f'<p class="disclaimer" id="disclaimer">{e(DISCLAIMER)}</p>',
        f"<h1>{e(sc.name)}</h1>",
        f"<p>{e(' '.join((sc.description or '').split()))}</p>" if sc.description else "",
        f'<p class="meta">{meta}</p>',
        "<h2>Figure</h2>",
        f'<figure><img id="figure" alt="{e(sc.name)}: plasma and CSF levels, receptor occupancy, receptor '
        f'density and adaptation, excitability over time" src="{src}"></figure>',
        "<h2>Summary</h2>",
        f"<p>{stats}</p>",
        summary_table(result.summary_rows()),
    ]
    if result.warnings:
        parts += ["<h2>Warnings</h2>", '<ul class="warnings">',
                  *(f"<li>{e(w)}</li>" for w in result.warnings), "</ul>"]
    parts += [
        "<h2>Scenario</h2>",
        "<p>The scenario file this page was made from (run it with <code>python -m pkpd run FILE</code>).</p>",
        f'<pre id="scenario">{e(text)}</pre>',
        f"<footer>{e(DISCLAIMER)} Made with pkpd.</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_report(
    scenario: Scenario,
    folder: str | os.PathLike | None = None,
    *,
    options: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[RunResult, str]:
    """Run ``scenario`` and write ``report.html`` in ``folder`` (atomically).

    ``folder`` defaults to :func:`pkpd.run.default_output_folder`;
    ``options`` is a note on the command-line options used (shown on the
    page).  Returns the run's result and the page's path.
    """
    folder = default_output_folder(scenario) if folder is None else os.fspath(folder)
    path = os.path.join(folder, REPORT_FILE)
    result = run(scenario, plot=True, progress=progress)
    page = render_html(result, png=figure_png(result), text=scenario_text(scenario), options=options)
    write_together(folder, [(path, "w", lambda f: f.write(page))])
    return result, path
