"""The documentation against the code and against itself.

(a) The parameter table of docs/model.md is ``pkpd.parameters.PARAMETER_INFO``
    (same names, same defaults, same units).
(b) Every relative link in README.md, docs/*.md, notebooks/README.md and the
    notebooks' markdown cells points to a file (and heading) in the
    repository.
(c) Nothing users read (README.md, docs/, notebooks/, pkpd/) points outside
    the repository: no path into the project's shared workspace, no
    "literature notes", no document name that exists nowhere in the
    repository.
(d) Every cited section of docs/literature.md exists as a numbered heading.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL_MD = ROOT / "docs" / "model.md"
LITERATURE_MD = ROOT / "docs" / "literature.md"

_SKIP_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", "build", "dist", ".venv",
              "venv", "pkpd-output", ".pytest_cache", ".asv"}
_TEXT_SUFFIXES = {".md", ".py", ".ipynb", ".toml", ".txt", ".cfg", ".json"}


@lru_cache(maxsize=None)
def repo_files() -> tuple[str, ...]:
    """Paths (relative, '/'-separated) of the repository's files."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split("\n")
        files = tuple(f for f in out if f and (ROOT / f).is_file())
        if files:
            return files
    except (OSError, subprocess.CalledProcessError):
        pass
    found = []
    for d, dirs, names in os.walk(ROOT):
        dirs[:] = [x for x in dirs if x not in _SKIP_DIRS and not x.endswith(".egg-info")]
        found += [Path(d, n).relative_to(ROOT).as_posix() for n in names]
    return tuple(sorted(found))


def _text_files(*prefixes: str) -> list[str]:
    return [f for f in repo_files()
            if Path(f).suffix in _TEXT_SUFFIXES and f.startswith(prefixes)]


def _prose(path: str) -> str:
    """What a reader sees of a file: markdown cells only for notebooks."""
    text = (ROOT / path).read_text(encoding="utf-8")
    if path.endswith(".ipynb"):
        cells = json.loads(text)["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return text


def _without_code(markdown: str) -> str:
    """Markdown with fenced code blocks and inline code spans removed."""
    markdown = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", markdown)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    heading = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return heading.replace(" ", "-")


@lru_cache(maxsize=None)
def _anchors(path: str) -> frozenset[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _without_code((ROOT / path).read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = _slug(m.group(1))
            n = seen.get(s, 0)
            anchors.add(s if n == 0 else f"{s}-{n}")
            seen[s] = n + 1
    return frozenset(anchors)


# --------------------------------------------------------------- (a) parameters


def _model_md_parameter_rows() -> dict[str, tuple[str, str]]:
    """name -> (default, unit) from the table headed 'name | default | unit | ...'."""
    rows: dict[str, tuple[str, str]] = {}
    in_table = False
    for line in MODEL_MD.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            in_table = False
            continue
        if cells[:3] == ["name", "default", "unit"]:
            in_table = True
            continue
        if in_table and not set(cells[0]) <= set("-: "):
            name = cells[0].strip("`")
            assert name not in rows, f"docs/model.md: parameter {name} listed twice"
            rows[name] = (cells[1], cells[2])
    return rows


def _unit(u: str) -> str:
    return u.replace("\u00b5", "u").replace("\u03bc", "u").replace(" ", "")


def test_parameter_table_matches_parameter_info():
    from pkpd.parameters import PARAMETER_INFO

    rows = _model_md_parameter_rows()
    assert rows, "no parameter table (| name | default | unit | meaning | basis |) in docs/model.md"
    only_doc = sorted(set(rows) - set(PARAMETER_INFO))
    only_code = sorted(set(PARAMETER_INFO) - set(rows))
    assert not only_doc and not only_code, (
        f"docs/model.md lists {only_doc} that PARAMETER_INFO lacks; "
        f"PARAMETER_INFO has {only_code} that docs/model.md lacks")
    for name, info in PARAMETER_INFO.items():
        default, unit = rows[name]
        assert float(default) == float(info.default), (
            f"{name}: docs/model.md default {default}, PARAMETER_INFO {info.default!r}")
        assert _unit(unit) == _unit(info.unit), (
            f"{name}: docs/model.md unit {unit!r}, PARAMETER_INFO {info.unit!r}")


# ---------------------------------------------------------------- (b) links

_LINK_SOURCES = ["README.md", "notebooks/README.md"] + sorted(
    f for f in repo_files() if re.fullmatch(r"docs/[^/]+\.md", f)) + sorted(
    f for f in repo_files() if re.fullmatch(r"notebooks/[^/]+\.ipynb", f))


def _links(markdown: str) -> list[str]:
    text = _without_code(markdown)
    return re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)


@pytest.mark.parametrize("source", [s for s in _LINK_SOURCES if (ROOT / s).is_file()])
def test_relative_links_resolve(source):
    broken = []
    files = set(repo_files())
    for target in _links(_prose(source)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        if path:
            resolved = (ROOT / source).parent.joinpath(path).resolve()
            try:
                rel = resolved.relative_to(ROOT).as_posix()
            except ValueError:
                broken.append(f"{target} (outside the repository)")
                continue
            if not (rel in files or any(f.startswith(rel.rstrip("/") + "/") for f in files)):
                broken.append(f"{target} (no such file)")
                continue
        else:
            rel = source
        if anchor and rel.endswith(".md") and anchor not in _anchors(rel):
            broken.append(f"{target} (no heading #{anchor} in {rel})")
    assert not broken, f"{source}: broken links: {broken}"


# ------------------------------------------------ (c) nothing points outside

_OUTSIDE = [
    (re.compile(r"(\.\./)+shared\b"), "a path into ../shared"),
    (re.compile(r"/work/"), "an absolute path into the workspace"),
    (re.compile(r"\bshared/(literature|model-spec|scenario-format|event-tables|house-style"
                r"|reference-solutions|nmtests)"), "the shared workspace"),
    (re.compile(r"literature notes", re.I), "'literature notes' (cite docs/literature.md)"),
    (re.compile(r"project's shared documents", re.I), "the project's shared documents"),
]

_SCANNED = sorted(_text_files("README.md", "docs/", "notebooks/", "pkpd/"))


@pytest.mark.parametrize("path", _SCANNED)
def test_nothing_points_outside_the_repository(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        for pattern, what in _OUTSIDE:
            if pattern.search(line):
                problems.append(f"line {n}: {what}: {line.strip()[:100]}")
    names = {Path(f).name for f in repo_files()}
    for n, line in enumerate(text.splitlines(), 1):
        for doc in re.findall(r"(?<![\w/.-])([A-Za-z][\w-]*\.md)\b", line):
            if doc not in names:
                problems.append(f"line {n}: names {doc}, which is not in the repository")
    assert not problems, f"{path} points outside the repository:\n" + "\n".join(problems)


# --------------------------------------------- (d) literature sections exist


def _literature_sections() -> set[str]:
    text = _without_code(LITERATURE_MD.read_text(encoding="utf-8"))
    return set(re.findall(r"^##\s+(\d+)\.\s", text, flags=re.M))


def test_literature_sections_are_numbered_in_order():
    numbers = re.findall(r"^##\s+(\d+)\.\s", _without_code(LITERATURE_MD.read_text(encoding="utf-8")),
                         flags=re.M)
    assert numbers == [str(i) for i in range(1, len(numbers) + 1)], numbers


def _citations() -> list[tuple[str, int, str]]:
    """(file, line, section) for every 'literature.md §N' anywhere, and every
    bare '§N' in docs/model.md and docs/literature.md (which mean its sections)."""
    found = []
    own = {"docs/model.md", "docs/literature.md"}
    for path in _text_files(""):
        if path == "tests/test_docs.py":
            continue
        text = (ROOT / path).read_text(encoding="utf-8")
        pattern = r"§\s*(\d+(?:\.\d+)?[a-z]?)" if path in own else \
            r"literature\.md\)?\]?\s*§\s*(\d+(?:\.\d+)?[a-z]?)"
        for n, line in enumerate(text.splitlines(), 1):
            found += [(path, n, m) for m in re.findall(pattern, line)]
    return found


def test_cited_literature_sections_exist():
    sections = _literature_sections()
    citations = _citations()
    assert citations, "no citation of docs/literature.md sections found"
    missing = [f"{p}:{n}: §{s}" for p, n, s in citations if s not in sections]
    assert not missing, (f"cited sections missing from docs/literature.md "
                         f"(it has §{', §'.join(sorted(sections, key=int))}): {missing}")
