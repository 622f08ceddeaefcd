"""Where CI shows a finding (readiness.report.formats.sarif for GitHub code scanning, .codequality for GitLab):
every blocking issue, recommendation and accepted finding, with its rule id and level, located at the file and
line of the migration, its rollback or the decisions file where the finding has one; a finding about the
migration as a whole is located at the file it is about (the rollback's task 8, else the migration), at the
line that first names an object the finding is about (Issue.about). Accepted
findings are in SARIF as suppressed results (their reason the justification), and not in code quality.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from readiness.errors import ReadinessUsageError
from readiness.report.signoff import SignOff
from readiness.rules.decisions import Decision
from readiness.schema.apply import ApplyError, first_reference
from readiness.verdicts import Issue, Location


def findings(signoff: SignOff) -> list[tuple[Issue, Decision | None]]:
    """Every finding of the run: blocking, recommended, then accepted (with its decision)."""
    return [
        *((issue, None) for issue in signoff.blocking_issues),
        *((issue, None) for issue in signoff.recommendations),
        *signoff.accepted,
    ]


def location(issue: Issue, signoff: SignOff) -> tuple[Path, int | None, int | None]:
    """The file, line and column a finding is at: where it says it is (`at`), else the file it is about (the
    rollback's, for task 8 alone; the migration's otherwise)."""
    if issue.at is not None and issue.at.path.is_file():
        return issue.at.path.resolve(), issue.at.line, issue.at.column
    if issue.location and Path(issue.location).is_file():
        return Path(issue.location).resolve(), None, None
    about = (signoff.rollback if issue.tasks == (8,) else signoff.migration).resolve()
    found_at = subject_of(about, issue.about)
    return about, found_at.line if found_at else None, found_at.column if found_at else None


def subject_of(path: Path, objects: tuple[str, ...]) -> Location | None:
    """Where the file first names an object the finding is about: the most specific the file has (the longest name:
    sync_activity_log_select before sync_activity_log)."""
    names = sorted({part for name in objects for part in name.split(".")}, key=len, reverse=True)
    try:
        return next((found for name in names if (found := first_reference(path, name)) is not None), None)
    except (ApplyError, ReadinessUsageError):  # a file that does not parse is located by its own finding
        return None


def relative(path: Path, root: Path) -> str | None:
    """`path` relative to `root` when under it (how code scanning matches a repository's files), else None."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else None


def fingerprint(issue: Issue) -> str:
    """The same finding gets the same fingerprint across runs and checkouts: its rule and message without paths."""
    message = re.sub(r"(/[^\s:]+/)", "", issue.message)
    return hashlib.sha256(f"{issue.rule}\n{message}".encode()).hexdigest()[:32]
