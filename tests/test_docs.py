"""The documentation's links: every relative link in the README, the changelog, docs/ and the
experiment index and reports names a file that exists, and every `#anchor` a heading of its
target as GitHub renders it. The README stays a short overview."""

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted([REPO / "README.md", REPO / "CHANGELOG.md", REPO / "experiments" / "README.md",
                *(REPO / "docs").glob("*.md"), *(REPO / "experiments" / "reports").glob("*.md")])
README_MAX_LINES = 160

_markdown = MarkdownIt("commonmark").enable("table")


def github_slug(heading: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading whose rendered text is `heading`: lower case, characters
    other than letters, digits, `_`, `-` and spaces dropped, spaces turned into `-`; a repeated
    slug gets `-1`, `-2`, ... in order. `seen` counts the slugs of the page so far."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return f"{slug}-{count}" if count else slug


def _inline_text(token) -> str:
    return "".join(child.content for child in token.children or () if child.type in ("text", "code_inline"))


def parse(path: Path) -> tuple[set[str], list[str]]:
    """The anchors of the headings of the Markdown file `path` and the targets of its links and
    images, in order (code blocks and code spans excluded)."""
    tokens = _markdown.parse(path.read_text(encoding="utf-8"))
    anchors, targets, seen = set(), [], {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            anchors.add(github_slug(_inline_text(tokens[i + 1]), seen))
        for child in token.children or ():
            if child.type == "link_open":
                targets.append(child.attrs["href"])
            elif child.type == "image":
                targets.append(child.attrs["src"])
    return anchors, targets


def _shown(file: Path) -> str:
    return str(file.relative_to(REPO)) if file.is_relative_to(REPO) else str(file)


def broken_links(path: Path) -> list[str]:
    """Each relative link of `path` whose file does not exist or whose `#anchor` is no heading
    of its Markdown target, as `target: why`."""
    anchors, targets = parse(path)
    problems = []
    for target in targets:
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # a web address: not checked offline
        file = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not file.exists():
            problems.append(f"{target}: {_shown(file)} does not exist")
        elif parts.fragment:
            if file.suffix != ".md":
                problems.append(f"{target}: an anchor into a file that is not Markdown")
            elif unquote(parts.fragment) not in (anchors if file == path else parse(file)[0]):
                problems.append(f"{target}: no heading with anchor #{parts.fragment} in {_shown(file)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_the_pages_checked_include_docs_and_reports():
    names = {str(p.relative_to(REPO)) for p in PAGES}
    assert {"README.md", "CHANGELOG.md", "docs/tracking.md", "docs/sweeps.md", "experiments/README.md",
            "experiments/reports/blind-sr.md"} <= names


def test_readme_is_short():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move details to a page in docs/"


def test_github_slugs():
    seen = {}
    assert github_slug("Side by side — bench_speed.py --side-by-side --official CHECKOUT", seen) == \
        "side-by-side--bench_speedpy---side-by-side---official-checkout"
    assert github_slug("A kernel prior: method=fkp", seen) == "a-kernel-prior-methodfkp"
    assert github_slug("Bird: the bicubic phase that never ends", seen) == "bird-the-bicubic-phase-that-never-ends"
    assert github_slug("Speed", seen) == "speed"
    assert github_slug("Speed", seen) == "speed-1"


def test_broken_links_are_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n## Here\n\n[ok](other.md#a-section) [ok](#here) [web](https://example.org/x.md)\n"
                    "[missing](nowhere.md) [bad anchor](other.md#no-such-section) [bad](#nowhere)\n\n"
                    "```\n[in code](nowhere_either.md)\n```\n")
    problems = broken_links(page)
    assert [p.split(":")[0] for p in problems] == ["nowhere.md", "other.md#no-such-section", "#nowhere"]
