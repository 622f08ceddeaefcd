"""The database under test: built on the ephemeral server, or a target read once with its shadow; task 3's volume."""
