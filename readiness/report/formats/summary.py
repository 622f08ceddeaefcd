"""GitHub Actions' job summary ($GITHUB_STEP_SUMMARY, a Markdown file each step appends to): the Markdown sign-off."""

from __future__ import annotations

from readiness.report.formats import markdown
from readiness.report.signoff import SignOff

ENVIRONMENT = "GITHUB_STEP_SUMMARY"  # where the job's summary is


def render(signoff: SignOff) -> str:
    """The whole sign-off in this format."""
    return markdown.render(signoff) + "\n"
