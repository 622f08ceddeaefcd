"""pytest wiring: options and hooks, each check's outcome, marker validation, xdist's shared clusters."""
