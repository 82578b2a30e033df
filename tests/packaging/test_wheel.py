"""The package as users get it: the wheel built from the tracked tree, installed
with its runtime dependencies alone (requirements/runtime.txt, no test extras)
into a clean venv outside the checkout.

What it proves: every module and the ``py.typed`` markers are in the wheel, the
console scripts are declared, the wheel's declared dependencies are enough for
the commands to run (``chatgptfree --sandbox``, ``python -m provider.refresh
--sandbox``), and a user's type checker reads the package's types.

Slow for a test (about 30-60 s, mostly pip), so it is built once per module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import procs

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("provider", "scraper", "sandbox")

pytestmark = pytest.mark.timeout(600)


def _env(**extra: str) -> dict[str, str]:
    """This machine's environment without what would reach into the checkout or a proxy."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith(("PYTHON", "VIRTUAL_ENV"))
    }
    return {**env, **extra}


def _run(argv: list[str], cwd: Path, timeout: float = 300, **extra: str) -> procs.Result:
    proc = procs.popen(
        argv,
        cwd=cwd,
        env=_env(**extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{' '.join(argv[:4])}… did not end within {timeout} s") from None
    finally:
        procs.stop([proc])
    return procs.Result(proc.returncode, out, err)


def _ok(result: procs.Result, what: str) -> procs.Result:
    assert result.code == 0, f"{what} failed ({result.code}):\n{result.out}\n{result.err}"
    return result


@dataclass
class Installed:
    wheel: Path
    venv: Path
    work: Path  # a folder outside the checkout, for running the commands

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _tracked_tree(dest: Path) -> None:
    """The files git tracks (and new ones it does not ignore), as a release builds them."""
    listed = _ok(
        _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT),
        "git ls-files",
    ).out
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    tree, dist, venv, work = base / "tree", base / "dist", base / "venv", base / "work"
    for folder in (tree, dist, work):
        folder.mkdir()
    _tracked_tree(tree)
    # No build isolation: the build uses the locked setuptools of the test venv.
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _ok(
        _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), "."], tree),
        "building the wheel",
    )
    (wheel,) = dist.glob("chatgptfree_provider-*.whl")
    _ok(_run([sys.executable, "-m", "venv", str(venv)], base), "making the clean venv")
    vpip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    runtime = str(ROOT / "requirements" / "runtime.txt")
    _ok(
        _run([*vpip, "install", "-q", "--require-hashes", "--no-deps", "-r", runtime], base),
        "installing requirements/runtime.txt",
    )
    _ok(_run([*vpip, "install", "-q", "--no-deps", str(wheel)], base), "installing the wheel")
    return Installed(wheel, venv, work)


def test_the_wheel_ships_every_module_the_types_and_the_commands(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = whl.read(entry_points).decode()
    for package in PACKAGES:
        assert f"{package}/py.typed" in names, f"{package}/py.typed is not in the wheel"
    modules = {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules - names == set(), "modules missing from the wheel"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in declared.items():
        assert f"{name} = {target}" in scripts, f"console script {name} is not in the wheel"


def test_the_runtime_dependencies_alone_are_consistent_and_lack_the_test_tools(
    installed: Installed,
) -> None:
    python = installed.bin("python")
    _ok(_run([python, "-m", "pip", "check"], installed.work), "pip check")
    where = _ok(
        _run([python, "-c", "import provider; print(provider.__file__)"], installed.work),
        "import provider",
    )
    assert where.out.strip().startswith(str(installed.venv)), where.out
    for test_tool in ("pytest", "trustme", "g4f"):
        missing = _run([python, "-c", f"import {test_tool}"], installed.work)
        assert missing.code != 0, f"{test_tool} is installed: the venv is not clean"


def test_the_chat_command_answers_through_the_bundled_sandbox(installed: Installed) -> None:
    result = _ok(
        _run(
            [installed.bin("chatgptfree"), "--sandbox", "hi from the wheel"],
            installed.work,
            timeout=120,
            PROVIDER_CACHE_DIR=str(installed.work / "cache"),
        ),
        "chatgptfree --sandbox",
    )
    assert "You said: hi from the wheel" in result.out


def test_the_refresh_command_warms_the_sandbox(installed: Installed) -> None:
    result = _ok(
        _run(
            [installed.bin("python"), "-m", "provider.refresh", "--sandbox", "--json"],
            installed.work,
            timeout=120,
            PROVIDER_CACHE_DIR=str(installed.work / "cache"),
        ),
        "python -m provider.refresh --sandbox",
    )
    assert '"nonce"' not in result.out  # the report never carries the secret itself
    assert result.json()


def test_a_users_type_checker_reads_the_package_types(installed: Installed) -> None:
    user = installed.work / "user_code.py"
    user.write_text("from provider import ChatgptFree\nwrong: int = ChatgptFree.default_model\n")
    mypy = [sys.executable, "-m", "mypy", "--no-incremental", "--strict"]
    result = _run(
        [*mypy, "--python-executable", installed.bin("python"), str(user)], installed.work
    )
    # Without py.typed mypy would skip the package ("missing library stubs or py.typed
    # marker"); with it, it sees that default_model is a str.
    assert "py.typed" not in result.out, result.out
    assert 'expression has type "str", variable has type "int"' in result.out, result.out
