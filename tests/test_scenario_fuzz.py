"""Fuzzing parse_scenario: whatever the text, it either returns a Scenario
or raises ScenarioError with a one-line message, never another exception."""

from __future__ import annotations

import copy
import datetime
import math
import tomllib
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pkpd.errors import OverlapWarning, ScenarioError
from pkpd.parameters import PARAMETER_INFO
from pkpd.scenario import Scenario, builtin_scenarios, builtin_text, parse_scenario

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUILTINS = [name for name, _ in builtin_scenarios()]
DOCS = {name: tomllib.loads(builtin_text(name)) for name in BUILTINS}
KEYS = sorted(
    {"name", "duration_h", "route", "amount_mg", "at_h", "every_h", "count", "n", "seed",
     "variability", "weight_kg", "crcl_ml_min", "mean", "sd", "min", "max", "from_mg",
     "to_mg", "step_mg", "step_days", "hold_days", "over_days", "steps", "start_h", "stop_h",
     "rate_mg_per_day", "arms", "doses", "infusions", "titrations", "tapers", "parameters",
     "subjects", "V_c", "WT", "CrCl", "F_ir", "Q", "k_M"}
)


def check(text: str, **options) -> Scenario | None:
    """Parse; a ScenarioError is fine if its message is one line with the source."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", OverlapWarning)
            scenario = parse_scenario(text, source="fuzz.toml", **options)
        for w in caught:  # overlapping builders warn, in one line naming the file
            assert w.category is OverlapWarning, w
            assert str(w.message).startswith("fuzz.toml: ") and "\n" not in str(w.message)
    except ScenarioError as exc:
        message = str(exc)
        assert message.splitlines() == [message], message
        assert message.startswith(("fuzz.toml: ", "overrides", "n_subjects: ", "seed: ")), message
        return None
    assert_sane(scenario)
    return scenario


def assert_sane(s: Scenario) -> None:
    """What a valid scenario promises to the code that runs it."""
    assert isinstance(s.duration_h, float) and math.isfinite(s.duration_h) and s.duration_h > 0
    assert isinstance(s.output_step_h, float) and s.output_step_h > 0
    assert isinstance(s.subjects.n, int) and s.subjects.n >= 1
    assert s.arms and len({a.name for a in s.arms}) == len(s.arms)
    for arm in s.arms:
        for dose in arm.regimen.doses:
            assert dose.amount_mg > 0 and dose.at_h >= 0


# ---- a small TOML writer for mutated documents (inline tables only) ---------


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (int, datetime.date)):
        return str(value) if isinstance(value, int) else value.isoformat()
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_string(text: str) -> str:
    """A TOML basic string (lone surrogates, which TOML cannot hold, become '?')."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append("?" if 0xD800 <= code <= 0xDFFF else ch)
    return '"' + "".join(out) + '"'


def to_toml(doc: dict) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in doc.items())


def test_writer_round_trips_every_builtin():
    for doc in DOCS.values():
        assert tomllib.loads(to_toml(doc)) == doc


# ---- strategies -----------------------------------------------------------

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 9, 10**400, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 0.5, 9.0, 504.0]),
    st.text(max_size=12),
    st.sampled_from(["oral_ir", "oral_er", "iv_bolus", "intrathecal_bolus", "iv_infusion",
                     "intrathecal_infusion", "a", "bad name", ""]),
    st.dates(),
)
numbers = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1, 4.0, 9.0, 0.5, 100, 504.0, 1e-300, 1e300, float("nan"), float("inf"),
                     10**400, -(10**400), 2**63, True]),
    st.floats(min_value=-10, max_value=1000),
    st.integers(min_value=-5, max_value=1000),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=3),
    ),
    max_leaves=8,
)


def locations(node, path=()):
    """Every path (tuple of keys and indices) inside a parsed document."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from locations(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from locations(value, path + (i,))


def mutate(doc, path, kind, value, new_key):
    """Apply one mutation at ``path``; returns the changed copy."""
    doc = copy.deepcopy(doc)
    if not path:
        doc[new_key] = value
        return doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "replace":
        parent[last] = value
    elif kind == "delete":
        del parent[last]
    elif kind == "rename" and isinstance(parent, dict):
        parent[new_key] = parent.pop(last)
    elif kind == "add" and isinstance(parent[last], dict):
        parent[last][new_key] = value
    elif kind == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    else:
        parent[last] = value
    return doc


@st.composite
def mutated_documents(draw):
    doc = DOCS[draw(st.sampled_from(BUILTINS))]
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(list(locations(doc))))
        # mostly new values: unknown keys stop validation early, values go deep
        kind = draw(st.sampled_from(["replace"] * 6 + ["delete", "rename", "add", "duplicate"]))
        new_key = draw(st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=8)))
        value = draw(st.one_of(numbers, values))
        doc = mutate(doc, path, kind, value, new_key)
    return doc


@st.composite
def mutated_lines(draw):
    """Built-in text with lines dropped, repeated, swapped or edited."""
    lines = builtin_text(draw(st.sampled_from(BUILTINS))).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "swap", "edit"]))
        if op == "drop":
            del lines[i]
        elif op == "repeat":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k] + draw(st.text(max_size=4)) + lines[i][k + 1:]
        if not lines:
            break
    return "\n".join(lines)


toml_ish = st.text(alphabet=st.sampled_from(list('[]{}=".,#\n 0123456789-+._abcdefinrstuvwxyz_\'')), max_size=200)


# ---- the properties ---------------------------------------------------------


@FUZZ
@given(st.one_of(st.text(max_size=200), toml_ish))
def test_random_text_only_raises_scenario_error(text):
    check(text)


@FUZZ
@given(mutated_documents())
def test_mutated_builtins_only_raise_scenario_error(doc):
    check(to_toml(doc))


@FUZZ
@given(mutated_lines())
def test_line_mutations_of_builtins_only_raise_scenario_error(text):
    check(text)


@FUZZ
@given(
    st.sampled_from(BUILTINS),
    st.dictionaries(  # --set NAME=VALUE: mostly real names, values as numbers or text
        st.one_of(st.sampled_from(list(PARAMETER_INFO)), st.sampled_from(["V_cc", "", "ka ", "n"])),
        st.one_of(numbers, numbers.map(str), scalars),
        max_size=2,
    ),
    st.one_of(st.none(), numbers, scalars),
    st.one_of(st.none(), numbers, scalars),
)
def test_random_command_line_options_only_raise_scenario_error(name, overrides, n_subjects, seed):
    scenario = check(builtin_text(name), overrides=overrides, n_subjects=n_subjects, seed=seed)
    if scenario is not None and n_subjects is not None:
        assert scenario.subjects.n == n_subjects
