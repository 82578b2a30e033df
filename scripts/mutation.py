"""The mutation tool's run: cosmic-ray over the modules that hold the manual's promises.

Run it as ``bash scripts/mutation`` (``--only NAME`` for some modules, ``--list``).
It need not run in CI (minutes per module on two cores); ``bash scripts/mutants``,
the kept hand-written mutants, does.

cosmic-ray mutates files where they lie, so the tree is copied to a scratch folder
first (``scripts/mutants.scratch_copy``: tracked and untracked files); there, per
module, it writes a config naming the module and the fast test files that guard it
(only those run per mutant: the whole suite per mutant would take days), builds
the session (``cosmic-ray init``), runs it (``cosmic-ray exec``) and prints the
score (``cr-rate``: the survival rate) and the survivors (``cr-report``).
Sessions are kept in ``.mutation/`` (git-ignored) for ``cr-report`` afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutants import ROOT, scratch_copy

#: module -> the fast test files that guard it (loopback only, no browser).
MODULES: dict[str, tuple[str, ...]] = {
    "scraper/errors.py": (
        "tests/scraper/test_errors_text.py",
        "tests/faults/test_examined.py::test_a_socks_proxy_whose_target_refuses_is_a_network_error",
    ),
    "provider/prompt.py": (
        "tests/faults/test_examined.py::test_the_prompt_limit_is_inclusive",
        "tests/faults/test_examined.py::test_a_prompt_of_exactly_the_limit_reaches_the_site",
        "tests/provider/test_chat.py::test_format_prompt_is_the_originals",
        "tests/provider/test_chat.py::test_multi_message_prompt_reaches_the_site",
        "tests/provider/test_chat.py::test_bad_messages_fail_before_any_network_call",
    ),
    "provider/store/files.py": (
        "tests/provider/test_store.py",
        "tests/provider/test_store_files.py",
        "tests/faults/test_store_faults.py",
    ),
    "scraper/request.py": ("tests/faults/test_examined.py", "tests/faults/test_limits.py"),
    "scraper/http_translate.py": ("tests/faults/test_examined.py", "tests/faults/test_faults.py"),
    "scraper/http.py": ("tests/faults/test_limits.py", "tests/provider/test_pool.py"),
    "provider/commands/health.py": (
        "tests/faults/test_examined.py",
        "tests/commands/test_commands.py",
    ),
}

#: ``|`` is used only in types here: annotations (never evaluated, under
#: ``from __future__ import annotations``: every replacement is equivalent) and
#: isinstance unions (where any other operator raises TypeError at once).
EXCLUDED_OPERATORS = ["core/ReplaceBinaryOperator_BitOr_.*"]

CONFIG = """\
[cosmic-ray]
module-path = "{module}"
timeout = {timeout}
excluded-modules = []
test-command = "{python} -m pytest -x -q -p no:cacheprovider -o timeout=60 {tests}"

[cosmic-ray.distributor]
name = "local"

[cosmic-ray.filters.operators-filter]
exclude-operators = {excluded}
"""


def run(module: str, tests: tuple[str, ...], tree: Path, sessions: Path) -> None:
    name = module.replace("/", ".").removesuffix(".py")
    config = sessions / f"{name}.toml"
    session = sessions / f"{name}.sqlite"
    config.write_text(
        CONFIG.format(
            module=module,
            timeout=180,
            python=sys.executable,
            tests=" ".join(tests),
            excluded=json.dumps(EXCLUDED_OPERATORS),
        ),
        encoding="utf-8",
    )
    session.unlink(missing_ok=True)
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "cosmic-ray", "init", config, session], cwd=tree, check=True)
    subprocess.run([bin_dir / "cr-filter-operators", session, config], cwd=tree, check=True)
    subprocess.run([bin_dir / "cosmic-ray", "exec", config, session], cwd=tree, check=True)
    rate = subprocess.run(
        [bin_dir / "cr-rate", session], cwd=tree, capture_output=True, text=True
    ).stdout.strip()
    print(f"mutation: {module}: survival rate {rate} %", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/mutation", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="modules naming this")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    args = parser.parse_args()
    chosen = {m: t for m, t in MODULES.items() if not args.only or any(o in m for o in args.only)}
    if args.list or not chosen:
        for module, tests in MODULES.items():
            print(f"{module:32} {' '.join(tests)}")
        return 0 if chosen else 2
    sessions = ROOT / ".mutation"
    sessions.mkdir(exist_ok=True)
    tree = scratch_copy()
    try:
        for module, tests in chosen.items():
            run(module, tests, tree, sessions)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    print(f"mutation: sessions in {sessions}; survivors: cr-report --show-pending SESSION")
    return 0


if __name__ == "__main__":
    sys.exit(main())
