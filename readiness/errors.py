"""Errors the suite reports to a person: what is wrong and what to do."""


class ReadinessUsageError(Exception):
    """Bad input or environment: the run cannot start. The message says what to do."""
