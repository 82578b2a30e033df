"""The docs pages render on the site as they do on GitHub.

GitHub nests a block in a list item at the item's text indent (2 spaces after
``- ``); Python-Markdown, which MkDocs uses, needs 4 spaces, and a new item after
such a block needs a blank line, else the block (a code sample, a table) and the
items after it fall out of the list. ``mkdocs build --strict`` does not see this;
what it does see (a link to a page or heading that is not there) is checked too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_blocks_in_list_items_are_indented_as_python_markdown_reads_them(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    wrong: list[str] = []
    fence = False
    in_item = nested = False
    for number, line in enumerate(lines, 1):
        opens_fence = line.lstrip().startswith("```")
        if not fence and re.match(r"(- |\d+\. )", line):
            if nested and lines[number - 2].strip():
                wrong.append(
                    f"{number}: a blank line before this item (the last one nests a block)"
                )
            in_item, nested = True, False
        elif not fence and line.strip() and not line.startswith(" "):
            in_item = nested = False
        elif in_item and not fence and line.strip() and not lines[number - 2].strip():
            nested = True
            if not line.startswith("    "):
                wrong.append(f"{number}: indent this nested block by 4 spaces, not 2")
        if opens_fence:
            fence = not fence
    assert not wrong, f"{page.name}:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("planted", "complaint"),
    [
        ("", None),
        ("[a heading gone](store.md#fleets)", "does not contain an anchor '#fleets'"),
        ("[a page gone](fleet.md)", "'fleet.md', but the target is not found"),
        ("[outside the docs](../bench/README.md)", "target is not found"),
    ],
    ids=["as-is", "broken-anchor", "missing-page", "outside-docs"],
)
def test_the_strict_build_fails_on_a_broken_link(
    tmp_path: Path, planted: str, complaint: str | None
) -> None:
    # A copy of the manual, one bad link planted in a page: the build in
    # scripts/test must refuse it (and build the pages as they are).
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    # The mermaid build the hook serves (installed by scripts/setup), shared, not copied.
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    page = tmp_path / "docs" / "commands.md"
    page.write_text(page.read_text(encoding="utf-8") + f"\n{planted}\n", encoding="utf-8")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", "out"],
        cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if complaint is None:
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "out" / "design" / "index.html").is_file()
    else:
        assert done.returncode == 1, done.stderr
        assert complaint in done.stderr
