"""Readiness suite for PostgreSQL migration 0024: the machinery the task modules share."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
