"""Errors the suite reports to a person: what is wrong and what to do."""

EXIT_USAGE_ERROR = 4  # the exit status of a run stopped by bad input or an unreachable server


class ReadinessUsageError(Exception):
    """Bad input or environment: the run cannot start. The message says what to do."""
