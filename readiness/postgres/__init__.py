"""Where a PostgreSQL server comes from and how the suite runs it: packages, install, cache, server, process groups,
interrupts, connections.
"""
