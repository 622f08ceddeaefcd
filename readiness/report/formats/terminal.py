"""The sign-off at the end of the terminal's output: the tasks, the blocking issues, the access matrix in a line,
what was accepted, and the verdict."""

from __future__ import annotations

from readiness.report.signoff import SignOff
from readiness.report.words import affected


def render(signoff: SignOff) -> str:
    """The 8-task table, blocking issues and verdict, a line each."""
    width = max(len(t.name) for t in signoff.tasks) + 4
    lines = [signoff.purpose.replace("**", ""), f"{'Validation Task':<{width}} {'Status':<8} Comments"]
    for task in signoff.tasks:
        lines.append(f"{f'{task.number}. {task.name}':<{width}} {task.status:<8} {task.comments[:100]}")
    for issue in signoff.blocking_issues:
        enforces = f"; breaks {issue.requirement}" if issue.requirement else ""
        where = f"{issue.location}; {affected(issue)}{enforces}"
        lines.append(f"{issue.severity} [{issue.rule}]: {issue.message} ({where})")
    cells = [cell for row in signoff.access_matrix.values() for cell in row.values()]
    if cells:
        red = [f"{c.table} {c.command} by {c.actor}: {c.observed}" for c in cells if not c.as_expected]
        lines.append(f"tenant access: {len(cells) - len(red)} of {len(cells)} observed cells as the report expects"
                     + (f"; NOT: {'; '.join(red)[:300]}" if red else ""))  # fmt: skip
    for issue, decision in signoff.accepted:
        lines.append(f"accepted: {decision.finding} by {decision.by} until {decision.until or 'no expiry'} "
                     f"({decision.source}): {issue.message[:80]}")  # fmt: skip
    if signoff.recommendations:
        lines.append(f"recommendations (not blocking): {len(signoff.recommendations)}, listed in the reports")
    if signoff.design_differences:
        lines.append(f"differences from the project's design (informational): {len(signoff.design_differences)}")
    if signoff.examples:
        lines.append(f"hypothesis: {sum(signoff.examples.values())} examples in {len(signoff.examples)} property tests")
    lines.append(f"OVERALL STATUS: {signoff.verdict}")
    return "\n".join(lines)
