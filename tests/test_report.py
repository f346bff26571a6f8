"""``python -m pkpd report``: one self-contained HTML page, and a real browser renders it."""

from __future__ import annotations

import base64
import html.parser
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pkpd import cli, report
from pkpd.scenario import builtin_text, load_scenario

pytestmark = pytest.mark.slow  # outside the fast loop (pytest -m 'not slow'); CI runs it

SCENARIO = "taper-lengths"  # several arms
SUBJECTS = 6
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(html.parser.HTMLParser):
    """What the tests read from the page: images, table rows, pre text, elements with ids, resource URLs."""

    def __init__(self):
        super().__init__()
        self.images, self.rows, self.urls, self.ids = [], [], [], {}
        self.pre, self._in_pre, self._row, self._cell, self._in_tbody = "", False, None, None, False
        self.tags = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids[a["id"]] = tag
        for key in ("src", "href"):
            if key in a:
                self.urls.append(a[key])
        if tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "pre":
            self._in_pre = True
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "pre":
            self._in_pre = False
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "td" and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in_pre:
            self.pre += data
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    scenario = load_scenario(SCENARIO, n_subjects=SUBJECTS, seed=3)
    result, path = report.write_report(scenario, out)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    parsed = _Page()
    parsed.feed(text)
    return {"path": path, "text": text, "parsed": parsed, "result": result, "folder": out}


def test_one_file_in_the_folder(page):
    assert sorted(os.listdir(page["folder"])) == ["report.html"]  # no temporary files, no side files
    assert page["path"].endswith(os.path.join("", "report.html"))


def test_no_external_references(page):
    assert not re.search(r"https?:", page["text"], re.I), "the page must load nothing from the web"
    assert "@import" not in page["text"] and "url(" not in page["text"]
    for url in page["parsed"].urls:
        assert url.startswith("data:"), url
    assert "script" not in page["parsed"].tags and "link" not in page["parsed"].tags


def test_images_are_png_data_uris(page):
    images = page["parsed"].images
    assert images
    for src in images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        png = base64.b64decode(data, validate=True)
        assert png.startswith(PNG_MAGIC) and len(png) > 10_000


def test_summary_table_has_every_summary_row_with_units(page):
    rows = page["parsed"].rows
    expected = page["result"].summary_rows()
    assert len(rows) == len(expected)
    for cells, (arm, _name, unit, med, _, _) in zip(rows, expected):
        assert cells[0] == arm and cells[2] == unit
        assert cells[3] == ("" if not np.isfinite(med) else f"{med:.4g}")
    assert {r[0] for r in rows} == {a.name for a in page["result"].arms}


def test_disclaimer_and_scenario_text(page):
    assert "disclaimer" in page["parsed"].ids
    assert "not for dosing decisions" in page["text"]
    assert page["text"].index("not for dosing decisions") < page["text"].index("<h1>")  # at the top
    assert page["parsed"].pre == builtin_text(SCENARIO)


def test_a_file_scenario_shows_its_own_text(tmp_path):
    text = builtin_text("drug-free-baseline") + "\n# my <own> & notes\n"
    src = tmp_path / "mine.toml"
    src.write_text(text, encoding="utf-8")
    assert report.scenario_text(load_scenario(str(src))) == text


def test_cli_report(tmp_path, capsys):
    out = tmp_path / "page"
    code = cli.main(["report", "drug-free-baseline", "--out", str(out), "--subjects", "2", "--seed", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (out / "report.html").is_file() and sorted(os.listdir(out)) == ["report.html"]
    assert "report.html" in captured.out and "not for dosing decisions" in captured.out
    body = (out / "report.html").read_text(encoding="utf-8")
    assert "--subjects 2" in body and "--seed 1" in body


def test_cli_report_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "drug-free-baseline", "--subjects", "1"]) == 0
    assert (tmp_path / "pkpd-output" / "drug-free-baseline" / "report.html").is_file()


@pytest.mark.parametrize("argv, needle", [
    (["report"], "SCENARIO"),
    (["report", "no-such-scenario"], "unknown built-in scenario"),
    (["report", "drug-free-baseline", "--subjects", "0"], "--subjects"),
    (["report", "drug-free-baseline", "--set", "CL_r=x"], "--set CL_r"),
    (["report", "data.csv"], "event table"),
])
def test_cli_report_errors_are_one_line(argv, needle, tmp_path, capsys):
    assert cli.main(argv + ["--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------
# A real browser


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


#: Injected into a copy of the page (the report itself has no script): the
#: title becomes 'ok' once every image has decoded and no error was seen.
_CHECK = """<script>
var pkpdErrors = [];
window.addEventListener('error', function (e) { pkpdErrors.push(String(e.message || e.type)); }, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var good = imgs.length > 0 && imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  var rows = document.querySelectorAll('#summary tbody tr').length;
  document.title = (good && pkpdErrors.length === 0 ? 'ok' : 'bad') + ' images=' + imgs.length + ' rows=' + rows
    + ' errors=' + pkpdErrors.join('|');
});
</script>"""


def _browser(binary, tmp_path, *args, timeout=120):
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def _page_console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "Uncaught" in line or ("CONSOLE" in line and ("ERROR" in line or "error" in line.lower()))]


@pytest.mark.skipif(_chromium() is None,
                    reason="no Chromium binary (chromium on PATH or /usr/bin/chromium): the browser test "
                           "runs where one is installed (CI installs it from the system's packages)")
def test_report_renders_in_a_headless_browser(page, tmp_path):
    binary = _chromium()
    checked = tmp_path / "checked.html"
    checked.write_text(page["text"].replace("</head>", _CHECK + "\n</head>", 1), encoding="utf-8")

    dom = _browser(binary, tmp_path, "--dump-dom", checked.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
    assert title, dom.stdout[:2000]
    n_rows = len(page["result"].summary_rows())
    assert title.group(1).strip() == f"ok images={len(page['parsed'].images)} rows={n_rows} errors=", title.group(1)
    assert dom.stdout.count("<tr>") >= n_rows and 'id="summary"' in dom.stdout
    assert _page_console_errors(dom.stderr) == []

    shot = tmp_path / "shot.png"
    run = _browser(binary, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000",
                   "--hide-scrollbars", "--run-all-compositor-stages-before-draw", pathlib.Path(page["path"]).as_uri())
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    assert _page_console_errors(run.stderr) == []
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    flat = pixels[..., :3].reshape(-1, 3)
    assert np.ptp(flat, axis=0).max() > 0.5, "the screenshot is a single colour"
    # the figure shows: plenty of non-white pixels, and more than one colour among them
    assert (flat.min(axis=1) < 0.9).mean() > 0.02
    assert len(np.unique((flat * 15).round(), axis=0)) > 20


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
