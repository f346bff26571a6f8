"""docs/teachers-guide.md against the notebooks it describes.

The guide's format, which these tests pin down:

- one section per notebook, headed ``## NN · Title`` and linking to
  ``../notebooks/<stem>.ipynb``;
- in each section three subsections, in this order:
  ``### Lesson plan (45 min)``, ``### Answers to "Try this"`` and
  ``### Misconceptions``;
- the lesson plan is a numbered list whose items each start with a duration
  in bold, ``1. **(5 min)** ...``; the durations add up to 45;
- the lesson plan quotes the notebook's learning goals word for word
  (one ``- goal`` line each);
- the answers are a numbered list (``1.``, ``2.``, ... at the start of a
  line), one item for every item of the notebook's "Try this" list, in the
  same order;
- the misconceptions are bullets ``- **Misconception:** ... **Evidence:** ...``,
  at least two per notebook.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "teachers-guide.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))

_NUMBERED = re.compile(r"^(\d+)\.\s")
_MINUTES = re.compile(r"^\d+\.\s+\*\*\((\d+) min\)\*\*")
_SUBSECTIONS = ("### Lesson plan (45 min)", '### Answers to "Try this"', "### Misconceptions")


def _markdown_lines(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    lines: list[str] = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            source = cell["source"]
            lines += ("".join(source) if isinstance(source, list) else source).splitlines()
    return lines


def try_this_items(path: Path) -> list[int]:
    """Numbers of the list items under the notebook's heading containing "Try this"."""
    lines = _markdown_lines(path)
    starts = [i for i, line in enumerate(lines) if line.startswith("#") and "try this" in line.lower()]
    assert len(starts) == 1, f"{path.name}: expected one 'Try this' heading, found {len(starts)}"
    items = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("#"):
            break
        m = _NUMBERED.match(line)
        if m:
            items.append(int(m.group(1)))
    return items


def learning_goals(path: Path) -> list[str]:
    lines = _markdown_lines(path)
    start = next(i for i, line in enumerate(lines) if "Learning goals" in line)
    goals = []
    for line in lines[start + 1:]:
        if line.startswith("- "):
            goals.append(line[2:].strip())
        elif goals and line.startswith("  ") and line.strip():
            goals[-1] += " " + line.strip()  # a goal wrapped over two lines
        elif goals:
            break
    return goals


def guide_sections() -> dict[str, str]:
    """Section text of the guide, keyed by the notebook stem it links to."""
    text = GUIDE.read_text(encoding="utf-8")
    parts = re.split(r"^(?=## \d\d · )", text, flags=re.M)
    sections = {}
    for part in parts[1:]:
        m = re.search(r"\(\.\./notebooks/(\d\d-[a-z0-9-]+)\.ipynb\)", part)
        assert m, f"guide section without a notebook link: {part.splitlines()[0]}"
        sections[m.group(1)] = part
    return sections


def subsection(section: str, heading: str) -> str:
    assert heading in section, f"missing {heading!r}"
    body = section.split(heading, 1)[1]
    return re.split(r"^### ", body, maxsplit=1, flags=re.M)[0]


def top_level_numbers(body: str) -> list[int]:
    return [int(m.group(1)) for m in map(_NUMBERED.match, body.splitlines()) if m]


IDS = [p.stem for p in NOTEBOOKS]


def test_the_parsers_see_the_notebooks():
    assert len(NOTEBOOKS) >= 10
    for path in NOTEBOOKS:
        items = try_this_items(path)
        assert items == list(range(1, len(items) + 1)) and len(items) >= 3, (path.name, items)
        assert len(learning_goals(path)) >= 3, path.name


def test_every_notebook_has_a_section_in_order():
    sections = guide_sections()
    assert list(sections) == IDS, "one section per notebook, in reading order"
    for stem, section in sections.items():
        assert section.startswith(f"## {stem[:2]} · "), section.splitlines()[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_section_has_the_three_subsections_in_order(path):
    section = guide_sections()[path.stem]
    positions = [section.find(h) for h in _SUBSECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_lesson_plan_adds_up_to_45_minutes(path):
    plan = subsection(guide_sections()[path.stem], _SUBSECTIONS[0])
    numbered = [line for line in plan.splitlines() if _NUMBERED.match(line)]
    minutes = [int(_MINUTES.match(line).group(1)) for line in numbered if _MINUTES.match(line)]
    assert len(minutes) == len(numbered) >= 3, "every lesson-plan step starts with '**(N min)**'"
    assert sum(minutes) == 45, minutes


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_lesson_plan_quotes_the_learning_goals(path):
    plan = subsection(guide_sections()[path.stem], _SUBSECTIONS[0])
    for goal in learning_goals(path):
        assert f"- {goal}" in plan, f"learning goal not quoted: {goal}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_one_answer_per_try_this_item(path):
    answers = subsection(guide_sections()[path.stem], _SUBSECTIONS[1])
    assert top_level_numbers(answers) == try_this_items(path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_misconceptions_come_with_evidence(path):
    body = subsection(guide_sections()[path.stem], _SUBSECTIONS[2])
    items = [line for line in body.splitlines() if line.startswith("- **Misconception:**")]
    assert len(items) >= 2
    assert body.count("**Evidence:**") == len(items)


def test_guide_states_what_its_answers_are():
    head = GUIDE.read_text(encoding="utf-8").split("\n## ", 1)[0]
    head = " ".join(line.lstrip("> ") for line in head.splitlines())  # unwrap the quote block
    head = " ".join(head.split())
    assert "never for dosing decisions" in head
    assert "illustrative teaching values" in head and "model.md" in head
    assert "not clinical" in head


def test_guide_is_linked_from_the_readmes():
    for readme in (ROOT / "README.md", ROOT / "notebooks" / "README.md"):
        assert "teachers-guide.md" in readme.read_text(encoding="utf-8"), readme
