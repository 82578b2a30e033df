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
import contextlib
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutants import ROOT, scratch_copy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from cosmic_ray.work_db import WorkDB
    from cosmic_ray.work_item import MutationSpec


@dataclass(frozen=True)
class Target:
    """A module to mutate, the fast tests that guard it, and how long one mutant may run."""

    tests: tuple[str, ...]
    #: cosmic-ray's bound per mutant, in seconds: about three times the tests' own time
    #: on the shared machine (a mutant that hangs past it counts as killed).
    timeout: int = 120
    #: Only mutants on these (first, last) line ranges run, when the whole module is too
    #: slow for one sitting; the others are marked skipped and are not counted.
    lines: tuple[tuple[int, int], ...] = ()
    #: Operators (regular expressions) left out of a sample, the same way.
    skip_operators: tuple[str, ...] = ()


#: A documented sample for the big modules: of cosmic-ray's many replacements of one
#: binary or comparison operator, keep the arithmetic swap (+/-, *//) and, for a
#: comparison, its boundary shift and its negation (< to <= and >=, == to !=, is to
#: is not, in to not in ...); the other replacements of the same operator are marked
#: skipped. Every other operator (constants, and/or, not, break, exceptions ...) runs.
SUFFICIENT = (
    "core/ReplaceBinaryOperator_(?!Add_Sub|Sub_Add|Mul_Div|Div_Mul).*",
    "core/ReplaceComparisonOperator_(?!Lt_LtE|Lt_GtE|LtE_Lt|LtE_Gt|Gt_GtE|Gt_LtE|GtE_Gt"
    "|GtE_Lt|Eq_NotEq|NotEq_Eq|Is_IsNot|IsNot_Is|In_NotIn|NotIn_In).*",
)

#: The endpoint's in-process tests (a real server and client over loopback, in front of
#: the sandbox), which guard its routes, wire shapes and middlewares alike.
SERVE_TESTS = (
    "-m 'not browser'",
    "tests/serve/test_openai.py",
    "tests/serve/test_exact.py",
    "tests/serve/test_metrics.py",
)

MODULES: dict[str, Target] = {
    "scraper/errors.py": Target(
        (
            "tests/scraper/test_errors_text.py",
            "tests/faults/test_examined.py::test_a_socks_proxy_whose_target_refuses_is_a_network_error",
        )
    ),
    "provider/prompt.py": Target(
        (
            "tests/provider/test_prompt.py",
            "tests/faults/test_examined.py::test_the_prompt_limit_is_inclusive",
            "tests/faults/test_examined.py::test_a_prompt_of_exactly_the_limit_reaches_the_site",
            "tests/provider/test_chat.py::test_format_prompt_is_the_originals",
            "tests/provider/test_chat.py::test_multi_message_prompt_reaches_the_site",
            "tests/provider/test_chat.py::test_bad_messages_fail_before_any_network_call",
        ),
        timeout=60,
    ),
    "provider/store/files.py": Target(
        (
            "tests/provider/test_store_files.py",
            "tests/scraper/test_lazy_imports.py",
            "tests/provider/test_store.py",
            "tests/faults/test_store_faults.py",
            "tests/faults/test_examined.py::test_a_cold_refresh_makes_the_store_folder_0700_and_its_files_0600",
        ),
        timeout=60,
        skip_operators=SUFFICIENT,
    ),
    "scraper/request.py": Target(
        (
            "tests/faults/test_examined.py",
            "tests/faults/test_limits.py",
            "tests/provider/test_env_proxy.py",
            "tests/scraper/test_translate_scrub.py",
            "tests/scraper/test_request.py",
            "tests/scraper/test_encode_form.py",
        ),
        timeout=30,
    ),
    "scraper/http_translate.py": Target(
        (
            "tests/scraper/test_translate_scrub.py",
            "tests/scraper/test_jar_cookies.py",
            "tests/scraper/test_lazy_imports.py",
            "tests/provider/test_site_status.py",
            "tests/provider/test_proxy_cookies.py",
            "tests/provider/test_callers_own.py",
            "tests/provider/test_pool.py::test_an_untrusted_certificate_names_the_host",
            "tests/faults/test_examined.py",
            "tests/faults/test_faults.py",
        ),
        timeout=60,
    ),
    # A sample: the pool's documented bounds (PoolConfig, the environment's numbers),
    # the send-once rule of a fresh connection, the page limit and the redirects.
    "scraper/http.py": Target(
        (
            "tests/faults/test_limits.py",
            "tests/faults/test_examined.py::test_a_request_failing_on_a_fresh_connection_is_sent_once",
            "tests/faults/test_faults.py::test_huge_page_is_a_bounded_read_then_a_clear_error",
            "tests/faults/test_faults.py::test_redirect_loop_is_a_clear_error",
            "tests/faults/test_faults.py::test_a_redirect_to_another_host_is_a_clear_error_and_nothing_follows",
            "tests/faults/test_faults.py::test_a_redirect_to_a_non_http_address_is_the_sites_error",
            "tests/provider/test_pool.py",
        ),
        timeout=60,
        # Where that code is now; the first session (its .mutation/scraper.http.* and
        # its row) ran at lines 149-203, 560-583, 660-719 of the code before issue 25.
        lines=((157, 209), (596, 617), (700, 764)),
        skip_operators=SUFFICIENT,
    ),
    # A second session of the module (its own key, its own .mutation/scraper.http.pool.*):
    # the pool's rest, issue 25's drain of a body's end and the handover to the next
    # request, and the send path; the first session's lines are left out.
    "scraper/http.py#pool": Target(
        (
            "tests/provider/test_body_end.py",
            "tests/provider/test_pool.py",
            "tests/faults/test_examined.py::test_a_request_failing_on_a_fresh_connection_is_sent_once",
        ),
        timeout=60,
        # The drain's bounds, the pool (handover, finish, aclose, _drain, the loop's
        # close, _pools, _session), a reply's finish and the send path before the loop
        # (handover, cookies, form), _Exchange and _MAX_STALE; left for later:
        # _new_session, _noting_reuse, Client's cookies, the other constants.
        lines=((100, 112), (224, 395), (550, 595), (640, 654)),
        skip_operators=SUFFICIENT,
    ),
    # A sample: the shared command helpers' exit codes and error lines (run, _checked,
    # _fail), the --sandbox modes and the site's name.
    "provider/commands/cli.py": Target(
        (
            "-m 'not browser'",
            "tests/commands/test_commands.py",
            "tests/faults/test_examined.py::test_the_chat_command_interrupted_mid_answer_exits_130",
        ),
        timeout=120,
        lines=((124, 143), (170, 185), (244, 301)),
        skip_operators=SUFFICIENT,
    ),
    # The whole module (with the operator sample), against the chat command's tests.
    "provider/commands/__main__.py": Target(
        (
            "-m 'not browser' -k 'chat or every_door or json'",
            "tests/commands/test_commands.py",
            "tests/commands/test_every_door.py",
            "tests/faults/test_examined.py",
        ),
        timeout=60,
        skip_operators=SUFFICIENT,
    ),
    # The whole module (with the operator sample), against the refresh tests only.
    "provider/commands/refresh.py": Target(
        (
            "-m 'not browser' -k 'refresh or import or export'",
            "tests/commands/test_commands.py",
            "tests/commands/test_every_door.py",
            "tests/commands/test_env_proxy_commands.py",
            "tests/faults/test_examined.py",
        ),
        timeout=60,
        skip_operators=SUFFICIENT,
    ),
    # The whole module (with the operator sample), against the health tests only.
    "provider/commands/health.py": Target(
        (
            "-m 'not browser' -k health",
            "tests/commands/test_commands.py",
            "tests/commands/test_every_door.py",
            "tests/faults/test_examined.py",
        ),
        timeout=60,
        skip_operators=SUFFICIENT,
    ),
    # The server's command (flags, exit codes, the announcement), as a subprocess.
    "provider/commands/serve/_command.py": Target(
        (
            "tests/serve/test_command.py",
            "tests/commands/test_every_door.py",
            "tests/commands/test_env_proxy_commands.py::test_serve_follows_the_environment_and_reports_it",
        ),
        timeout=60,
        skip_operators=SUFFICIENT,
    ),
    # The routes: status codes, error bodies, the stream's order, /health's fields.
    "provider/commands/serve/_routes.py": Target(
        (*SERVE_TESTS, "tests/serve/test_responses.py"),
        timeout=75,
        skip_operators=SUFFICIENT,
    ),
    # /metrics: the families, their labels and the library's counts.
    "provider/commands/serve/_metrics.py": Target(
        (
            "tests/serve/test_metrics.py",
            "tests/faults/test_examined.py::test_metrics_refuse_a_client_without_the_key",
        ),
        timeout=30,
    ),
    # A sample: the application's bearer-key check (/metrics behind it), the loopback
    # rule, make_app and the error and metrics middlewares (not Server / running).
    "provider/commands/serve/_app.py": Target(
        (
            *SERVE_TESTS,
            "tests/faults/test_examined.py::test_metrics_refuse_a_client_without_the_key",
            "tests/serve/test_command.py::test_the_library_refuses_to_build_or_bind_beyond_loopback_without_a_key",
            "tests/serve/test_command.py::test_loopback_addresses",
        ),
        timeout=60,
        lines=((20, 84), (140, 207)),
        skip_operators=SUFFICIENT,
    ),
    # A sample: the wire's error bodies and their statuses (ERROR_STATUS, APIError,
    # _as_api_error) and the request's checks (parse_chat_request and its 400s).
    "provider/commands/serve/_wire.py": Target(
        (*SERVE_TESTS, "tests/serve/test_responses.py"),
        timeout=60,
        lines=((40, 125), (139, 210)),
        skip_operators=SUFFICIENT,
    ),
    # What the handlers share: its defaults and the in-flight gauge.
    "provider/commands/serve/_state.py": Target(
        (
            "-m 'not browser'",
            "tests/serve/test_openai.py",
            "tests/serve/test_metrics.py",
            "tests/serve/test_responses.py",
        ),
        timeout=60,
    ),
    # The Responses API: its refusals (400s naming the parameter), the response object
    # and its stream events in order, the kept conversation.
    "provider/commands/serve/_responses.py": Target(
        ("tests/serve/test_responses.py",),
        timeout=40,
        skip_operators=SUFFICIENT,
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


def session_of(module: str, sessions: Path) -> Path:
    """``scraper/http.py`` → ``scraper.http.sqlite``; a second session of a module,
    keyed ``scraper/http.py#pool``, → ``scraper.http.pool.sqlite``."""
    return sessions / (
        module.replace("/", ".").replace(".py#", ".").removesuffix(".py") + ".sqlite"
    )


def write_config(module: str, target: Target, session: Path) -> Path:
    config = session.with_suffix(".toml")
    config.write_text(
        CONFIG.format(
            module=module.partition("#")[0],
            timeout=target.timeout,
            python=sys.executable,
            tests=" ".join(target.tests),
            excluded=json.dumps(EXCLUDED_OPERATORS),
        ),
        encoding="utf-8",
    )
    return config


def run(module: str, target: Target, tree: Path, sessions: Path) -> None:
    session = session_of(module, sessions)
    config = write_config(module, target, session)
    session.unlink(missing_ok=True)
    session.with_suffix(".before.sqlite").unlink(missing_ok=True)
    session.with_suffix(".sample.sqlite").unlink(missing_ok=True)
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "cosmic-ray", "init", config, session], cwd=tree, check=True)
    subprocess.run([bin_dir / "cr-filter-operators", session, config], cwd=tree, check=True)
    skip_outside(session, target)
    subprocess.run([bin_dir / "cosmic-ray", "exec", config, session], cwd=tree, check=True)
    print(f"mutation: {module}: {score(session, target)}", flush=True)


def _run_again(
    module: str,
    target: Target,
    tree: Path,
    sessions: Path,
    *,
    keep_as: str,
    pick: Callable[[WorkDB], list[str]],
) -> Path:
    """Keep the session as it is (once) under the suffix ``keep_as``, forget the results
    of the mutants ``pick`` chooses, and run those again. Only for a module whose code
    has not changed since (cosmic-ray finds a mutant by its position)."""
    import sqlite3

    from cosmic_ray.work_db import WorkDB, use_db

    session = session_of(module, sessions)
    kept = session.with_suffix(keep_as)
    if not kept.exists():
        shutil.copy2(session, kept)
    config = write_config(module, target, session)
    with use_db(str(session), WorkDB.Mode.open) as db:
        jobs = pick(db)
    with contextlib.closing(sqlite3.connect(session)) as con, con:
        con.executemany("DELETE FROM work_results WHERE job_id = ?", [(j,) for j in jobs])
    print(f"mutation: {module}: {len(jobs)} mutants to run again", flush=True)
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "cosmic-ray", "exec", config, session], cwd=tree, check=True)
    return kept


def rerun_survivors(module: str, target: Target, tree: Path, sessions: Path) -> None:
    """Run the last session's survivors again, against today's tests; the first run is
    kept as ``MODULE.before.sqlite``."""
    from cosmic_ray.work_item import TestOutcome

    def survivors(db: WorkDB) -> list[str]:
        return [job for job, r in db.results if r.test_outcome == TestOutcome.SURVIVED]

    before = _run_again(module, target, tree, sessions, keep_as=".before.sqlite", pick=survivors)
    print(f"mutation: {module}: before {score(before, target)}", flush=True)
    print(f"mutation: {module}: after  {score(session_of(module, sessions), target)}", flush=True)


def _off_the_lines(m: MutationSpec, target: Target) -> bool:
    line = m.start_pos[0]
    return bool(target.lines) and not any(a <= line <= b for a, b in target.lines)


def _matches(m: MutationSpec, operators: Iterable[str]) -> bool:
    return any(re.fullmatch(op, m.operator_name) for op in operators)


def skip_outside(session: Path, target: Target) -> None:
    """Mark skipped every pending mutant outside the target's sample (its line ranges,
    its operators): a documented sample, not counted in the score."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    def outside(m: MutationSpec) -> bool:
        return _off_the_lines(m, target) or _matches(m, target.skip_operators)

    with use_db(str(session), WorkDB.Mode.open) as db:
        left_out = [
            item.job_id for item in db.pending_work_items if any(map(outside, item.mutations))
        ]
        db.set_multiple_results(left_out, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))


def run_left_out(module: str, target: Target, tree: Path, sessions: Path) -> None:
    """Run the mutants a kept session's operator sample left out (on its line ranges;
    the ``|`` filter still holds), so the session ends with every operator. The
    session as it was is kept as ``MODULE.sample.sqlite``, for its own score."""
    from cosmic_ray.work_item import WorkerOutcome

    def left_out(db: WorkDB) -> list[str]:
        specs = {item.job_id: item.mutations for item in db.work_items}
        return [
            job
            for job, result in db.results
            # Skipped for the operator sample: neither the `|` filter nor off the lines
            # (with --whole a target has no lines: all but the filter's are run).
            if result.worker_outcome == WorkerOutcome.SKIPPED
            and any(
                not _matches(m, EXCLUDED_OPERATORS) and not _off_the_lines(m, target)
                for m in specs[job]
            )
        ]

    sample = _run_again(module, target, tree, sessions, keep_as=".sample.sqlite", pick=left_out)
    print(f"mutation: {module}: sample    {score(sample, target)}", flush=True)
    print(
        f"mutation: {module}: operators {score(session_of(module, sessions), target)}", flush=True
    )


def resume(module: str, target: Target, tree: Path, sessions: Path) -> None:
    """Run the kept session's pending mutants (after an interrupted run), with the
    target's sample applied to them first."""
    session = session_of(module, sessions)
    config = write_config(module, target, session)
    skip_outside(session, target)
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "cosmic-ray", "exec", config, session], cwd=tree, check=True)
    print(f"mutation: {module}: {score(session, target)}", flush=True)


def score(session: Path, target: Target) -> str:
    """Survivors among the mutants that ran, and why the others did not run. (``cr-rate``
    counts a skipped mutant, one filtered out or outside a sample, as killed; it is not
    counted here.)"""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome

    with use_db(str(session), WorkDB.Mode.open) as db:
        specs = {item.job_id: item.mutations[0] for item in db.work_items}
        outcomes = {job: result.test_outcome for job, result in db.results}
    ran = [o for o in outcomes.values() if o is not None]
    survived = sum(o == TestOutcome.SURVIVED for o in ran)
    killed = len(ran) - survived
    rate = 100 * killed / len(ran) if ran else 0.0
    why = {"`|` filtered": 0, "off the lines": 0, "left out by the operator sample": 0}
    pending = 0
    for job, spec in specs.items():
        if outcomes.get(job) is not None:
            continue
        if job not in outcomes:
            pending += 1
        elif _matches(spec, EXCLUDED_OPERATORS):
            why["`|` filtered"] += 1
        elif _off_the_lines(spec, target):
            why["off the lines"] += 1
        else:
            why["left out by the operator sample"] += 1
    if pending:
        why["not yet run"] = pending
    reasons = ", ".join(f"{n} {reason}" for reason, n in why.items() if n)
    return (
        f"{killed} of {len(ran)} killed ({rate:.1f} %), {survived} survived; "
        f"{len(specs) - len(ran)} of {len(specs)} not run ({reasons or 'none'})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/mutation", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="modules naming this")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    parser.add_argument("--score", action="store_true", help="print the kept sessions' scores")
    # What to run: one of these, or (none given) a fresh session.
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument(
        "--resume",
        action="store_const",
        dest="step",
        const=resume,
        help="run the kept sessions' pending mutants",
    )
    steps.add_argument(
        "--left-out",
        action="store_const",
        dest="step",
        const=run_left_out,
        help="run the mutants the kept sessions' operator sample left out",
    )
    steps.add_argument(
        "--survivors",
        action="store_const",
        dest="step",
        const=rerun_survivors,
        help="run only the kept sessions' survivors again (after new tests)",
    )
    parser.add_argument(
        "--whole",
        action="store_true",
        help="ignore the modules' line samples (with --left-out: run the mutants off them too)",
    )
    args = parser.parse_args()
    # A second session's key (``scraper/http.py#pool``) is chosen only by a name that
    # says its ``#`` part: rerunning the first session must not also rerun the second.
    chosen = {
        m: t
        for m, t in MODULES.items()
        if not args.only or any(o in m and ("#" in o or "#" not in m) for o in args.only)
    }
    if args.list or not chosen:
        for module, target in MODULES.items():
            print(f"{module:32} {' '.join(target.tests)}")
        return 0 if chosen else 2
    sessions = ROOT / ".mutation"
    sessions.mkdir(exist_ok=True)  # a fresh clone has none (it is git-ignored)
    if args.score:
        for module, target in chosen.items():
            session = session_of(module, sessions)
            before = session.with_suffix(".before.sqlite")
            if before.exists():
                print(f"mutation: {module}: before {score(before, target)}")
            sample = session.with_suffix(".sample.sqlite")
            if sample.exists():
                print(f"mutation: {module}: sample {score(sample, target)}")
            if session.exists():
                after = "after  " if before.exists() else ""
                print(f"mutation: {module}: {after}{score(session, target)}")
        return 0
    tree = scratch_copy()
    try:
        for module, target in chosen.items():
            if args.whole:
                target = dataclasses.replace(target, lines=())
            (args.step or run)(module, target, tree, sessions)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    print(f"mutation: sessions in {sessions}; survivors: cr-report --show-pending SESSION")
    return 0


if __name__ == "__main__":
    sys.exit(main())
