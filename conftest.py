"""The suite's fixtures and hooks, wired from readiness.plugin (the pytest plugin itself is readiness.plugin.hooks,
loaded by entry point): the run's servers and target, the connections to the database under test, and what a
check records and acts through."""

pytest_plugins = ["readiness.plugin.runs", "readiness.plugin.connections", "readiness.plugin.checks"]
