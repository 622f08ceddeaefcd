"""The formats of the sign-off: each a module with render(signoff) -> str, the whole sign-off in its form.

The files under --report-dir are FORMATS' (each module's FILE, written whole or not at all); terminal, html (the
top of pytest-html's readiness.html) and summary (GitHub's job summary) are rendered where pytest and CI show them.
A new format is one module and its name in FORMATS.
"""

from __future__ import annotations

from importlib import import_module

from readiness.report.formats import html

FORMATS = ("signoff_json", "markdown", "sarif", "codequality")
FILES = {module.FILE: module for module in (import_module(f"{__name__}.{name}") for name in FORMATS)}
JUNIT = "junit.xml"  # pytest's own, its rows as the sign-off decided them (readiness.plugin.outcomes)
ALL_FILES = (html.FILE, *FILES, JUNIT)  # what a run leaves under --report-dir
