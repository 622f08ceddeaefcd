"""What the migration holds and what is required of it: the report's contract, our design, the ledger, the catalog read
back, snapshots, drift, applying files, what a target holds.
"""
