"""The real command line, in subprocesses: outputs, user errors, exit codes.

Runs are started together (they are independent) so the module stays fast.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from pkpd import files as pio
from pkpd.metrics import METRICS
from pkpd.scenario import DEFAULT_SCENARIO, builtin_scenarios, load_scenario

pytestmark = pytest.mark.slow  # subprocesses / long reference runs: outside the fast loop

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
BUILTINS = [name for name, _ in builtin_scenarios()]
SUBJECTS = 2


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pkpd", *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def pkpd(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return finish(start(*args, cwd=cwd))


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def grid(duration_h: float, step_h: float) -> list[float]:
    """The output grid of scenario-format.md, written out independently."""
    times, k = [], 0
    while k * step_h < duration_h - 1e-9:
        times.append(k * step_h)
        k += 1
    return times + [duration_h]


# ---------------------------------------------------------------------------
# Every built-in scenario runs


@pytest.fixture(scope="module")
def builtin_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("builtins")
    procs = {}
    for name in BUILTINS:
        procs[name] = start("run", name, "--subjects", str(SUBJECTS), "--no-plot", "--out", str(base / name), cwd=base)
    default_cwd = base / "default-cwd"
    default_cwd.mkdir()
    procs[None] = start("run", cwd=default_cwd)  # the default scenario, with its figure, in ./pkpd-output/
    results = {name: finish(p) for name, p in procs.items()}
    return base, default_cwd, results


def test_there_are_at_least_eight_builtins():
    assert len(BUILTINS) >= 8 and DEFAULT_SCENARIO in BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_scenario_runs_and_writes_documented_outputs(builtin_runs, name):
    base, _, results = builtin_runs
    res = results[name]
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert "not for dosing decisions" in res.stdout
    out = base / name
    assert sorted(os.listdir(out)) == ["summary.csv", "timecourse.csv"]
    sc = load_scenario(name, n_subjects=SUBJECTS)
    times = grid(sc.duration_h, sc.output_step_h)
    arms = [a.name for a in sc.arms]

    header, rows = read_csv(out / "timecourse.csv")
    assert header == list(pio.TIMECOURSE_COLUMNS)
    assert len(rows) == len(arms) * SUBJECTS * len(times)
    assert all(len(r) == len(pio.TIMECOURSE_COLUMNS) == 12 for r in rows)  # format 1.1
    block = SUBJECTS * len(times)
    assert [rows[i * block][0] for i in range(len(arms))] == arms  # arms in file order
    assert [int(r[1]) for r in rows[: block : len(times)]] == list(range(1, SUBJECTS + 1))
    assert [float(r[2]) for r in rows[: len(times)]] == pytest.approx(times, abs=1e-9)
    raw = (out / "timecourse.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b" " not in raw and b"\r" not in raw

    header, rows = read_csv(out / "summary.csv")
    assert header == ["arm", "metric", "unit", "median", "p05", "p95"]
    assert len(rows) == len(arms) * len(METRICS)
    assert [r[1] for r in rows[: len(METRICS)]] == [m.name for m in METRICS]
    assert sorted({r[0] for r in rows}) == sorted(arms)
    for r in rows:
        for cell in r[3:]:
            assert cell == "" or float(cell) == float(cell)  # a number or empty


def test_default_run_writes_a_figure_in_the_default_folder(builtin_runs):
    _, cwd, results = builtin_runs
    res = results[None]
    assert res.returncode == 0, res.stderr
    out = cwd / "pkpd-output" / DEFAULT_SCENARIO
    assert sorted(os.listdir(out)) == ["figure.png", "summary.csv", "timecourse.csv"]
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(Path("pkpd-output") / DEFAULT_SCENARIO) in res.stdout
    # the story the default scenario tells: a rebound after the abrupt stop, a smaller one after the taper
    _, rows = read_csv(out / "summary.csv")
    peak = {r[0]: float(r[3]) for r in rows if r[1] == "peak_rebound_excitability"}
    assert peak["abrupt-stop"] > 1.15 > peak["taper-12-days"] > 1.0


def test_summary_cells_for_metrics_that_do_not_apply_are_empty(builtin_runs):
    base, _, _ = builtin_runs
    _, rows = read_csv(base / "drug-free-baseline" / "summary.csv")
    cells = {r[1]: r[3] for r in rows}
    assert cells["cmax_last_interval"] == "" and cells["terminal_half_life"] == ""
    assert float(cells["peak_occupancy"]) == 0.0 and float(cells["lowest_excitability"]) == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# Malformed scenario files: one line, exit 2, nothing written

MALFORMED = {
    "empty": ("", "empty scenario"),
    "not-toml": ('name = "x"\nduration_h =\n', "invalid TOML"),
    "unknown-key": ('name = "x"\ndurations_h = 10\n', "durations_h: unknown key (did you mean 'duration_h'?)"),
    "missing-key": ('name = "x"\n', "duration_h: required key is missing"),
    "nan": ('name = "x"\nduration_h = nan\n', "duration_h: must be finite and > 0; got nan"),
    "negative-amount": (
        'name = "x"\nduration_h = 24\n[[doses]]\nroute = "oral_ir"\namount_mg = -5\nat_h = 0\n',
        "doses[0].amount_mg: must be finite and > 0; got -5",
    ),
    "unknown-route": (
        'name = "x"\nduration_h = 24\n[[doses]]\nroute = "oral_xr"\namount_mg = 5\nat_h = 0\n',
        "doses[0].route: unknown route 'oral_xr'",
    ),
    "unknown-parameter": ('name = "x"\nduration_h = 24\n[parameters]\nFOO = 1\n', "parameters.FOO: unknown key"),
    "parameter-range": ('name = "x"\nduration_h = 24\n[parameters]\nV_c = -1\n', "parameters.V_c: must be finite and > 0; got -1"),
    "stop-before-start": (
        'name = "x"\nduration_h = 24\n[[infusions]]\nroute = "iv_infusion"\nrate_mg_per_day = 1\nstart_h = 10\nstop_h = 5\n',
        "infusions[0].stop_h: must be finite and > start_h (10); got 5",
    ),
    "float-count": ('name = "x"\nduration_h = 24\n[subjects]\nn = 2.5\n', "subjects.n: must be an integer >= 1; got 2.5"),
    "bool-number": (
        'name = "x"\nduration_h = 24\n[[doses]]\nroute = "oral_ir"\namount_mg = true\nat_h = 0\n',
        "doses[0].amount_mg: must be a number; got true",
    ),
    "count-without-interval": (
        'name = "x"\nduration_h = 24\n[[doses]]\nroute = "oral_ir"\namount_mg = 5\nat_h = 0\ncount = 3\n',
        "doses[0].count:",
    ),
    "duplicate-arm": ('name = "x"\nduration_h = 24\n[[arms]]\nname = "a"\n[[arms]]\nname = "a"\n', "arms[1].name: must be unique"),
}


@pytest.fixture(scope="module")
def malformed_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("malformed")
    procs = {}
    for key, (text, _) in MALFORMED.items():
        (base / f"{key}.toml").write_text(text)
        procs[key] = start("run", f"{key}.toml", "--out", f"out-{key}", cwd=base)
    (base / "a-folder.toml").mkdir()
    procs["unreadable"] = start("run", "a-folder.toml", "--out", "out-unreadable", cwd=base)
    procs["missing-file"] = start("run", "no-such-file.toml", "--out", "out-missing-file", cwd=base)
    procs["unknown-builtin"] = start("run", "no-such-builtin", "--out", "out-unknown-builtin", cwd=base)
    return base, {k: finish(p) for k, p in procs.items()}


EXPECTED_OTHER = {
    "unreadable": "a-folder.toml: cannot read file",
    "missing-file": "no-such-file.toml: cannot read file",
    "unknown-builtin": "unknown built-in scenario 'no-such-builtin' (see: python -m pkpd list)",
}


@pytest.mark.parametrize("key", [*MALFORMED, *EXPECTED_OTHER])
def test_malformed_input_gives_one_line_and_exit_2(malformed_runs, key):
    base, results = malformed_runs
    res = results[key]
    expected = MALFORMED[key][1] if key in MALFORMED else EXPECTED_OTHER[key]
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.endswith("\n"), res.stderr
    assert "Traceback" not in res.stderr and "usage:" not in res.stderr
    assert expected in res.stderr
    if key in MALFORMED:
        assert res.stderr.startswith(f"{key}.toml: ")
    assert not (base / f"out-{key}").exists()


# ---------------------------------------------------------------------------
# Options

BAD_OPTIONS = {
    "negative-subjects": (["run", "--subjects", "-1"], "--subjects: must be an integer >= 1; got -1"),
    "text-subjects": (["run", "--subjects", "x"], "--subjects: must be an integer >= 1; got 'x'"),
    "negative-seed": (["run", "--seed", "-2"], "--seed: must be an integer >= 0"),
    "unknown-parameter": (["run", "--set", "FOO=1"], "--set FOO: unknown parameter"),
    "not-a-number": (["run", "--set", "CL_r=abc"], "--set CL_r: must be a number; got 'abc'"),
    "out-of-range": (["run", "--set", "F_ir=2"], "--set F_ir:"),
    "no-equals": (["run", "--set", "CL_r"], "--set: expected NAME=VALUE"),
    "unknown-option": (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    "unknown-command": (["frobnicate"], "unknown command 'frobnicate'"),
    "show-unknown": (["show", "nope"], "unknown built-in scenario 'nope'"),
    "check-missing": (["check"], "required: FILE"),
    "abbreviated-subjects": (["run", "--subject", "10"], "unrecognized arguments: --subject ("),
    "abbreviated-no-plot": (["run", "--no-pl"], "unrecognized arguments: --no-pl"),
    "removed-parameter": (["run", "--set", "ka_er=1"], "--set ka_er: removed in model v2:"),
    "covariate-parameter": (["run", "--set", "WT=80"], "--set WT: WT is a covariate"),
    "seed-beyond-64-bits": (["run", "--seed", str(2**63)], "--seed: must be an integer <= 2**63 - 1 (64 bits)"),
    "zero-subjects": (["run", "--subjects", "0"], "--subjects: must be an integer >= 1; got 0"),
}


@pytest.fixture(scope="module")
def option_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("options")
    procs = {k: start(*args, cwd=base) for k, (args, _) in BAD_OPTIONS.items()}
    return base, {k: finish(p) for k, p in procs.items()}


@pytest.mark.parametrize("key", BAD_OPTIONS)
def test_bad_option_gives_one_line_and_exit_2(option_runs, key):
    base, results = option_runs
    res = results[key]
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stderr and "usage:" not in res.stderr
    assert BAD_OPTIONS[key][1] in res.stderr
    assert not (base / "pkpd-output").exists()


SHORT = """
name = "short"
duration_h = 72.0
output_step_h = 1.0
[[doses]]
route = "oral_ir"
amount_mg = 10.0
at_h = 0.0
every_h = 8.0
count = 6
"""


def test_lower_renal_clearance_gives_higher_exposure(tmp_path):
    (tmp_path / "short.toml").write_text(SHORT)
    plain = start("run", "short.toml", "--no-plot", "--out", "plain", cwd=tmp_path)
    low = start("run", "short.toml", "--no-plot", "--out", "low", "--set", "CL_r=3", cwd=tmp_path)
    for res in (finish(plain), finish(low)):
        assert res.returncode == 0, res.stderr

    def metric(folder, name):
        _, rows = read_csv(tmp_path / folder / "summary.csv")
        return float(next(r[3] for r in rows if r[1] == name))

    assert metric("low", "auc_last_interval") > 1.3 * metric("plain", "auc_last_interval")
    assert metric("low", "terminal_half_life") > metric("plain", "terminal_half_life")
    _, plain_rows = read_csv(tmp_path / "plain" / "timecourse.csv")
    _, low_rows = read_csv(tmp_path / "low" / "timecourse.csv")
    assert max(float(r[3]) for r in low_rows) > max(float(r[3]) for r in plain_rows)


def test_no_plot_never_imports_matplotlib_and_removes_an_old_figure(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "figure.png").write_bytes(b"from an earlier run")
    code = (
        "import runpy, sys\n"
        "sys.argv = ['pkpd', 'run', 'drug-free-baseline', '--no-plot', '--out', 'out']\n"
        "try:\n    runpy.run_module('pkpd', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert not [m for m in sys.modules if m.startswith('matplotlib')], 'matplotlib imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out)) == ["summary.csv", "timecourse.csv"]


def test_list_show_check_and_help(tmp_path):
    procs = {
        "list": start("list", cwd=tmp_path),
        "show": start("show", "label-titration", cwd=tmp_path),
        "help": start("--help", cwd=tmp_path),
        "run-help": start("run", "--help", cwd=tmp_path),
    }
    res = {k: finish(p) for k, p in procs.items()}
    for r in res.values():
        assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = res["list"].stdout.splitlines()
    assert [line.split()[0] for line in lines] == BUILTINS
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # NAME  description
    shown = res["show"].stdout
    assert tomllib.loads(shown)["name"] == "label-titration"
    assert "--subjects" in res["run-help"].stdout and "--no-plot" in res["run-help"].stdout
    assert "run" in res["help"].stdout and "check" in res["help"].stdout

    (tmp_path / "mine.toml").write_text(shown)
    ok = pkpd("check", "mine.toml", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stderr == "" and ok.stdout.count("\n") == 1
    assert not (tmp_path / "pkpd-output").exists()


def test_ctrl_c_exits_130_and_leaves_no_partial_file(tmp_path):
    proc = start("run", "standard-population", "--subjects", "20000", "--no-plot", "--out", "out", cwd=tmp_path)
    out = tmp_path / "out"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # wait until the run is writing
        if out.is_dir() and any(p.name.endswith(".tmp") for p in out.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    res = finish(proc)
    assert res.returncode == 130
    assert res.stderr == "interrupted\n"
    assert not out.exists()


# ---------------------------------------------------------------------------
# The progress bar (in process, with a fake clock)


class FakeTTY:
    def __init__(self, tty=True):
        self.text, self.tty = "", tty

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def _drive(stream, seconds_per_step, steps=10):
    from pkpd.progress import ProgressBar

    now = [0.0]
    bar = ProgressBar("run", stream=stream, clock=lambda: now[0])
    for i in range(1, steps + 1):
        now[0] += seconds_per_step
        bar(i, steps)
    bar.close()
    return stream.text


def test_progress_bar_draws_on_a_terminal_for_slow_runs_and_clears_itself():
    text = _drive(FakeTTY(), seconds_per_step=1.0)
    assert "[" in text and "%" in text and "ETA" in text
    assert text.endswith("\r") and "\n" not in text


def test_progress_bar_is_silent_for_quick_runs_and_when_not_a_terminal():
    assert _drive(FakeTTY(), seconds_per_step=0.1) == ""  # 1 s in all
    assert _drive(FakeTTY(tty=False), seconds_per_step=1.0) == ""


def test_a_run_too_large_for_memory_is_refused_before_anything_is_written(tmp_path):
    res = pkpd("run", "standard-population", "--subjects", "10000000000", "--no-plot", "--out", "out", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("builtin:standard-population: this run needs about ")
    assert res.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_parameters_lists_every_parameter_with_unit_default_and_source(tmp_path):
    from pkpd.parameters import PARAMETER_INFO

    res = pkpd("parameters", cwd=tmp_path)
    assert res.returncode == 0 and res.stderr == ""
    header, *lines = res.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "UNIT", "DEFAULT"]
    assert [line.split()[0] for line in lines] == list(PARAMETER_INFO)  # one line each, in spec order
    for line, info in zip(lines, PARAMETER_INFO.values()):
        name, unit, default = line.split()[:3]
        assert (name, unit, float(default)) == (info.name, info.unit, info.default)
        assert line.endswith(f"{info.meaning}; source: {info.basis}")


OVERLAP = """
name = "overlap"
duration_h = 800.0
[[titrations]]
from_mg = 5
to_mg = 20
step_mg = 5
every_h = 8
step_days = 3
hold_days = 12
[[tapers]]
from_mg = 20
over_days = 12
every_h = 8
start_h = 504
"""


def test_overlapping_blocks_give_a_one_line_warning_not_an_error(tmp_path):
    (tmp_path / "overlap.toml").write_text(OVERLAP)
    res = pkpd("check", "overlap.toml", cwd=tmp_path)
    assert res.returncode == 0
    assert res.stderr == ("warning: overlap.toml: titrations[0] (oral_ir on [0, 576) h) overlaps tapers[0] "
                          "(on [504, 792) h): their doses add\n")
    assert res.stdout.startswith("overlap.toml: valid: 'overlap'")


def test_a_format_1_1_file_runs(tmp_path):
    text = SHORT + (
        '[[infusions]]\nroute = "iv_infusion"\nrate_mg_per_h = 0.5\nstart_h = 0\nstop_h = 24\n'
        '[subjects]\nn = 3\nvariability = true\nomega = { CL = 0.4 }\ncorrelation = { "CL,V_c" = 0.5 }\n'
    )
    (tmp_path / "v11.toml").write_text(text)
    res = pkpd("run", "v11.toml", "--no-plot", "--out", "out", cwd=tmp_path)
    # the only stderr lines allowed are the summary's notes on censored metrics (a 72 h run)
    others = [line for line in res.stderr.splitlines() if not line.startswith("warning: summary:")]
    assert res.returncode == 0 and not others, res.stderr
    _, rows = read_csv(tmp_path / "out" / "timecourse.csv")
    assert len(rows) == 3 * len(grid(72.0, 1.0))


def test_check_refuses_what_run_would_refuse_for_its_size(tmp_path):
    (tmp_path / "huge.toml").write_text(
        'name = "huge"\nduration_h = 8760.0\noutput_step_h = 0.001\n[subjects]\nn = 100000\n'
        '[[doses]]\nroute = "oral_ir"\namount_mg = 10\nat_h = 0\nevery_h = 0.001\n'
    )
    for command in ("check", "run"):
        res = pkpd(*([command, "huge.toml"] + (["--no-plot"] if command == "run" else [])), cwd=tmp_path)
        assert res.returncode == 2, (command, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "timecourse.csv would take about" in res.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "huge.toml"]  # nothing written
