"""Every citation of the project's documents names a file and an anchor that exist.

Strategy: code, tests and documents cite the protocol rules in one form,
``docs/<name>.md#<anchor>`` (a file relative to the repository root and an anchor in it),
so a reader can follow every "why" without leaving the repository. This module collects
those citations from every ``.py`` file under p2pshare/, tests/ and bench/, every ``.md``
file under docs/ and bench/, and README.md, and checks each against the cited file. An
anchor exists if the file has ``<a id="...">`` with that id or a heading whose GitHub slug
is that anchor (headings inside fenced code are not headings). Markdown links in the
``.md`` files (``[text](other.md#anchor)``, ``[text](#anchor)``) are checked too, relative
to the file they are in. Naming the course's spec file, which is not in the repository,
is a failure: rules are cited from docs/p2p-ci.md and docs/p2p-di.md instead.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("p2pshare", "tests", "bench")
DOC_DIRS = ("docs", "bench")
# Spelled in two parts so that this file does not name it.
OUTSIDE_SPEC = "PROTOCOLS" + ".md"

_CITATION = re.compile(r"(?<![\w/.-])(docs/[\w.-]+?\.md)(?:#([\w-]+))?")
_LINK = re.compile(r"\]\(([^()\s#]*)#([^()\s]+)\)|\]\(([^()\s#]+\.md)\)")
_ANCHOR = re.compile(r"""<a\s+(?:id|name)\s*=\s*["']([^"']+)["']""")
_HEADING = re.compile(r" {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r" {0,3}(```|~~~)")


@dataclass(frozen=True, slots=True)
class Citation:
    """``where`` (file:line) cites ``target`` (a path from the root) at ``anchor``."""

    where: str
    target: str
    anchor: str | None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped, blanks
    turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>|[`*]", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def headings(text: str) -> list[str]:
    """The text of every Markdown heading outside fenced code, in order."""
    found, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line)):
            found.append(m.group(2))
    return found


def anchors(text: str) -> list[str]:
    """Every anchor a Markdown file defines, explicit ids first, repeats kept."""
    seen: Counter[str] = Counter()
    slugs = []
    for heading in headings(text):
        base = slug(heading)
        slugs.append(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return _ANCHOR.findall(text) + slugs


def sources(root: Path) -> list[Path]:
    """The files whose citations are checked."""
    files = [p for d in CODE_DIRS for p in sorted((root / d).rglob("*.py"))]
    files += [p for d in DOC_DIRS for p in sorted((root / d).rglob("*.md"))]
    readme = root / "README.md"
    return files + ([readme] if readme.exists() else [])


def citations(root: Path, path: Path) -> list[Citation]:
    """The ``docs/<name>.md[#anchor]`` citations in ``path``, and in a Markdown file also
    its links to Markdown files, as paths from ``root``."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.relative_to(root)}:{number}"
        for m in _CITATION.finditer(line):
            found.append(Citation(where, m.group(1), m.group(2)))
        if path.suffix == ".md":
            found += [_link(root, path, where, m) for m in _LINK.finditer(line)
                      if ":" not in (m.group(1) or m.group(3) or "")]
    return found


def _link(root: Path, path: Path, where: str, m: re.Match[str]) -> Citation:
    target = m.group(1) if m.group(1) is not None else m.group(3)
    resolved = (path.parent / target).resolve() if target else path.resolve()
    try:
        shown = str(resolved.relative_to(root.resolve()))
    except ValueError:
        shown = str(resolved)
    return Citation(where, shown, m.group(2))


def problems(root: Path) -> list[str]:
    """Every citation that names no file or no anchor, every mention of the outside spec,
    and every explicit anchor defined twice in one file."""
    found = []
    for path in sources(root):
        text = path.read_text(encoding="utf-8")
        if OUTSIDE_SPEC in text:
            found.append(f"{path.relative_to(root)} names {OUTSIDE_SPEC}, which is not in "
                         "the repository: cite docs/p2p-ci.md#<anchor> instead")
        found += [p for c in citations(root, path) if (p := _check(root, c))]
    for doc in sorted((root / "docs").glob("*.md")):
        twice = [a for a, n in Counter(_ANCHOR.findall(doc.read_text("utf-8"))).items() if n > 1]
        found += [f"{doc.relative_to(root)} defines anchor {a!r} twice" for a in twice]
    return found


def _check(root: Path, citation: Citation) -> str | None:
    target = root / citation.target
    if not target.is_file():
        return f"{citation.where}: {citation.target} does not exist"
    if citation.anchor is None or target.suffix != ".md":
        return None
    if citation.anchor not in anchors(target.read_text(encoding="utf-8")):
        return f"{citation.where}: {citation.target} has no anchor {citation.anchor!r}"
    return None


# --------------------------------------------------------------------------------- tests
def test_every_citation_in_the_repository_resolves() -> None:
    assert problems(ROOT) == []


def test_the_repository_cites_its_docs() -> None:
    """The check above sees real citations: an empty scan would pass vacuously."""
    cited = [c for p in sources(ROOT) for c in citations(ROOT, p)]
    targets = {c.target for c in cited if c.anchor}
    assert {"docs/p2p-ci.md", "docs/p2p-di.md"} <= targets
    assert len(cited) > 50


def test_every_ambiguity_has_its_own_anchor() -> None:
    text = (ROOT / "docs" / "p2p-ci.md").read_text(encoding="utf-8")
    assert {f"a{n}" for n in range(1, 14)} <= set(_ANCHOR.findall(text))


@pytest.mark.parametrize(("heading", "expected"), [
    ("2. P2S: peer ↔ index server (CI-2018 pp. 3-4)", "2-p2s-peer--index-server-ci-2018-pp-3-4"),
    ("ANNOUNCE: join a swarm", "announce-join-a-swarm"),
    ("Limits and timeouts (`p2pshare/limits.py`)", "limits-and-timeouts-p2psharelimitspy"),
    ("The handout's rules", "the-handouts-rules"),
    ("See [the peer](#peer-rules) *now*", "see-the-peer-now"),
])
def test_slug_follows_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_anchors_skip_code_and_number_repeats() -> None:
    text = ("# Top\n<a id=\"kept\"></a>\n## Part\n```sh\n# not a heading\n```\n## Part\n")
    assert anchors(text) == ["kept", "top", "part", "part-1"]


def _fake_repository(root: Path, cited: str) -> None:
    (root / "docs").mkdir()
    (root / "p2pshare").mkdir()
    (root / "docs" / "rules.md").write_text(
        "# Rules\n\n<a id=\"here\"></a>\n## A heading\n\nSee [there](#a-heading).\n",
        encoding="utf-8")
    (root / "p2pshare" / "mod.py").write_text(f'"""Cites {cited}."""\n', encoding="utf-8")


@pytest.mark.parametrize("anchor", ["here", "a-heading", "rules"])
def test_checker_accepts_a_citation_that_resolves(tmp_path: Path, anchor: str) -> None:
    _fake_repository(tmp_path, "docs/" + f"rules.md#{anchor}")
    assert problems(tmp_path) == []


@pytest.mark.parametrize(("cited", "complaint"), [
    ("docs/" + "rules.md#nowhere", "has no anchor 'nowhere'"),
    ("docs/" + "gone.md#here", "gone.md does not exist"),
    ("docs/" + "gone.md", "gone.md does not exist"),
    (OUTSIDE_SPEC + " section 2", "names " + OUTSIDE_SPEC),
])
def test_checker_reports_a_citation_that_does_not_resolve(
        tmp_path: Path, cited: str, complaint: str) -> None:
    _fake_repository(tmp_path, cited)
    found = problems(tmp_path)
    assert len(found) == 1 and complaint in found[0]


def test_checker_reports_a_broken_markdown_link(tmp_path: Path) -> None:
    _fake_repository(tmp_path, "nothing")
    with (tmp_path / "docs" / "rules.md").open("a", encoding="utf-8") as doc:
        doc.write("And [a lost one](rules.md#lost), [another](other.md).\n")
    found = problems(tmp_path)
    assert len(found) == 2
    assert "no anchor 'lost'" in found[0] and "other.md does not exist" in found[1]


def test_checker_reports_an_anchor_defined_twice(tmp_path: Path) -> None:
    _fake_repository(tmp_path, "nothing")
    with (tmp_path / "docs" / "rules.md").open("a", encoding="utf-8") as doc:
        doc.write("<a id=\"here\"></a>\n")
    assert problems(tmp_path) == [str(Path("docs", "rules.md")) + " defines anchor 'here' twice"]
