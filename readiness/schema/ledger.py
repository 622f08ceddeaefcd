"""The requirement ledger (readiness/schema/ledger.toml): what each readiness check enforces, and where that comes from.

A check names its requirement with @pytest.mark.enforces("<id>"); the requirement travels with the
check's outcome to the sign-off as a value (readiness.verdicts). A failed check of a "report" or
"rule" requirement blocks; a failed "design" check is a difference from our own 0024, listed only.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from readiness import PROJECT_ROOT

LEDGER_FILE = Path(__file__).with_name("ledger.toml")
REPORT, RULE, DESIGN = "report", "rule", "design"
SOURCES = (REPORT, RULE, DESIGN)


@dataclass(frozen=True)
class Requirement:
    """One requirement of the ledger: its id, its source, what it cites and quotes, what it requires."""

    id: str
    source: str
    cites: str
    quote: str
    requires: str
    enforced_by: str = ""  # what enforces it, when no check does

    @property
    def blocks(self) -> bool:
        """Whether a check failing it blocks the sign-off (design differences never do)."""
        return self.source != DESIGN

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "source": self.source, "cites": self.cites, "quote": self.quote}

    def __str__(self) -> str:
        return f"{self.id} ({self.cites})"


@functools.cache
def requirements() -> dict[str, Requirement]:
    """Every requirement of the ledger, by id, in the file's order."""
    data = tomllib.loads(LEDGER_FILE.read_text(encoding="utf-8"))
    found = {}
    for source, entries in data.items():
        for name, entry in entries.items():
            fields = {key: entry[key] for key in ("source", "cites", "quote", "requires")}
            found[f"{source}.{name}"] = Requirement(
                f"{source}.{name}", **fields, enforced_by=entry.get("enforced_by", "")
            )
    return found


def get(requirement_id: str) -> Requirement:
    """The requirement of that id; KeyError names the known ones."""
    try:
        return requirements()[requirement_id]
    except KeyError:
        raise KeyError(f"{requirement_id!r} is not in {LEDGER_FILE.name}; known: {', '.join(requirements())}") from None


def contract_markdown(checks: Iterable[tuple[str, str]]) -> str:
    """docs/contract.md: every requirement, what it cites and requires, and the checks (requirement id, test)
    that enforce it. `checks` are (requirement id, check name) pairs, parametrized checks counted once each."""
    by_requirement: dict[str, dict[str, int]] = {}
    for requirement_id, name in checks:
        function = name.split("[")[0].removeprefix("tests/")
        tests = by_requirement.setdefault(requirement_id, {})
        tests[function] = tests.get(function, 0) + 1
    lines = [
        "# The contract: what the gate requires of migration 0024, and which checks enforce it",
        "",
        "Generated from `readiness/schema/ledger.toml` and the readiness checks (`make contract`); a suite test keeps "
        "it",
        "current. A failed check of a **report** or **rule** requirement blocks the sign-off; a failed **design**",
        'check is listed under "Differences from the project\'s design" and never blocks. Review it against the',
        "report (`../shared/seeds/migration-0024-readiness-report.md`) line by line.",
        "",
    ]
    headings = {REPORT: "What the report requires", RULE: "The gate's own rules", DESIGN: "Our own 0024's design"}
    for source in SOURCES:
        lines += [f"## {headings[source]}", ""]
        for requirement in (r for r in requirements().values() if r.source == source):
            tests = by_requirement.get(requirement.id, {})
            lines += [
                f"### `{requirement.id}`",
                "",
                f"{requirement.requires[0].upper()}{requirement.requires[1:]}.",
                "",
                f"- cites: {requirement.cites}",
                f"- quote: \u201c{requirement.quote}\u201d",
                "- checks: "
                + (
                    "; ".join(f"`{test}`" + (f" ({n} cases)" if n > 1 else "") for test, n in sorted(tests.items()))
                    or "none"
                ),  # fmt: skip
                "",
            ]
    return "\n".join(lines)


def checks_of(items: Iterable[object]) -> list[tuple[str, str]]:
    """(requirement id, module::check) of the readiness checks among collected pytest items."""
    found = []
    for item in items:
        if item.get_closest_marker("readiness") is None:  # type: ignore[attr-defined]
            continue
        marker = item.get_closest_marker("enforces")  # type: ignore[attr-defined]
        found.append((marker.args[0] if marker else "?", item.nodeid))  # type: ignore[attr-defined]
    return found


# where a collection run loaded with `-p readiness.schema.ledger` writes its checks
CHECKS_OUT_ENV = "READINESS_CHECKS_OUT"


def pytest_collection_finish(session) -> None:  # type: ignore[no-untyped-def]
    """As a plugin (-p readiness.schema.ledger): write the collected checks and their requirements to
    $READINESS_CHECKS_OUT."""
    import json
    import os

    out = os.environ.get(CHECKS_OUT_ENV)
    if out:
        Path(out).write_text(json.dumps(checks_of(session.items)))


def collected() -> list[tuple[str, str]]:
    """The readiness checks of this project and what each enforces, as pytest collects them (nothing runs)."""
    import json
    import os
    import subprocess
    import sys
    import tempfile


    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "checks.json"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "readiness", "--collect-only", "-q", "-p", "readiness.schema.ledger",
             f"--report-dir={scratch}"],
            cwd=PROJECT_ROOT, env={**os.environ, CHECKS_OUT_ENV: str(out)}, capture_output=True, check=False,
        )  # fmt: skip
        if not out.is_file():  # the collection stopped: its own message says why
            raise SystemExit("the readiness checks could not be collected: run pytest -m readiness --collect-only")
        return [tuple(pair) for pair in json.loads(out.read_text())]  # type: ignore[misc]


CONTRACT_PAGE = PROJECT_ROOT / "docs" / "contract.md"

if __name__ == "__main__":  # make contract: docs/contract.md written from the ledger and the checks
    CONTRACT_PAGE.parent.mkdir(exist_ok=True)
    CONTRACT_PAGE.write_text(contract_markdown(collected()), encoding="utf-8")
    print(f"wrote {CONTRACT_PAGE}")
