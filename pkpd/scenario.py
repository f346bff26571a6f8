"""Scenario files: read a TOML scenario and build it through the constructors.

The contract is ``scenario-format.md`` (format 1.1); the optional
``[[titrations]]`` and ``[[tapers]]`` blocks are the extension described in
``docs/scenario-extensions.md``.  The rules live in the constructors
(:class:`~pkpd.regimen.Dose`, :class:`~pkpd.regimen.Infusion`, the builders
of :mod:`pkpd.regimen`, :class:`~pkpd.population.Covariate`,
:class:`~pkpd.parameters.Parameters`, :class:`~pkpd.population.Omega` and
the three classes below); this module maps TOML paths to constructor calls,
so a file and a Python script are refused alike.  The keys each block may
hold are the constructors' own argument names.

Reading runs in fixed order, so messages do too: first the keys (every
unknown key anywhere before any missing one), then TOML's 64-bit integer
range, then the values.  Every problem is a
:class:`~pkpd.errors.ScenarioError` whose message is one line::

    <source>: <field path>: <rule>; got <value as written in the file>
    case.toml: doses[2].amount_mg: must be finite and > 0; got -5

Titration or taper blocks of one arm whose doses overlap on a route give an
:class:`~pkpd.errors.OverlapWarning` (doses add; it is not an error).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import numbers
import os
import re
import tomllib
import warnings
from dataclasses import dataclass, field
from importlib import resources
from itertools import combinations
from typing import Any, Callable, Mapping

from .errors import OverlapWarning, PkpdError, ScenarioError, show
from .parameters import COVARIATE_KEYWORDS, PARAMETER_INFO, REMOVED, Parameters, default_parameters
from .population import Covariate, Omega, Population, sample_population
from .regimen import MAX_TIME_H, Dose, Infusion, Regimen, overlaps, taper, taper_over, titration

__all__ = [
    "Arm", "Covariate", "CovariateSpec", "DEFAULT_SCENARIO", "Scenario", "SubjectsSpec",
    "builtin_scenarios", "builtin_text", "check_options", "load_scenario", "parse_scenario",
]

#: The built-in scenario that ``python -m pkpd run`` uses without a name.
DEFAULT_SCENARIO = "titration-stop-vs-taper"
#: Output grid step, h, when a file gives no ``output_step_h``.
DEFAULT_OUTPUT_STEP_H = 0.5
#: The scenario's name for :class:`pkpd.population.Covariate`.
CovariateSpec = Covariate

_NAME_RE = re.compile(r"[A-Za-z0-9-]+")  # scenario and arm names
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")  # keys shown unquoted in paths
_INT64 = (-(2**63), 2**63 - 1)  # TOML integers are 64-bit signed


# --------------------------------------------------------------------------
# What a scenario is.  Each class checks its own fields.
# --------------------------------------------------------------------------


def _error(name: str, rule: str, value: Any) -> ScenarioError:
    return ScenarioError(f"{name}: {rule}; got {show(value)}")


def _number(name: str, value: Any, rule: str, ok: Callable[[float], bool]) -> float:
    """A finite float satisfying ``ok``; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _error(name, "must be a number", value)
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not (math.isfinite(x) and ok(x)):
        raise _error(name, f"must be finite and {rule}", value)
    return x


def _integer(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _error(name, f"must be an integer >= {low}", value)
    if value > _INT64[1]:
        raise _error(name, "must be an integer <= 2**63 - 1 (64 bits)", value)
    return int(value)


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise _error(name, "must be a string of letters, digits and '-' only", value)
    return value


def _fixed_covariate(name: str, value: Any, info_name: str) -> float:
    """A fixed weight (kg) or creatinine clearance (mL/min) in its model range."""
    info = PARAMETER_INFO[info_name]
    return _number(name, value, info.rule(), lambda v: _in_range(info, v))


def _in_range(info, value: float) -> bool:
    try:
        info.check(value)
    except PkpdError:
        return False
    return True


@dataclass(frozen=True)
class Arm:
    """One regimen of a scenario, given to every subject.

    Attributes
    ----------
    name : str
        Letters, digits and '-' (the scenario's name when it has no arms).
    regimen : Regimen
        Doses and infusions, titrations and tapers already expanded.
    parameters : Parameters
        Typical values: defaults, then ``[parameters]``, then
        ``[arms.parameters]``, then the ``overrides``.
    weight_kg, crcl_ml_min : float or None
        Fixed covariates (kg > 0, mL/min >= 0) that replace the subjects'
        own values in this arm; None keeps them.
    """

    name: str
    regimen: Regimen
    parameters: Parameters
    weight_kg: float | None = None
    crcl_ml_min: float | None = None

    def __post_init__(self) -> None:
        _name("name", self.name)
        if not isinstance(self.regimen, Regimen):
            raise _error("regimen", "must be a pkpd.Regimen", self.regimen)
        if not isinstance(self.parameters, Parameters):
            raise _error("parameters", "must be a pkpd.Parameters", self.parameters)
        for key, info_name in (("weight_kg", "WT"), ("crcl_ml_min", "CrCl")):
            value = getattr(self, key)
            if isinstance(value, (dict, Covariate)):
                raise _error(key, "must be a fixed number in an arm (a drawn covariate belongs to the subjects)", value)
            if value is not None:
                object.__setattr__(self, key, _fixed_covariate(key, value, info_name))


@dataclass(frozen=True)
class SubjectsSpec:
    """Who is simulated (``[subjects]``), the same in every arm.

    Attributes
    ----------
    n : int
        Number of subjects, >= 1.
    seed : int
        Seed of the random draws, 0 <= seed <= 2**63 - 1.
    variability : bool
        Whether between-subject variability is sampled.
    weight_kg, crcl_ml_min : float or Covariate
        Body weight (kg, > 0) and creatinine clearance (mL/min, >= 0): fixed,
        or drawn per subject.
    omega : tuple of (str, float)
        Standard deviations of log-parameters overriding the defaults
        (``[subjects] omega``), in file order; a mapping is accepted.
    correlation : tuple of (str, float)
        Correlations between etas, e.g. ``(("CL,V_c", 0.5),)``.
    """

    n: int = 1
    seed: int = 0
    variability: bool = False
    weight_kg: float | Covariate = PARAMETER_INFO["WT"].default
    crcl_ml_min: float | Covariate = PARAMETER_INFO["CrCl"].default
    omega: tuple[tuple[str, float], ...] = ()
    correlation: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _integer("n", self.n, 1))
        object.__setattr__(self, "seed", _integer("seed", self.seed, 0))
        if not isinstance(self.variability, bool):
            raise _error("variability", "must be true or false", self.variability)
        for key, info_name in (("weight_kg", "WT"), ("crcl_ml_min", "CrCl")):
            value = getattr(self, key)
            if not isinstance(value, Covariate):
                object.__setattr__(self, key, _fixed_covariate(key, value, info_name))
        for key in ("omega", "correlation"):
            value = getattr(self, key)
            try:
                pairs = tuple(dict(value).items())
            except (TypeError, ValueError):
                raise _error(key, "must be a table of NAME = value", value) from None
            object.__setattr__(self, key, pairs)
        try:  # Omega owns the rules of both
            Omega.from_sd(dict(self.omega), dict(self.correlation))
        except PkpdError as exc:
            raise ScenarioError(str(exc)) from None

    def population(self, n: int | None = None) -> Population:
        """The subjects, drawn: :func:`pkpd.sample_population` with these settings.

        ``n`` replaces :attr:`n` (the first ``n`` subjects of a larger draw).
        """
        return sample_population(
            self.n if n is None else n, seed=self.seed, variability=self.variability,
            weight_kg=self.weight_kg, crcl_ml_min=self.crcl_ml_min,
            omega=dict(self.omega) or None, correlation=dict(self.correlation) or None,
        )


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: who, what, for how long.

    Attributes
    ----------
    name, description : str
        The name: letters, digits and '-'.
    duration_h, output_step_h : float
        Length of the run and output grid step, h, in (0, 876000] (100 years).
    subjects : SubjectsSpec
        The subjects, shared by every arm.
    arms : tuple of Arm
        At least one, with unique names.
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

    def __post_init__(self) -> None:
        _name("name", self.name)
        if not isinstance(self.description, str):
            raise _error("description", "must be a string", self.description)
        for key in ("duration_h", "output_step_h"):
            value = _number(key, getattr(self, key), "> 0", lambda v: v > 0)
            if value > MAX_TIME_H:
                raise _error(key, f"must be <= {MAX_TIME_H:.0f} (100 years)", getattr(self, key))
            object.__setattr__(self, key, value)
        if not isinstance(self.subjects, SubjectsSpec):
            raise _error("subjects", "must be a SubjectsSpec", self.subjects)
        arms = tuple(self.arms)
        if not arms:
            raise _error("arms", "must hold at least one arm ([[arms]] block)", self.arms)
        for i, arm in enumerate(arms):
            if not isinstance(arm, Arm):
                raise _error(f"arms[{i}]", "must be an Arm", arm)
            first = next(j for j, a in enumerate(arms) if a.name == arm.name)
            if first < i:
                raise _error(f"arms[{i}].name", f"must be unique (arms[{first}] has the same name)", arm.name)
        object.__setattr__(self, "arms", arms)


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


class _Invalid(Exception):
    """One problem in a scenario; its text lacks only the source label."""


def _show(value: Any) -> str:
    """A received value as written in TOML (booleans lower case)."""
    return ("true" if value else "false") if isinstance(value, bool) else show(value)


def _join(path: str, key: str) -> str:
    key = key if _BARE_KEY_RE.fullmatch(key) else json.dumps(key)
    return f"{path}.{key}" if path else key


def _suggest(key: str, choices) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (expected one of {', '.join(choices)})"


_ABSENT = object()


def _lookup(raw: Any, dotted: str) -> Any:
    """The value at ``a.b`` inside ``raw`` as the file wrote it, or _ABSENT."""
    for part in dotted.split("."):
        if not isinstance(raw, dict) or part not in raw:
            return _ABSENT
        raw = raw[part]
    return raw


def _spellings(value: Any) -> set[str]:
    """How a constructor may have echoed ``value`` (as given, or as a float)."""
    spelled = {show(value)}
    if isinstance(value, numbers.Real):
        spelled.add(show(float(value)))
    return spelled


def _call(build: Callable[..., Any], path: str, raw: Any, *args: Any, strip: str = "",
          rename: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)``; its error ``field: rule; got v`` becomes one at
    ``path.field``, echoing the value as written in ``raw``."""
    try:
        return build(*args, **kwargs)
    except PkpdError as exc:
        field_, sep, rest = str(exc).partition(": ")
        if not sep:
            raise _Invalid(f"{path}: {exc}") from None
        field_ = (rename or {}).get(field_.removeprefix(strip), field_.removeprefix(strip))
        rule, got, echoed = rest.partition("; got ")
        value = _lookup(raw, field_)
        if got and value is not _ABSENT and echoed in _spellings(value):  # as the file wrote it
            rest = f"{rule}; got {_show(value)}"
        raise _Invalid(f"{path}.{field_}: {rest}" if path else f"{field_}: {rest}") from None


# --------------------------------------------------------------------------
# Keys: the schema, from the constructors' own argument names
# --------------------------------------------------------------------------


def _arguments(*builders: Callable[..., Any]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for build in builders:
        for p in inspect.signature(build).parameters.values():
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                names[p.name] = None
    return tuple(names)


@dataclass(frozen=True)
class _Table:
    """Keys one table may hold: key -> None (a value), a _Table, or [_Table] (``[[key]]``)."""

    fields: Mapping[str, Any] | None  # None: any key (omega, correlation)
    required: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)
    needs: Callable[[Mapping[str, Any]], tuple[tuple[str, str], ...]] = lambda table: ()


def _values(*names: str, required: tuple[str, ...] = (), **kw: Any) -> _Table:
    return _Table(dict.fromkeys(names), required, **kw)


def _rate_needs(table):
    if "rate_mg_per_day" in table or "rate_mg_per_h" in table:
        return ()
    return (("rate_mg_per_day", " (an infusion needs rate_mg_per_day or rate_mg_per_h)"),)


def _taper_needs(table):
    note = " (a taper needs over_days, or step_mg and step_days)"
    return () if "over_days" in table else (("step_mg", note), ("step_days", note))


def _parameters(here: str, where: str) -> _Table:
    refused = {n: f"{n} is a covariate: set it as {k} in {where}, not in {here}" for n, k in COVARIATE_KEYWORDS.items()}
    return _Table(dict.fromkeys(n for n in PARAMETER_INFO if n not in COVARIATE_KEYWORDS), refused={**refused, **REMOVED})


_REGIMEN = {
    "doses": [_values(*_arguments(Dose), required=("route", "amount_mg", "at_h"))],
    "infusions": [_values(*_arguments(Infusion), required=("route", "start_h", "stop_h"), needs=_rate_needs)],
    "titrations": [_values(*_arguments(titration), required=("from_mg", "to_mg", "step_mg", "every_h", "step_days"))],
    "tapers": [_values(*_arguments(taper_over, taper), required=("from_mg", "every_h", "start_h"), needs=_taper_needs)],
}
_COVARIATE = _values(*_arguments(Covariate), required=_arguments(Covariate))
_SUBJECT_KEYS = {f.name: None for f in dataclasses.fields(SubjectsSpec)}
_SCHEMA = _Table({
    "name": None, "description": None, "duration_h": None, "output_step_h": None,
    "subjects": _Table({**_SUBJECT_KEYS, "weight_kg": _COVARIATE, "crcl_ml_min": _COVARIATE,
                        "omega": _Table(None), "correlation": _Table(None)}),
    "parameters": _parameters("[parameters]", "[subjects]"),
    **_REGIMEN,
    "arms": [_Table({"name": None, **_REGIMEN,
                     "parameters": _parameters("[arms.parameters]", "[arms.subjects] or [subjects]"),
                     "subjects": _values("weight_kg", "crcl_ml_min")}, required=("name",))],
}, required=("name", "duration_h"))


def _key_problems(value: Any, node: Any, path: str):
    """(0 unknown | 1 missing, message) under ``value`` in file order; wrong types are left to the values."""
    if isinstance(node, list) and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _key_problems(item, node[0], f"{path}[{i}]")
    elif isinstance(node, _Table) and node.fields is not None and isinstance(value, dict):
        for key, note in [(k, "") for k in node.required] + list(node.needs(value)):
            if key not in value:
                yield 1, f"{_join(path, key)}: required key is missing{note}"
        for key, item in value.items():
            where = _join(path, key)
            if key in node.refused:
                yield 0, f"{where}: {node.refused[key]}; got {_show(item)}"
            elif key in node.fields:
                yield from _key_problems(item, node.fields[key], where)
            else:
                yield 0, f"{where}: unknown key{_suggest(key, node.fields)}"


def _check_integers(data: Mapping[str, Any]) -> None:
    """TOML integers are 64-bit: refuse larger ones (iteratively: arrays may nest deeply)."""
    stack = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(reversed([(_join(path, k), v) for k, v in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{path}[{i}]", v) for i, v in enumerate(value)]))
        elif isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            raise _Invalid(f"{path}: must be a TOML integer, -2**63 to 2**63 - 1 (64 bits); got {_show(value)}")


# --------------------------------------------------------------------------
# Values: each table becomes one constructor call
# --------------------------------------------------------------------------


def _block_name(path: str) -> str:
    """``arms[1].doses`` -> ``arms.doses`` (how the block is written in TOML)."""
    return re.sub(r"\[\d+\]", "", path)


def _table(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(f"{path}: must be a table ([{_block_name(path)}]); got {_show(value)}")
    return value


def _tables(value: Any, path: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Invalid(f"{path}: must be an array of tables ([[{_block_name(path)}]]); got {_show(value)}")
    return value


def _taper_block(table: dict, path: str) -> Regimen:
    build = taper_over if "over_days" in table else taper
    for key in table:
        if key not in _arguments(build):
            rule = ("cannot be combined with over_days (give over_days and steps, or step_mg and step_days)"
                    if build is taper_over else "only applies with over_days")
            raise _Invalid(f"{path}.{key}: {rule}; got {_show(table[key])}")
    return _call(build, path, table, **table)


_BLOCKS: Mapping[str, Callable[[dict, str], Regimen]] = {
    "doses": lambda t, path: Regimen((_call(Dose, path, t, **t),)),
    "infusions": lambda t, path: Regimen(infusions=(_call(Infusion, path, t, **t),)),
    "titrations": lambda t, path: _call(titration, path, t, **t),
    "tapers": _taper_block,
}


def _regimen(table: dict, prefix: str, source: str) -> Regimen:
    """Every block of a table (the file, or one arm) as one Regimen; warns when
    builders' doses overlap."""
    doses, infusions, spans = [], [], []
    for key, build in _BLOCKS.items():
        for i, block in enumerate(_tables(table.get(key, []), prefix + key)):
            path = f"{prefix}{key}[{i}]"
            reg = build(block, path)
            doses += reg.doses
            infusions += reg.infusions
            spans += [(path, s) for s in reg.spans]
    for (pa, a), (pb, b) in combinations(spans, 2):
        if overlaps([a], [b]):
            warnings.warn(f"{source}: {pa} ({a.route} on [{a.start_h:g}, {a.end_h:g}) h) overlaps {pb} "
                          f"(on [{b.start_h:g}, {b.end_h:g}) h): their doses add", OverlapWarning, stacklevel=5)
    return Regimen(tuple(doses), tuple(infusions), tuple(s for _, s in spans))


def _subjects(data: dict, options: "_Options") -> SubjectsSpec:
    table = dict(_table(data.get("subjects", {}), "subjects"))
    for key in ("weight_kg", "crcl_ml_min"):
        if isinstance(table.get(key), dict):
            table[key] = _call(Covariate, f"subjects.{key}", table[key], **table[key])
    for key in ("omega", "correlation"):
        _table(table.get(key, {}), f"subjects.{key}")
    spec = _call(SubjectsSpec, "subjects", data.get("subjects", {}), **table)
    return dataclasses.replace(spec, **options.subjects)


def _arms(data: dict, name: str, base: Parameters, options: "_Options", source: str) -> list[Arm]:
    if "arms" not in data:
        parameters = base.replace(**options.parameters)
        return [Arm(name, _regimen(data, "", source), parameters)]
    mixed = [key for key in _BLOCKS if key in data]
    if mixed:
        raise _Invalid(f"arms: cannot be combined with top-level [[{mixed[0]}]] (give each arm its own [[arms.{mixed[0]}]])")
    arms = []
    for i, table in enumerate(_tables(data["arms"], "arms")):
        path = f"arms[{i}]"
        changes = _table(table.get("parameters", {}), f"{path}.parameters")
        own = _call(base.replace, f"{path}.parameters", changes, strip="parameters.", **changes)
        covariates = _table(table.get("subjects", {}), f"{path}.subjects")
        arms.append(_call(Arm, path, table, table["name"], _regimen(table, f"{path}.", source),
                          own.replace(**options.parameters), rename={k: f"subjects.{k}" for k in covariates},
                          **covariates))
    return arms  # Scenario makes it a tuple (and echoes an empty list as written)


def _read(data: dict, options: "_Options", source: str) -> Scenario:
    """A Scenario from parsed TOML."""
    problems = list(_key_problems(data, _SCHEMA, ""))
    if problems:
        raise _Invalid(min(problems, key=lambda p: p[0])[1])
    _check_integers(data)
    subjects = _subjects(data, options)
    changes = _table(data.get("parameters", {}), "parameters")
    base = _call(default_parameters().replace, "parameters", changes, strip="parameters.", **changes)
    name = data["name"] if isinstance(data["name"], str) and _NAME_RE.fullmatch(data["name"]) else "x"
    arms = _arms(data, name, base, options, source)
    head = {k: data[k] for k in ("name", "description", "duration_h", "output_step_h") if k in data}
    head = {"description": "", "output_step_h": DEFAULT_OUTPUT_STEP_H, **head}
    return _call(Scenario, "", data, **head, subjects=subjects, arms=arms, source=source)


# --------------------------------------------------------------------------
# Options given beside the file (the command line's --set, --subjects, --seed)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    parameters: Mapping[str, float]
    subjects: Mapping[str, int]


def check_options(overrides: Mapping[str, float] | None = None, n_subjects: int | None = None,
                  seed: int | None = None) -> None:
    """Raise :class:`ScenarioError` unless the options of :func:`parse_scenario` are valid.

    Messages name the keyword: ``overrides.V_c: ...``, ``n_subjects: ...``,
    ``seed: ...``.
    """
    _options(overrides, n_subjects, seed)


def _options(overrides, n_subjects, seed) -> _Options:
    try:
        if overrides is not None and not isinstance(overrides, Mapping):
            raise _Invalid(f"overrides: must map parameter names to values; got {_show(overrides)}")
        parameters = {}
        for name, value in (overrides or {}).items():
            if name in COVARIATE_KEYWORDS:
                raise _Invalid(f"overrides.{name}: {name} is a covariate: set it as "
                               f"{COVARIATE_KEYWORDS[name]} in the scenario's [subjects]")
            if not isinstance(name, str):
                raise _Invalid(f"overrides: parameter names must be strings; got {_show(name)}")
            try:
                _call(default_parameters().replace, "overrides", overrides, strip="parameters.", **{name: value})
            except OverflowError:  # Parameters converts before checking; until it checks first
                raise _Invalid(f"overrides.{name}: must be finite (beyond the float range); got {_show(value)}") from None
            parameters[name] = float(value)
        subjects = {k: v for k, v in (("n", n_subjects), ("seed", seed)) if v is not None}
        _call(SubjectsSpec, "", {}, rename={"n": "n_subjects"}, **subjects)
    except _Invalid as exc:
        raise ScenarioError(str(exc)) from None
    return _Options(parameters, subjects)


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
        The TOML document (format 1.1, plus titration and taper blocks).
    source : str
        Label that starts every message (a file name, ``builtin:NAME``).
    overrides : mapping of str to float, optional
        Typical values that override ``[parameters]`` and
        ``[arms.parameters]`` (model-spec names and units).
    n_subjects, seed : int, optional
        Replace ``subjects.n`` (>= 1) and ``subjects.seed`` (>= 0).

    Raises
    ------
    ScenarioError
        A one-line message ``<source>: <field path>: <rule>; got <value>``;
        a bad option is named by its keyword (:func:`check_options`).

    Warns
    -----
    OverlapWarning
        When titration or taper blocks of one arm overlap in time on a route.
    """
    options = _options(overrides, n_subjects, seed)
    try:
        return _read(_parse_toml(text), options, source)
    except _Invalid as exc:
        raise ScenarioError(" ".join(f"{source}: {exc}".splitlines())) from None


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
        raise ScenarioError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: cannot read file (not UTF-8 text: invalid byte at offset {exc.start})") from None


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
    return resources.files(__package__).joinpath("scenarios")


def _builtin_names() -> list[str]:
    return sorted(e.name.removesuffix(".toml") for e in _builtin_dir().iterdir() if e.name.endswith(".toml"))


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
        raise ScenarioError(" ".join(f"unknown built-in scenario {show(name)} (see: python -m pkpd list){hint}".split("\n")))
    return _builtin_dir().joinpath(f"{name}.toml").read_text(encoding="utf-8")


def builtin_scenarios() -> list[tuple[str, str]]:
    """Every built-in scenario as ``(name, description)``, sorted by name."""
    return [(name, tomllib.loads(builtin_text(name)).get("description", "")) for name in _builtin_names()]
