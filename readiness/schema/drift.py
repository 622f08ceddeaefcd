"""Drift: where a deployed 0024 differs from what its file creates, object by object, both sides shown.

Two catalog snapshots (readiness.schema.snapshot) are compared by object: the target as deployed, and
the target once the rollback and then the file ran on it. Drift from the report's contract (an
object the report names missing or added, an enum's labels, a named column's type or NULL-ability,
RLS on a sync table) blocks; drift in what the report leaves open (defaults, policy and function
text, grants, other objects) is a recommendation: the file in the repository is not what was deployed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from readiness.schema import expected
from readiness.schema.snapshot import QUERIES, Snapshot

_INDEX_NAME = re.compile(r"INDEX (\S+) ON ")
_TRIGGER = re.compile(r"TRIGGER (\S+) .* ON (\S+) ")
_EXECUTES = re.compile(r"EXECUTE FUNCTION (?:\w+\.)?(\w+)\(")
_DEFAULT = re.compile(r" default .*$")
_INDEX_RELATION = re.compile(r"^\S+ kind=[iI] ")  # an index's relation line: kind "indexes" shows it whole


def identity(kind: str, line: str) -> str:
    """Which object a snapshot line describes, whatever its definition."""
    words = line.split(" ")
    if kind == "indexes":
        match = _INDEX_NAME.search(line)
        return match.group(1) if match else line
    if kind == "triggers":
        match = _TRIGGER.search(line)
        return f"{match.group(1)} on {match.group(2)}" if match else line
    if kind == "functions":
        return line.split(" returns ")[0]
    if kind in ("constraints", "policies"):
        return " ".join(words[:2])
    return words[0]


@dataclass(frozen=True)
class Drift:
    """One object whose deployed definition is not the file's (None: absent on that side)."""

    kind: str
    name: str
    deployed: str | None
    file: str | None

    @property
    def subject(self) -> str:
        """The object as readiness.rules.causes names a missing one: idx_x, sync_progress, sync_progress.job_id."""
        if self.kind == "columns":
            return ".".join(self.name.split(".")[-2:])
        return self.name.split(" on ")[0].split(".")[-1].split("(")[0]

    @property
    def contract(self) -> bool:
        """Whether the difference is in what the report requires, not in what it leaves open."""
        bare = self.subject
        one_sided = self.deployed is None or self.file is None
        if self.kind == "types":
            return bare in expected.ENUMS
        if self.kind == "relations":
            return bare in expected.CONTRACT_COLUMNS
        if self.kind == "columns":
            table, column = self.name.split(".")[-2:]
            named = column in expected.CONTRACT_COLUMNS.get(table, {})
            return named and (one_sided or _DEFAULT.sub("", self.deployed) != _DEFAULT.sub("", self.file))  # type: ignore[arg-type]
        if self.kind == "indexes":
            return one_sided and bare in expected.INDEXES
        if self.kind == "functions":
            return one_sided and bare in expected.FUNCTION_NAMES
        if self.kind == "triggers":
            executes = _EXECUTES.search(self.deployed or self.file or "")
            return one_sided and executes is not None and executes.group(1) in expected.FUNCTION_NAMES
        if self.kind == "policies":
            return one_sided and self.name.split(" ")[1] in expected.POLICIES
        if self.kind == "constraints":
            definition = self.deployed or self.file or ""
            table = self.name.split(" ")[0].split(".")[-1]
            keys = ("PRIMARY KEY", "FOREIGN KEY")
            return one_sided and table in expected.CONTRACT_COLUMNS and any(key in definition for key in keys)
        return False

    def __str__(self) -> str:
        deployed = self.deployed if self.deployed is not None else "(absent)"
        file = self.file if self.file is not None else "(absent)"
        return f"{self.kind} {self.name}: deployed: {deployed} | the file creates: {file}"


def compare(deployed: Snapshot, file_built: Snapshot) -> list[Drift]:
    """Every object whose line differs between the two snapshots, in the snapshot's order of kinds."""
    found = []
    for kind in QUERIES:
        ours = {identity(kind, line): line for line in deployed[kind] if not _INDEX_RELATION.search(line)}
        theirs = {identity(kind, line): line for line in file_built[kind] if not _INDEX_RELATION.search(line)}
        for name in sorted(ours.keys() | theirs.keys()):
            if ours.get(name) != theirs.get(name):
                found.append(Drift(kind, name, ours.get(name), theirs.get(name)))
    return found
