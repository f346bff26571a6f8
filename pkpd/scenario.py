"""Scenario files: read a TOML scenario, check every rule, build its arms.

The contract is ``scenario-format.md`` (format v1).  The optional
``[[titrations]]`` and ``[[tapers]]`` blocks (``docs/scenario-extensions.md``)
are an extension of v1: they expand to ordinary doses through the builders
of :mod:`pkpd.regimen`, so a file that uses only plain blocks means what it
always meant.

Validation runs in two passes over the parsed TOML, so messages come in a
fixed order: first the keys (every unknown key anywhere before any missing
one), then the values.  Every problem is a :class:`~pkpd.errors.ScenarioError`
whose message is one line::

    <source>: <field path>: <rule>; got <value>
    case.toml: doses[2].amount_mg: must be finite and > 0; got -5

Units follow the format: times in h, amounts in mg, infusion rates in
mg/day, weight in kg, creatinine clearance in mL/min; the step lengths of
titrations and tapers are in days.
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import reduce
from importlib import resources
from typing import Any, Callable, Iterable, Iterator, Mapping

from .errors import ParameterError, PkpdError, ScenarioError
from .parameters import COVARIATES, PARAMETER_INFO, Parameters, default_parameters
from .population import Covariate
from .regimen import (
    DOSE_ROUTES,
    INFUSION_ROUTES,
    Dose,
    Infusion,
    Regimen,
    taper,
    taper_over,
    titration,
)
from .units import HOURS_PER_DAY

__all__ = [
    "Arm",
    "Covariate",
    "CovariateSpec",
    "DEFAULT_SCENARIO",
    "Scenario",
    "SubjectsSpec",
    "builtin_scenarios",
    "builtin_text",
    "load_scenario",
    "parse_scenario",
]

#: The built-in scenario that ``python -m pkpd run`` uses without a name.
DEFAULT_SCENARIO = "titration-stop-vs-taper"
#: Output grid step, h, when a file gives no ``output_step_h``.
DEFAULT_OUTPUT_STEP_H = 0.5

#: A covariate drawn per subject (truncated normal); the scenario's name for
#: :class:`pkpd.population.Covariate`.
CovariateSpec = Covariate

_NAME_RE = re.compile(r"[A-Za-z0-9-]+")  # scenario and arm names
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")  # keys shown unquoted in paths
_MAX_INT = 2**63 - 1  # TOML integers are 64-bit signed
_MAX_LEVELS = 1000  # dose levels one titration or taper block may expand to
_SHOW_LIMIT = 80  # characters of a received value echoed in a message
_REGIMEN_BLOCKS = ("doses", "infusions", "titrations", "tapers")
#: Covariate parameter name -> the [subjects] key that sets it.
_COVARIATE_KEYS = dict(zip(COVARIATES, ("weight_kg", "crcl_ml_min")))  # WT, CrCl
#: Names allowed in [parameters] and --set: every parameter but the covariates.
_PARAMETER_NAMES = tuple(name for name in PARAMETER_INFO if name not in _COVARIATE_KEYS)

_POSITIVE = ("> 0", lambda v: v > 0)
_NON_NEGATIVE = (">= 0", lambda v: v >= 0)


# --------------------------------------------------------------------------
# What a scenario is
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One regimen of a scenario, given to every subject.

    Attributes
    ----------
    name : str
        The arm's name (the scenario's name when the file has no arms).
    regimen : Regimen
        Doses (mg, h) and infusions (mg/day, h), titrations and tapers
        already expanded.
    parameters : Parameters
        Typical values: defaults, then ``[parameters]``, then
        ``[arms.parameters]``, then command-line overrides.
    weight_kg, crcl_ml_min : float or None
        Fixed covariates from ``[arms.subjects]`` (kg, mL/min) that replace
        the subjects' own values in this arm; None keeps them.
    """

    name: str
    regimen: Regimen
    parameters: Parameters
    weight_kg: float | None = None
    crcl_ml_min: float | None = None


@dataclass(frozen=True)
class SubjectsSpec:
    """Who is simulated (``[subjects]``), the same in every arm.

    Attributes
    ----------
    n : int
        Number of subjects, >= 1.
    seed : int
        Seed of the random draws, >= 0.
    variability : bool
        Whether between-subject variability is sampled.
    weight_kg : float or Covariate
        Body weight, kg: fixed, or drawn per subject.
    crcl_ml_min : float or Covariate
        Creatinine clearance, mL/min: fixed, or drawn per subject.
    """

    n: int = 1
    seed: int = 0
    variability: bool = False
    weight_kg: float | Covariate = PARAMETER_INFO["WT"].default
    crcl_ml_min: float | Covariate = PARAMETER_INFO["CrCl"].default


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: who, what, for how long.

    Attributes
    ----------
    name, description : str
        From the file.
    duration_h : float
        Length of the run, h, > 0.
    output_step_h : float
        Output grid step, h, > 0.
    subjects : SubjectsSpec
        The subjects, shared by every arm.
    arms : tuple of Arm
        At least one; a file without ``[[arms]]`` has one arm named after
        the scenario.
    source : str
        The label used in messages: the file as given, or ``builtin:NAME``.
    """

    name: str
    description: str
    duration_h: float
    output_step_h: float
    subjects: SubjectsSpec
    arms: tuple[Arm, ...]
    source: str = "<string>"


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


class _Invalid(Exception):
    """One problem in a scenario; its text lacks only the source label."""


def _invalid(path: str, rule: str, *received: Any) -> _Invalid:
    """``path: rule; got value`` (the ``got`` part only when a value is given)."""
    text = f"{path}: {rule}"
    if received:
        text += f"; got {_show(received[0])}"
    return _Invalid(text)


def _show(value: Any) -> str:
    """A received value as the user wrote it, on one line, shortened."""
    if isinstance(value, bool):  # as written in TOML
        return "true" if value else "false"
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def _one_line(text: str) -> str:
    """``text`` with every kind of line break turned into a space."""
    return " ".join(text.splitlines())


def _key(key: str) -> str:
    """A key as it appears in a field path: bare, or quoted as in TOML."""
    return key if _BARE_KEY_RE.fullmatch(key) else json.dumps(key)


def _join(path: str, key: str) -> str:
    return f"{path}.{_key(key)}" if path else _key(key)


def _fmt(x: float) -> str:
    """A bound quoted in a rule: 48.0 -> '48', without rounding away digits."""
    return f"{x:.15g}"


def _suggest(key: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else the list of valid keys."""
    close = difflib.get_close_matches(key, list(choices), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of {', '.join(choices)})"


# --------------------------------------------------------------------------
# Pass 1: keys.  The schema says which keys each table may hold.
# --------------------------------------------------------------------------

_UNKNOWN, _MISSING = 0, 1


@dataclass(frozen=True)
class _Table:
    """Keys of one TOML table: each maps to a sub-node (a _Table, an _Array,
    or None for a plain value)."""

    fields: Mapping[str, Any]
    required: tuple[str, ...] = ()
    #: known keys refused here, with the reason
    refused: Mapping[str, str] = field(default_factory=dict)
    #: keys required only in some combinations: table -> ((key, note), ...)
    conditional: Callable[[Mapping[str, Any]], tuple[tuple[str, str], ...]] | None = None

    def missing(self, table: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        """Required keys absent from ``table``, each with a note."""
        for key in self.required:
            if key not in table:
                yield key, ""
        if self.conditional is not None:
            for key, note in self.conditional(table):
                if key not in table:
                    yield key, note


@dataclass(frozen=True)
class _Array:
    """An array of tables (``[[name]]``)."""

    table: _Table


def _plain(*required: str, optional: tuple[str, ...] = (), **kw: Any) -> _Table:
    """A table of plain values."""
    return _Table(dict.fromkeys(required + optional), required=required, **kw)


def _taper_needs(table: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    if "over_days" in table:
        return ()
    note = " (a taper needs over_days, or step_mg and step_days)"
    return (("step_mg", note), ("step_days", note))


def _parameters_node(here: str, where: str) -> _Table:
    """``[parameters]`` (written ``here``): every model parameter except the
    covariates, which are set ``where``."""
    refused = {
        name: f"{name} is a covariate: set it as {key} in {where}, not in {here}"
        for name, key in _COVARIATE_KEYS.items()
    }
    return _Table(dict.fromkeys(_PARAMETER_NAMES), refused=refused)


_DOSE = _plain("route", "amount_mg", "at_h", optional=("every_h", "count"))
_INFUSION = _plain("route", "rate_mg_per_day", "start_h", "stop_h")
_TITRATION = _plain(
    "from_mg", "to_mg", "step_mg", "every_h", "step_days",
    optional=("route", "hold_days", "start_h"),
)
_TAPER = _plain(
    "from_mg", "every_h", "start_h",
    optional=("route", "over_days", "steps", "step_mg", "step_days"),
    conditional=_taper_needs,
)
_COVARIATE = _plain("mean", "sd", "min", "max")
_REGIMEN_NODES = {
    "doses": _Array(_DOSE),
    "infusions": _Array(_INFUSION),
    "titrations": _Array(_TITRATION),
    "tapers": _Array(_TAPER),
}
_SUBJECTS = _Table(
    {"n": None, "seed": None, "variability": None, "weight_kg": _COVARIATE, "crcl_ml_min": _COVARIATE}
)
_ARM = _Table(
    {
        "name": None,
        **_REGIMEN_NODES,
        "parameters": _parameters_node("[arms.parameters]", "[arms.subjects] or [subjects]"),
        "subjects": _plain(optional=("weight_kg", "crcl_ml_min")),
    },
    required=("name",),
)
_SCENARIO = _Table(
    {
        "name": None,
        "description": None,
        "duration_h": None,
        "output_step_h": None,
        "subjects": _SUBJECTS,
        "parameters": _parameters_node("[parameters]", "[subjects]"),
        **_REGIMEN_NODES,
        "arms": _Array(_ARM),
    },
    required=("name", "duration_h"),
)


def _key_problems(value: Any, node: Any, path: str) -> Iterator[tuple[int, str]]:
    """Unknown and missing keys under ``value``, in file order (a table's
    missing keys before those of the tables inside it).

    Values of the wrong type (a number where a table belongs) are skipped
    here; pass 2 reports them.
    """
    if isinstance(node, _Array) and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _key_problems(item, node.table, f"{path}[{i}]")
    elif isinstance(node, _Table) and isinstance(value, dict):
        for key, note in node.missing(value):  # a table's own before its children's
            yield _MISSING, f"{_join(path, key)}: required key is missing{note}"
        for key, item in value.items():
            where = _join(path, key)
            if key in node.refused:
                yield _UNKNOWN, f"{where}: {node.refused[key]}; got {_show(item)}"
            elif key in node.fields:
                yield from _key_problems(item, node.fields[key], where)
            else:
                yield _UNKNOWN, f"{where}: unknown key{_suggest(key, node.fields)}"


def _check_keys(data: Mapping[str, Any]) -> None:
    """Raise for the first unknown key anywhere, else the first missing one."""
    problems = list(_key_problems(data, _SCENARIO, ""))
    if problems:
        raise _Invalid(min(problems, key=lambda p: p[0])[1])


# --------------------------------------------------------------------------
# Pass 2: values
# --------------------------------------------------------------------------


def _number(value: Any, path: str, rule: str = "", ok: Callable[[float], bool] | None = None) -> float:
    """``value`` as a float: an integer or float, finite, satisfying ``ok``.

    Booleans are not numbers; ``rule`` is ``ok`` in words (e.g. ``'> 0'``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(path, "must be a number", value)
    try:
        x = float(value)
    except OverflowError:  # an integer beyond the float range
        x = math.inf
    if not math.isfinite(x) or (ok is not None and not ok(x)):
        raise _invalid(path, f"must be finite and {rule}" if rule else "must be finite", value)
    return x


def _integer(value: Any, path: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (``9.0`` and ``true`` are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _invalid(path, f"must be an integer >= {minimum}", value)
    if value > _MAX_INT:
        raise _invalid(path, "must be an integer <= 2**63 - 1 (64 bits)", value)
    return int(value)


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(path, "must be true or false", value)
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _invalid(path, "must be a string", value)
    return value


def _name(value: Any, path: str) -> str:
    """A scenario or arm name: one or more ASCII letters, digits or '-'."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise _invalid(path, "must be a string of letters, digits and '-' only", value)
    return value


def _route(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _invalid(path, f"must be a string, one of {', '.join(allowed)}", value)
    if value not in allowed:
        hint = ""
        if value in INFUSION_ROUTES:
            hint = f"; {value} belongs in [[infusions]]"
        elif value in DOSE_ROUTES:
            hint = f"; {value} belongs in [[doses]]"
        raise _Invalid(f"{path}: unknown route {_show(value)} (expected one of {', '.join(allowed)}){hint}")
    return value


def _table(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(path, f"must be a table ([{_block_name(path)}])", value)
    return value


def _tables(value: Any, path: str) -> list[Mapping[str, Any]]:
    """An array of tables (``[[name]]`` blocks)."""
    if not isinstance(value, list):
        raise _invalid(path, f"must be an array of tables ([[{_block_name(path)}]])", value)
    for i, item in enumerate(value):
        _table(item, f"{path}[{i}]")
    return value


def _block_name(path: str) -> str:
    """``arms[1].doses`` -> ``arms.doses`` (how the block is written in TOML)."""
    return re.sub(r"\[\d+\]", "", path)


def _construct(build: Callable[..., Any], path: str, *args: Any, **kwargs: Any) -> Any:
    """Call a library constructor; its own error becomes one at ``path``.

    The values were checked before, so this is a second line of defence:
    the constructors' messages already read ``field: rule; got value``.
    """
    try:
        return build(*args, **kwargs)
    except PkpdError as exc:
        raise _Invalid(f"{path}.{exc}") from None


def _satisfies(info: Any, value: float) -> bool:
    try:
        info.check(value)
    except ParameterError:
        return False
    return True


def _parameter_value(value: Any, path: str, name: str) -> float:
    """A value of model parameter ``name`` in its allowed range (PARAMETER_INFO)."""
    info = PARAMETER_INFO[name]
    return _number(value, path, info.rule(), lambda v: _satisfies(info, v))


def _parameter_changes(value: Any, path: str) -> dict[str, float]:
    """``[parameters]`` or ``[arms.parameters]`` as ``{name: value}``.

    Key names were checked in pass 1.
    """
    table = _table(value, path)
    return {name: _parameter_value(v, f"{path}.{name}", name) for name, v in table.items()}


# ---- subjects --------------------------------------------------------------


def _covariate_table(table: Mapping[str, Any], path: str) -> Covariate:
    """``{mean, sd, min, max}``: sd >= 0 and 0 < min <= mean <= max."""
    mean = _number(table["mean"], f"{path}.mean")
    sd = _number(table["sd"], f"{path}.sd", *_NON_NEGATIVE)
    low = _number(table["min"], f"{path}.min", *_POSITIVE)
    high = _number(table["max"], f"{path}.max", f">= min ({_fmt(low)})", lambda v: v >= low)
    if not low <= mean <= high:
        raise _invalid(f"{path}.mean", f"must be within [min, max] = [{_fmt(low)}, {_fmt(high)}]", table["mean"])
    return _construct(Covariate, path, mean=mean, sd=sd, min=low, max=high)


def _covariate(value: Any, path: str, name: str) -> float | Covariate:
    """A covariate of ``[subjects]``: a fixed number or a covariate table."""
    if isinstance(value, dict):
        return _covariate_table(value, path)
    return _parameter_value(value, path, name)


def _subjects(value: Any, options: "_Options") -> SubjectsSpec:
    """``[subjects]`` with the command line's ``--subjects``/``--seed`` applied."""
    table = _table(value, "subjects")
    defaults = SubjectsSpec()
    n = _integer(table.get("n", defaults.n), "subjects.n", 1)
    seed = _integer(table.get("seed", defaults.seed), "subjects.seed", 0)
    return SubjectsSpec(
        n=n if options.n_subjects is None else options.n_subjects,
        seed=seed if options.seed is None else options.seed,
        variability=_boolean(table.get("variability", defaults.variability), "subjects.variability"),
        weight_kg=_covariate(table.get("weight_kg", defaults.weight_kg), "subjects.weight_kg", "WT"),
        crcl_ml_min=_covariate(table.get("crcl_ml_min", defaults.crcl_ml_min), "subjects.crcl_ml_min", "CrCl"),
    )


# ---- plain doses and infusions ---------------------------------------------


def _dose(table: Mapping[str, Any], path: str) -> Regimen:
    """A ``[[doses]]`` block: amount (mg) at ``at_h + k * every_h`` (h)."""
    route = _route(table["route"], f"{path}.route", DOSE_ROUTES)
    amount_mg = _number(table["amount_mg"], f"{path}.amount_mg", *_POSITIVE)
    at_h = _number(table["at_h"], f"{path}.at_h", *_NON_NEGATIVE)
    every_h = None
    if "every_h" in table:
        every_h = _number(table["every_h"], f"{path}.every_h", *_POSITIVE)
    count = None
    if "count" in table:
        count = _integer(table["count"], f"{path}.count", 1)
        if count > 1 and every_h is None:
            raise _invalid(f"{path}.count", "more than one dose needs every_h (the interval)", count)
    dose = _construct(Dose, path, route, amount_mg, at_h=at_h, every_h=every_h, count=count)
    return Regimen(doses=(dose,))


def _infusion(table: Mapping[str, Any], path: str) -> Regimen:
    """An ``[[infusions]]`` block: rate (mg/day) on [start_h, stop_h) (h)."""
    route = _route(table["route"], f"{path}.route", INFUSION_ROUTES)
    rate = _number(table["rate_mg_per_day"], f"{path}.rate_mg_per_day", *_POSITIVE)
    start_h = _number(table["start_h"], f"{path}.start_h", *_NON_NEGATIVE)
    stop_h = _number(table["stop_h"], f"{path}.stop_h", f"> start_h ({_fmt(start_h)})", lambda v: v > start_h)
    infusion = _construct(Infusion, path, route, rate, start_h=start_h, stop_h=stop_h)
    return Regimen(infusions=(infusion,))


# ---- extension: titrations and tapers --------------------------------------


def _common_steps(table: Mapping[str, Any], path: str) -> tuple[str, float, float]:
    """Route (default oral_ir), from_mg (mg, > 0) and every_h (h, > 0)."""
    route = _route(table.get("route", "oral_ir"), f"{path}.route", DOSE_ROUTES)
    from_mg = _number(table["from_mg"], f"{path}.from_mg", *_POSITIVE)
    every_h = _number(table["every_h"], f"{path}.every_h", *_POSITIVE)
    return route, from_mg, every_h


def _check_levels(ratio: float, path: str, value: Any) -> None:
    """Refuse blocks that would expand to more than _MAX_LEVELS dose levels."""
    if not math.isfinite(ratio) or ratio >= _MAX_LEVELS:
        raise _invalid(path, f"gives more than {_MAX_LEVELS} dose levels", value)


def _check_whole_intervals(step_h: float, every_h: float, path: str, value: Any, formula: str) -> None:
    """A step of ``step_h`` hours must hold a whole number (>= 1) of doses.

    The builders round ``step_h / every_h`` to an integer; requiring it to
    be whole keeps the doses exactly where the file says.
    """
    ratio = step_h / every_h
    whole = math.isfinite(ratio) and round(ratio) >= 1 and abs(ratio - round(ratio)) <= 1e-9 * max(1.0, ratio)
    if not whole:
        raise _invalid(
            path,
            f"must last a whole number of every_h = {_fmt(every_h)} h dosing intervals "
            f"({formula} is {ratio:.6g})",
            value,
        )


def _check_days(table: Mapping[str, Any], path: str, key: str, every_h: float) -> None:
    """``table[key]`` days must hold a whole number of every_h intervals."""
    step_h = table[key] * HOURS_PER_DAY
    _check_whole_intervals(step_h, every_h, f"{path}.{key}", table[key], f"{key} * 24 / every_h")


def _titration(table: Mapping[str, Any], path: str) -> Regimen:
    """A ``[[titrations]]`` block, expanded by :func:`pkpd.regimen.titration`.

    Doses from_mg, from_mg + step_mg, ... to_mg (mg per dose) every every_h
    hours, each level for step_days days from start_h (h), then to_mg for
    hold_days more days.
    """
    route, from_mg, every_h = _common_steps(table, path)
    to_mg = _number(table["to_mg"], f"{path}.to_mg", f">= from_mg ({_fmt(from_mg)})", lambda v: v >= from_mg)
    step_mg = _number(table["step_mg"], f"{path}.step_mg", *_POSITIVE)
    step_days = _number(table["step_days"], f"{path}.step_days", *_POSITIVE)
    hold_days = _number(table.get("hold_days", 0.0), f"{path}.hold_days", *_NON_NEGATIVE)
    start_h = _number(table.get("start_h", 0.0), f"{path}.start_h", *_NON_NEGATIVE)
    steps = (to_mg - from_mg) / step_mg
    _check_levels(steps, f"{path}.step_mg", table["step_mg"])
    if abs(steps - round(steps)) > 1e-10:  # regimen._levels floors steps + 1e-9
        raise _invalid(
            f"{path}.to_mg",
            f"must be from_mg ({_fmt(from_mg)}) plus a whole number of step_mg ({_fmt(step_mg)}) steps",
            table["to_mg"],
        )
    _check_days(table, path, "step_days", every_h)
    if hold_days > 0:
        _check_days(table, path, "hold_days", every_h)
    return _construct(
        titration, path, from_mg, to_mg, step_mg=step_mg, every_h=every_h,
        step_days=step_days, hold_days=hold_days, start_h=start_h, route=route,
    )


def _taper(table: Mapping[str, Any], path: str) -> Regimen:
    """A ``[[tapers]]`` block: over_days (:func:`taper_over`) or step_mg and
    step_days (:func:`taper`), starting one level below from_mg at start_h."""
    route, from_mg, every_h = _common_steps(table, path)
    start_h = _number(table["start_h"], f"{path}.start_h", *_NON_NEGATIVE)
    if "over_days" in table:
        return _taper_over_days(table, path, route, from_mg, every_h, start_h)
    return _taper_by_steps(table, path, route, from_mg, every_h, start_h)


def _taper_over_days(
    table: Mapping[str, Any], path: str, route: str, from_mg: float, every_h: float, start_h: float
) -> Regimen:
    """Linear taper to zero over ``over_days`` days in ``steps`` equal steps."""
    for key in ("step_mg", "step_days"):
        if key in table:
            rule = "cannot be combined with over_days (give over_days and steps, or step_mg and step_days)"
            raise _invalid(f"{path}.{key}", rule, table[key])
    over_days = _number(table["over_days"], f"{path}.over_days", *_NON_NEGATIVE)
    steps = _integer(table.get("steps", 4), f"{path}.steps", 1)
    _check_levels(steps, f"{path}.steps", steps)
    if over_days > 0:  # over_days = 0 is an abrupt stop: no doses
        step_h = over_days * HOURS_PER_DAY / steps
        formula = "over_days * 24 / steps / every_h"
        _check_whole_intervals(step_h, every_h, f"{path}.over_days", table["over_days"], formula)
    return _construct(
        taper_over, path, from_mg, over_days, steps=steps, every_h=every_h, start_h=start_h, route=route
    )


def _taper_by_steps(
    table: Mapping[str, Any], path: str, route: str, from_mg: float, every_h: float, start_h: float
) -> Regimen:
    """Taper down by ``step_mg`` every ``step_days`` days until below step_mg."""
    if "steps" in table:
        raise _invalid(f"{path}.steps", "only applies with over_days", table["steps"])
    below = f"> 0 and < from_mg ({_fmt(from_mg)})"
    step_mg = _number(table["step_mg"], f"{path}.step_mg", below, lambda v: 0 < v < from_mg)
    step_days = _number(table["step_days"], f"{path}.step_days", *_POSITIVE)
    _check_levels(from_mg / step_mg, f"{path}.step_mg", table["step_mg"])
    _check_days(table, path, "step_days", every_h)
    return _construct(
        taper, path, from_mg, step_mg=step_mg, every_h=every_h, step_days=step_days, start_h=start_h, route=route
    )


_BLOCK_BUILDERS: Mapping[str, Callable[[Mapping[str, Any], str], Regimen]] = {
    "doses": _dose,
    "infusions": _infusion,
    "titrations": _titration,
    "tapers": _taper,
}


def _regimen(table: Mapping[str, Any], prefix: str) -> Regimen:
    """Every regimen block of a table (the file, or one arm) as one Regimen."""
    parts = [
        build(block, f"{prefix}{key}[{i}]")
        for key, build in _BLOCK_BUILDERS.items()
        for i, block in enumerate(_tables(table.get(key, []), f"{prefix}{key}"))
    ]
    return reduce(lambda a, b: a + b, parts, Regimen())


# ---- arms ------------------------------------------------------------------


def _arm_covariate(table: Mapping[str, Any], key: str, name: str, path: str) -> float | None:
    """A fixed covariate from ``[arms.subjects]``, or None when absent."""
    if key not in table:
        return None
    if isinstance(table[key], dict):
        rule = "must be a fixed number here (covariate tables belong in [subjects])"
        raise _invalid(f"{path}.{key}", rule, table[key])
    return _parameter_value(table[key], f"{path}.{key}", name)


def _arm(table: Mapping[str, Any], path: str, base: Parameters, options: "_Options") -> Arm:
    name = _name(table["name"], f"{path}.name")
    regimen = _regimen(table, f"{path}.")
    changes = _parameter_changes(table.get("parameters", {}), f"{path}.parameters")
    subjects = _table(table.get("subjects", {}), f"{path}.subjects")
    return Arm(
        name=name,
        regimen=regimen,
        parameters=_construct(base.replace, path, **{**changes, **options.parameters}),
        weight_kg=_arm_covariate(subjects, "weight_kg", "WT", f"{path}.subjects"),
        crcl_ml_min=_arm_covariate(subjects, "crcl_ml_min", "CrCl", f"{path}.subjects"),
    )


def _arms(data: Mapping[str, Any], scenario_name: str, base: Parameters, options: "_Options") -> tuple[Arm, ...]:
    """The ``[[arms]]``, or the single arm of a file without them."""
    if "arms" not in data:
        parameters = _construct(base.replace, "parameters", **options.parameters)
        return (Arm(scenario_name, _regimen(data, ""), parameters),)
    mixed = [key for key in _REGIMEN_BLOCKS if key in data]
    if mixed:
        raise _Invalid(
            f"arms: cannot be combined with top-level [[{mixed[0]}]] "
            f"(give each arm its own [[arms.{mixed[0]}]])"
        )
    blocks = _tables(data["arms"], "arms")
    if not blocks:
        raise _invalid("arms", "must hold at least one [[arms]] block", blocks)
    arms: list[Arm] = []
    for i, block in enumerate(blocks):
        arm = _arm(block, f"arms[{i}]", base, options)
        earlier = [j for j, a in enumerate(arms) if a.name == arm.name]
        if earlier:
            raise _invalid(f"arms[{i}].name", f"must be unique (arms[{earlier[0]}] has the same name)", arm.name)
        arms.append(arm)
    return tuple(arms)


def _build(data: Mapping[str, Any], options: "_Options", source: str) -> Scenario:
    """A Scenario from parsed TOML whose keys passed pass 1."""
    name = _name(data["name"], "name")
    description = _string(data.get("description", ""), "description")
    duration_h = _number(data["duration_h"], "duration_h", *_POSITIVE)
    output_step_h = _number(data.get("output_step_h", DEFAULT_OUTPUT_STEP_H), "output_step_h", *_POSITIVE)
    subjects = _subjects(data.get("subjects", {}), options)
    changes = _parameter_changes(data.get("parameters", {}), "parameters")
    base = _construct(default_parameters().replace, "parameters", **changes)
    return Scenario(
        name=name,
        description=description,
        duration_h=duration_h,
        output_step_h=output_step_h,
        subjects=subjects,
        arms=_arms(data, name, base, options),
        source=source,
    )


# --------------------------------------------------------------------------
# Command-line options
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """Validated command-line values that replace the file's."""

    parameters: Mapping[str, float]
    n_subjects: int | None
    seed: int | None


def _set_value(name: Any, value: Any) -> float:
    """One ``--set NAME=VALUE``: a known parameter in its range."""
    if not isinstance(name, str):
        raise _invalid("--set", "parameter name must be a string", name)
    label = f"--set {_key(name)}"
    if name in _COVARIATE_KEYS:
        key = _COVARIATE_KEYS[name]
        raise _Invalid(f"{label}: {name} is a covariate: set it as {key} in the scenario's [subjects], not with --set")
    if name not in PARAMETER_INFO:
        raise _Invalid(f"{label}: unknown parameter{_suggest(name, _PARAMETER_NAMES)}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _invalid(label, "must be a number", value) from None
    return _parameter_value(value, label, name)


def _options(overrides: Mapping[str, float] | None, n_subjects: int | None, seed: int | None) -> _Options:
    """Check the command-line values (messages name the option, not a file)."""
    try:
        return _Options(
            parameters={name: _set_value(name, value) for name, value in (overrides or {}).items()},
            n_subjects=None if n_subjects is None else _integer(n_subjects, "--subjects", 1),
            seed=None if seed is None else _integer(seed, "--seed", 0),
        )
    except _Invalid as exc:
        raise ScenarioError(_one_line(str(exc))) from None


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _parse_toml(text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise _Invalid(f"invalid TOML: {exc}") from None
    except RecursionError:
        raise _Invalid("invalid TOML: nested too deeply") from None
    if not data:
        raise _Invalid("empty scenario: name and duration_h are required")
    return data


def parse_scenario(
    text: str,
    *,
    source: str = "<string>",
    overrides: Mapping[str, float] | None = None,
    n_subjects: int | None = None,
    seed: int | None = None,
) -> Scenario:
    """Validate a scenario given as TOML text and build it.

    Parameters
    ----------
    text : str
        The TOML document (format v1, plus titration and taper blocks).
    source : str
        Label that starts every message (a file name, ``builtin:NAME``).
    overrides : mapping of str to float, optional
        ``--set NAME=VALUE`` from the command line: typical values that
        override ``[parameters]`` and ``[arms.parameters]`` (model-spec
        units).  Values may also be strings holding a number.
    n_subjects, seed : int, optional
        Replace ``subjects.n`` (>= 1) and ``subjects.seed`` (>= 0).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        For any invalid input, with a one-line message
        ``<source>: <field path>: <rule>; got <value>``; problems with the
        command-line values name the option (``--set V_c: ...``).
    """
    options = _options(overrides, n_subjects, seed)
    try:
        data = _parse_toml(text)
        _check_keys(data)
        return _build(data, options, source)
    except _Invalid as exc:
        raise ScenarioError(_one_line(f"{source}: {exc}")) from None


def _looks_like_path(ref: str) -> bool:
    """A path names an existing file, ends in '.toml' or holds a separator."""
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return os.path.isfile(ref) or ref.endswith(".toml") or any(s in ref for s in separators)


def _read_text(path: str) -> str:
    """A file's text (UTF-8, with or without a byte-order mark)."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ScenarioError(_one_line(f"{path}: cannot read file ({exc.strerror or exc})")) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text: invalid byte at offset {exc.start}"
        raise ScenarioError(_one_line(f"{path}: cannot read file ({reason})")) from None


def load_scenario(
    ref: str | os.PathLike[str],
    *,
    overrides: Mapping[str, float] | None = None,
    n_subjects: int | None = None,
    seed: int | None = None,
) -> Scenario:
    """Read a scenario file or a built-in scenario and validate it.

    ``ref`` is a path when it names an existing file, ends in ``.toml`` or
    contains a path separator; otherwise it is a built-in name.  The other
    arguments are those of :func:`parse_scenario`.

    Raises
    ------
    ScenarioError
        ``<path>: cannot read file (<reason>)``, ``unknown built-in scenario
        'x' (see: python -m pkpd list)``, or any validation error.
    """
    ref = os.fspath(ref)
    if _looks_like_path(ref):
        text, source = _read_text(ref), ref
    else:
        text, source = builtin_text(ref), f"builtin:{ref}"
    return parse_scenario(text, source=source, overrides=overrides, n_subjects=n_subjects, seed=seed)


def _builtin_dir():
    """The folder of built-in scenarios shipped with the package."""
    return resources.files(__package__).joinpath("scenarios")


def _builtin_names() -> list[str]:
    suffix = ".toml"
    return sorted(e.name[: -len(suffix)] for e in _builtin_dir().iterdir() if e.name.endswith(suffix))


def builtin_text(name: str) -> str:
    """The TOML text of built-in scenario ``name``.

    Raises
    ------
    ScenarioError
        ``unknown built-in scenario 'x' (see: python -m pkpd list)``.
    """
    names = _builtin_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ScenarioError(_one_line(f"unknown built-in scenario {name!r} (see: python -m pkpd list){hint}"))
    return _builtin_dir().joinpath(f"{name}.toml").read_text(encoding="utf-8")


def builtin_scenarios() -> list[tuple[str, str]]:
    """Every built-in scenario as ``(name, description)``, sorted by name."""
    return [(name, tomllib.loads(builtin_text(name)).get("description", "")) for name in _builtin_names()]
