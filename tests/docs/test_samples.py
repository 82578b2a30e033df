"""Every Python sample in README.md and docs/*.md runs, against the sandbox, so none
can rot; the README's two commands are what the scripts really run; its links hold.

How a sample runs: in a fresh Python process, with a fresh sandbox (aipkit) and its
own credential store (``PROVIDER_CACHE_DIR``). Two things point it at the sandbox,
both here, neither in what the reader sees:

- a prelude sets ``provider.ChatgptFree.url`` (the library's default, the real site)
  to the sandbox before the sample's own code runs;
- the addresses a sample writes out (``ADDRESSES``) are replaced by the suite's.

An HTML comment right before a block (invisible on GitHub and on the site) says
more; a block without one simply runs and must exit 0:

- ``<!-- sample: expect "TEXT" "MORE" -->``: its output must contain each text
  (a sample that prints must say what);
- ``serve``: ``provider.serve`` runs in front of the sandbox, with the key
  ``change-me``, at the address the sample names;
- ``browser``: it drives Chromium (a browser test's timeout);
- ``skip, <reason>``: not run, for the reason given.

Every ``python`` block is collected, so a new sample is run unless marked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

import sandbox
from provider import serve
from tests import procs
from tests.conftest import provider_for

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Runs the sample read from stdin as ``__main__``, the library pointed at the sandbox.
PRELUDE = (
    "import os, provider\n"
    "provider.ChatgptFree.url = os.environ['SAMPLE_SITE']\n"
    "exec(compile(open(0).read(), os.environ['SAMPLE_NAME'], 'exec'), {'__name__': '__main__'})\n"
)
#: The key the OpenAI client sample sends.
SERVE_KEY = "change-me"
MARK = re.compile(r"<!--\s*sample:\s*(.*?)\s*-->")
#: An opening fence: its indent, and its language (the first word after the backticks).
FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    mark: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def words(self) -> list[str]:
        """The marker's flags (``serve``, ``browser``, ``skip``), without texts and reasons."""
        bare = re.sub(r'"[^"]*"', "", self.mark).strip()
        if bare.startswith("skip"):
            return ["skip"]  # the rest is its reason, commas and all
        return [w.split(None, 1)[0] for w in bare.split(",") if w.strip()]

    @property
    def expected(self) -> list[str]:
        return re.findall(r'"([^"]*)"', self.mark)


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, each with the marker on the line right before it."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang = opening.groups()
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :])
            i += 1
        start = i - len(body)
        before = lines[start - 2] if start >= 2 else ""
        marked = MARK.search(before)
        found.append(Block(page, start, lang, "\n".join(body) + "\n", marked[1] if marked else ""))
        i += 1
    return found


SAMPLES = [b for page in PAGES for b in blocks(page) if b.lang == "python"]


#: Fences that are not Python: shell, the CI workflow, the flow diagram, and plain
#: text (diagrams, the benchmark table). Python spelt otherwise (``py``) would escape.
NOT_PYTHON = {"bash", "yaml", "mermaid", ""}


def test_every_python_sample_is_collected_and_marked_clearly() -> None:
    # The collection is not empty by mistake, no Python hides under another fence
    # name, and a marker is never a typo that silently means "run, check nothing".
    others = [b for page in PAGES for b in blocks(page) if b.lang != "python"]
    assert [b.name for b in others if b.lang not in NOT_PYTHON] == []
    assert len(SAMPLES) >= 7, [s.name for s in SAMPLES]
    for sample in SAMPLES:
        unknown = set(sample.words) - {"expect", "serve", "browser", "skip"}
        assert not unknown, f"{sample.name}: unknown marker {unknown}"
        if "skip" in sample.words:
            reason = sample.mark.split(",", 1)[1].strip() if "," in sample.mark else ""
            assert reason, f"{sample.name}: a skipped sample says why"
        elif "print(" in sample.code:
            assert sample.expected, f"{sample.name} prints: say what (expect)"


def _params() -> list[object]:
    params: list[object] = []
    for sample in SAMPLES:
        marks: list[pytest.MarkDecorator] = []
        if "browser" in sample.words:
            marks.append(pytest.mark.browser)
        if "skip" in sample.words:
            marks.append(pytest.mark.skip(reason=sample.mark))
        params.append(pytest.param(sample, id=sample.name, marks=marks))
    return params


@pytest.mark.parametrize("sample", _params())
async def test_the_sample_runs_against_the_sandbox(sample: Block, tmp_path: Path) -> None:
    async with (
        sandbox.running(generation="aipkit") as site,
        _server(sample, site, tmp_path) as server_url,
    ):
        #: Addresses the samples write out, and where the suite points them.
        addresses = {"https://example.org": site.url, "http://127.0.0.1:1337": server_url}
        code = sample.code
        for written, actual in addresses.items():
            code = code.replace(written, actual)
        env = {
            **os.environ,
            "SAMPLE_SITE": site.url,
            "SAMPLE_NAME": sample.name,
            "PROVIDER_CACHE_DIR": str(tmp_path / "cache"),
        }
        timeout = 150 if "browser" in sample.words else 50
        result = await procs.run(
            sys.executable, "-c", PRELUDE, stdin=code, env=env, timeout=timeout
        )
    assert result.code == 0, f"{sample.name} failed:\n{result.err}"
    for text in sample.expected:
        assert text in result.out, f"{sample.name}: {text!r} not in its output {result.out!r}"


@contextlib.asynccontextmanager
async def _server(sample: Block, site: sandbox.Site, tmp_path: Path) -> AsyncIterator[str]:
    """``provider.serve`` in front of the sandbox for a ``serve`` sample: its address."""
    if "serve" not in sample.words:
        yield "http://127.0.0.1:9"  # discard: a sample that is not marked reaches nothing
        return
    provider = provider_for(site.url, tmp_path / "server-cache", browser="never")
    async with serve.running(provider, api_key=SERVE_KEY, timeout=30) as server:
        yield server.url


# --------------------------------------------------------------------------- the two commands


def _commands(block: Block) -> list[str]:
    return [line for line in block.code.splitlines() if line and not line.startswith("#")]


TOP = [
    'bash scripts/setup && .venv/bin/python -m provider --sandbox "Hello there"',
    "bash scripts/test",
]


@pytest.mark.parametrize("page", ["README.md", "docs/install.md"])
def test_the_two_commands_are_the_first_block(page: str) -> None:
    first = next(b for b in blocks(ROOT / page) if b.lang)
    assert (first.lang, _commands(first)) == ("bash", TOP)


def test_ci_runs_exactly_the_test_command_first() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    steps = [line for line in ci if line and not line.startswith(("#", "set ", "cd "))]
    assert steps[0] == TOP[1], steps


def test_the_test_command_runs_the_checks_the_readme_names() -> None:
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    for check in (
        'ruff" check',
        'ruff" format --check',
        "mypy",
        "lint-imports",
        'mkdocs" build --strict',
        "pytest -q tests/soak",
    ):
        assert check in script, check


async def test_the_first_command_chats_with_the_sandbox(tmp_path: Path) -> None:
    # What follows scripts/setup, with this interpreter (the one setup made).
    argv = shlex.split(TOP[0].split("&&")[1])
    assert argv[:3] == [".venv/bin/python", "-m", "provider"]
    env = {**os.environ, "PROVIDER_CACHE_DIR": str(tmp_path)}
    result = await procs.run(sys.executable, *argv[1:], env=env, timeout=60)
    assert (result.code, result.out.strip()) == (0, "You said: Hello there"), result.err


# --------------------------------------------------------------------------- the README's links


def test_the_readmes_links_reach_files_and_headings() -> None:
    # docs/ is checked by `mkdocs build --strict`; the README is not part of the site.
    readme = ROOT / "README.md"
    links = re.findall(r"\]\(([^)\s]+)\)", readme.read_text(encoding="utf-8"))
    assert links
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        path, _, anchor = link.partition("#")
        target = (readme.parent / path) if path else readme
        assert target.exists(), f"README links to {link}: no such file"
        if anchor:
            assert anchor in _anchors(target), f"README links to {link}: no such heading"


def _anchors(page: Path) -> set[str]:
    """The headings' anchors, as Python-Markdown's toc (MkDocs) and GitHub make them."""
    fence = False
    found: set[str] = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence and (heading := re.match(r"#+ (.*)", line)):
            found.add(slugify(heading[1], "-"))
    return found


# --------------------------------------------------------------------------- the commands shown


OURS = {"provider", "sandbox", "bench"}


def _shown_commands() -> dict[str, set[str]]:
    """``{module: options}`` of every ``python -m`` line in the shell and CI blocks."""
    shown: dict[str, set[str]] = {}
    for page in PAGES:
        for block in blocks(page):
            if block.lang not in ("bash", "yaml"):
                continue
            for line in block.code.splitlines():
                command = line.split(" #", 1)[0]
                for module, rest in re.findall(r"python -m ([\w.]+)([^|&;]*)", command):
                    if module.split(".")[0] not in OURS:
                        continue  # another tool's (Playwright's installer in the CI sample)
                    shown.setdefault(module, set()).update(re.findall(r"\s(--[\w-]+)", rest))
    return shown


async def test_every_command_shown_exists_with_the_options_shown() -> None:
    # The shell lines are not run (they need a real site, a proxy, a fleet), but a
    # renamed module or option would leave them wrong: each must be in its --help.
    shown = _shown_commands()
    assert {"provider", "provider.refresh", "provider.health", "provider.serve"} <= set(shown)
    for module, options in sorted(shown.items()):
        result = await procs.run(sys.executable, "-m", module, "--help", timeout=60)
        assert result.code == 0, f"python -m {module} --help: {result.err}"
        missing = sorted(o for o in options if o not in result.out)
        assert not missing, f"python -m {module}: {missing} not in its --help"
