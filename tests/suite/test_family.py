"""Every sound 0024 approved, every broken one caught: a family of 0024s written otherwise than ours, and mutants.

tests/suite/family/variants.py generates 0024 along every dimension the report leaves open (key types, the
types of job_id and sync_id, the policies' shape and roles, the unit of elapsed time, the counter model, how
updated_at is set, what is audited, who stamps completed_at, trigger names and order, the partition scheme,
column names); it was written from the report alone, by another hand. Every variant must be APPROVED.

A mutant breaks one requirement of the ledger (readiness/schema/ledger.toml) in a variant, as another engineer's
slip would. Each must be caught: a check enforcing that requirement FAILS in the task that enforces it, and
the run is NOT APPROVED. Mutants that touch different things share one nested run (each check names its
requirement in signoff.json, so one run shows each caught); the requirements a migration cannot break (the
prerequisites, the server, sessions in the way) are proven by the suite tests COVERED_ELSEWHERE names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.acting.access import ANON, OTHER
from readiness.schema import ledger
from readiness.schema.files import DEFAULT_MIGRATION, DEFAULT_ROLLBACK
from tests.suite.family import variants
from tests.suite.family.mutants import COVERED_ELSEWHERE, LEAK_BASES, LEAK_CONDITIONS, MUTANTS, leaks
from tests.suite.helpers import ReadinessRun

pytestmark = pytest.mark.suite


def columns_file(tmp_path: Path, name: str) -> Path:
    """The --columns file naming the variant's counters, elapsed time, speed and status."""
    path = tmp_path / f"{name}-columns.toml"
    path.write_text("".join(f"[{table}]\n" + "".join(f'{role} = "{column}"\n' for role, column in roles.items())
                            for table, roles in variants.COLUMNS[name].items()))  # fmt: skip
    return path


def run_variant(readiness_run, tmp_path: Path, name: str, migration: str, rollback: str) -> ReadinessRun:  # type: ignore[no-untyped-def]
    return readiness_run(migration, f"--columns={columns_file(tmp_path, name)}", rollback_text=rollback)


@pytest.mark.parametrize("name", sorted(variants.FAMILY))
def test_sound_variant_is_approved(readiness_run, tmp_path: Path, name: str) -> None:
    """A sound 0024 written otherwise than ours is APPROVED, every task PASS; where it chose otherwise than our
    design, the sign-off lists the difference and blocks nothing."""
    choices = variants.FAMILY[name]
    run = run_variant(readiness_run, tmp_path, name, variants.migration(choices), variants.rollback(choices))
    assert (run.exit_code, run.signoff.get("verdict")) == (0, "APPROVED"), [
        (i["message"][:300], i["location"]) for i in run.signoff.get("blocking_issues", [])
    ] or run.output[-3000:]
    assert set(run.statuses().values()) == {"PASS"}, run.statuses()
    differs = {check["requirement"] for check in run.signoff["checks"] if check["status"] == "differs"}
    assert differs and {ledger.get(r).source for r in differs} == {"design"}, differs
    assert run.signoff["design_differences"], "a variant unlike ours lists its differences from our design"
    cells = {(row["table"], c["command"], c["actor"]): c for row in run.signoff["access_matrix"]["rows"]
             for c in row["cells"]}  # fmt: skip
    wrong = {key: (cell["observed"], cell["checks"]) for key, cell in cells.items() if not cell["as_expected"]}
    assert wrong == {}, wrong
    assert len([key for key in cells if key[0] == "sync_progress"]) == 19, sorted(cells)  # all but service_role INSERT


def test_every_blocking_requirement_has_a_mutant_or_a_suite_test() -> None:
    """Each report and rule requirement of the ledger is broken by a mutant here, or by a named suite test."""
    mutated = {
        requirement for _, group in MUTANTS.values() for mutant in group for requirement, _, _ in mutant.expected()
    }
    blocking = {r.id for r in ledger.requirements().values() if r.blocks}
    assert blocking - mutated - set(COVERED_ELSEWHERE) == set(), "requirements no mutant breaks"
    here = Path(__file__).parent.parent.parent
    for requirement, nodeid in COVERED_ELSEWHERE.items():
        path, name = nodeid.split("::")
        assert f"def {name}(" in (here / path).read_text(), f"{requirement}: {nodeid} does not exist"


@pytest.mark.parametrize("group", sorted(MUTANTS))
def test_mutants_are_caught_by_their_task(readiness_run, tmp_path: Path, group: str) -> None:
    """Each mutant of the group is NOT APPROVED: a check of the requirement it breaks fails, in the task that
    enforces it, and every blocking issue names the requirement it comes from."""
    name, mutants = MUTANTS[group]
    migration, rollback = variants.migration(variants.FAMILY[name]), variants.rollback(variants.FAMILY[name])
    for mutant in mutants:
        migration, rollback = mutant.applied(migration, rollback)
    run = run_variant(readiness_run, tmp_path, name, migration, rollback)
    assert (run.exit_code, run.signoff.get("verdict")) == (1, "NOT APPROVED"), run.output[-3000:]
    failed = {(c["nodeid"].split("::")[0], c["nodeid"].split("::")[1].split("[")[0], c["requirement"])
              for c in run.signoff["checks"] if c["status"] == "failed"}  # fmt: skip
    missed = [
        f"{wanted} ({name}, task {task})"
        for m in mutants
        for wanted, name, task in m.expected()
        if not any(
            check == name and requirement == wanted and f"test_0{task}_" in module
            for module, check, requirement in failed
        )  # fmt: skip
    ]
    assert missed == [], f"mutants not caught: {missed}; failed checks: {sorted(failed)}"
    issues = run.signoff["blocking_issues"]
    assert issues and all(issue["requirement"] and issue["requirement"]["source"] in ("report", "rule")
                          for issue in issues), issues  # fmt: skip


@pytest.mark.parametrize("kind", sorted(LEAK_CONDITIONS))
def test_row_dependent_leaks_are_caught_by_task_2(readiness_run, tmp_path: Path, kind: str) -> None:
    """Each of the 12 policies widened by `OR <a condition on the row>` (an enum label other than the first, a NULL,
    a time; a different condition for each command of a table) is caught by task 2 twice: its structure names the
    policy and who it lets reach which rows, and a user of another organisation (anon too, for a policy TO public)
    is seen reaching those rows, in the access matrix."""
    base = LEAK_BASES[kind]
    if base is None:
        migration, rollback, extra = DEFAULT_MIGRATION.read_text(), DEFAULT_ROLLBACK.read_text(), []
    else:
        choices = variants.FAMILY[base]
        migration, rollback = variants.migration(choices), variants.rollback(choices)
        extra = [f"--columns={columns_file(tmp_path, base)}"]
    text, made = leaks(kind, migration)
    run = readiness_run(text, "tests/test_02_rls.py", *extra, rollback_text=rollback)
    assert (run.exit_code, run.signoff.get("verdict"), run.statuses().get(2)) == (1, "NOT APPROVED", "FAIL"), (
        run.output[-3000:]
    )
    said = " ".join(issue["message"] for issue in run.signoff["blocking_issues"])
    unnamed = [f"{policy} OR {condition}" for _, _, policy, condition in made if f"{policy} lets " not in said]
    assert unnamed == [], f"leaks the structure does not name: {unnamed}; issues: {said[:3000]}"
    cells = {(row["table"], c["command"], c["actor"]): c for row in run.signoff["access_matrix"]["rows"]
             for c in row["cells"]}  # fmt: skip
    unseen = [f"{table} {command} ({condition})" for table, command, _, condition in made
              if not any(cells.get((table, command, actor), {}).get("leak") for actor in (OTHER, ANON))]  # fmt: skip
    assert unseen == [], f"leaks no behaviour check saw: {unseen}"


def test_undetectable_role_blocks_until_configured(readiness_run, tmp_path: Path) -> None:
    """The variant's counters are found by their names (done, errored, duration_s, throughput); a total no rule can
    find (named goal) blocks the checks that need it, saying where to set it; named in a --columns file, the same
    migration is APPROVED."""
    choices = variants.FAMILY["subquery_identity"]
    renamed = variants.migration(choices).replace("expected", "goal")
    blocked = readiness_run(renamed, rollback_text=variants.rollback(choices))
    assert blocked.signoff.get("verdict") == "NOT APPROVED", blocked.output[-3000:]
    assert blocked.statuses()[4] == "BLOCKED", blocked.statuses()
    roles = blocked.signoff["environment"]["column roles of sync_progress"]
    unresolved = 'total: UNRESOLVED (no column fits; set it in the --columns file: [sync_progress] total = "<column>")'
    assert unresolved in roles, roles
    for role, column in (("processed", "done"), ("failed", "errored"), ("elapsed", "duration_s"),
                         ("speed", "throughput"), ("status", "state")):  # fmt: skip
        assert f"{role}: {column} (detected)" in roles, roles
    assert "column role sync_progress.total" in blocked.task(4)["comments"], blocked.task(4)

    columns = tmp_path / "columns.toml"
    columns.write_text('[sync_progress]\ntotal = "goal"\n')
    configured = readiness_run(renamed, f"--columns={columns}", rollback_text=variants.rollback(choices))
    assert (configured.exit_code, configured.signoff.get("verdict")) == (0, "APPROVED"), configured.output[-3000:]
    assert "total: goal (configured)" in configured.signoff["environment"]["column roles of sync_progress"]


def test_columns_file_naming_no_role_is_a_usage_error(readiness_run, tmp_path: Path) -> None:
    """A --columns file with a role the suite does not know stops the run (exit 4), listing the roles."""
    columns = tmp_path / "columns.toml"
    columns.write_text('[sync_progress]\ntotals = "expected"\n')
    run = readiness_run(None, f"--columns={columns}")
    assert run.exit_code == 4, run.output[-3000:]
    assert "[sync_progress] totals = 'expected' is not a column role" in run.output
    assert "sync_progress.total" in run.output
