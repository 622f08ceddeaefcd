"""signoff.json before and after a change of the road a verdict takes: the same, field by field.

Three runs of the checkout's suite: our 0024 on the ephemeral cluster, a broken copy of it (a policy widened to
some rows of every organisation, an index dropped), and our 0024 against a target that does not have it
yet. Each run's signoff.json is kept, its SARIF with it under "<sarif>" (the line code scanning puts each finding
on), with what differs from run to run on the same code masked: timings, ports, temporary paths, the checkout's own
path, uuids, the measurements' values (a plan's index varies with ANALYZE's sample) and hypothesis' example counts
(its seed is fixed). The volume comes from the cache when an earlier run
made it: record twice, compare the second records. A second call compares two folders and names each field that
differs.

  python bench/same_signoff.py record DIR          (from the checkout whose road is measured)
  python bench/same_signoff.py compare DIR_A DIR_B
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from readiness import PROJECT_ROOT
from readiness.postgres import process_group, server
from readiness.schema.apply import apply_file
from readiness.schema.files import DEFAULT_MIGRATION, DEFAULT_ROLLBACK, MIGRATION_0023, PREREQUISITE_FILES

# What the broken copy changes in our 0024: one leak the structure names, one missing index, one missing policy.
SELECT_POLICY = "CREATE POLICY sync_progress_select ON sync_progress FOR SELECT TO authenticated\n    USING ("
BREAKS = (
    (SELECT_POLICY, SELECT_POLICY + "status = 'failed' OR "),
    ("CREATE INDEX idx_sync_activity_log_entity ON sync_activity_log (org_id, entity_type, created_at DESC);", ""),
)
# Differs from run to run on the same code: masked before the comparison.
VOLATILE = (
    (re.compile(r"\d+(\.\d+)?\s*(ms|s|min)\b"), "<time>"),
    (re.compile(r"/tmp/[^\s;,'\")]+"), "<tmp>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"port[= ]\d+|:\d{4,5}\b"), "<port>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00|Z| UTC)?"), "<when>"),
)


def broken_copy(folder: Path) -> Path:
    """Our 0024 with BREAKS made."""
    text = DEFAULT_MIGRATION.read_text()
    for old, new in BREAKS:
        assert old in text, f"our 0024 no longer holds {old!r}: update BREAKS"
        text = text.replace(old, new, 1)
    path = folder / "0024_broken.sql"
    path.write_text(text)
    return path


def run(report_dir: Path, *options: str) -> dict:  # type: ignore[type-arg]
    """One readiness run of the checkout: its signoff.json and its SARIF (where code scanning puts each finding),
    masked."""
    process_group.run([sys.executable, "-m", "pytest", "-m", "readiness", "-q", "-p", "no:cacheprovider",
                       "--volume=100000", "--hypothesis-seed=24", f"--report-dir={report_dir}", *options],
                      cwd=PROJECT_ROOT, timeout=3600)  # fmt: skip
    signoff = json.loads((report_dir / "signoff.json").read_text())
    signoff["measurements"] = dict.fromkeys(signoff["measurements"], "<figure>")
    signoff["<sarif>"] = json.loads((report_dir / "readiness.sarif").read_text())
    return masked(json.loads(json.dumps(signoff).replace(str(PROJECT_ROOT), "<checkout>")))


def masked(value: object) -> object:
    """`value` with VOLATILE masked in every string, and hypothesis' counts (random by design) dropped."""
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items() if key not in ("hypothesis_examples",)}
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, str):
        for pattern, mask in VOLATILE:
            value = pattern.sub(mask, value)
        return value
    if isinstance(value, float):
        return "<figure>"
    return value


def record(folder: Path) -> None:
    """The three runs' signoff.json, masked, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        runs = {
            "ours": (),
            "broken": ("--migration", str(broken_copy(work)), "--rollback", str(DEFAULT_ROLLBACK)),
        }
        for name, options in runs.items():
            (folder / f"{name}.json").write_text(json.dumps(run(work / name, *options), indent=2, sort_keys=True))
        with server.ephemeral_server(server.find_pg_ctl(None)) as pg:
            with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, dbname="postgres", autocommit=True) as db:
                db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("same_signoff_target")))
            with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, dbname="same_signoff_target") as conn:
                for path in (*PREREQUISITE_FILES, MIGRATION_0023):
                    apply_file(conn, path, trusted=True)
            dsn = f"postgresql://{pg.user}@{pg.host}:{pg.port}/same_signoff_target"
            signoff = run(work / "target", f"--dsn={dsn}")
        (folder / "target.json").write_text(json.dumps(signoff, indent=2, sort_keys=True))
    print(f"recorded {', '.join(sorted(p.stem for p in folder.glob('*.json')))} in {folder}")


def differences(a: object, b: object, where: str = "") -> list[str]:
    """Each field (by its path) where `a` and `b` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [found for key in sorted(set(a) | set(b))
                for found in differences(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{where}.{key}")]  # fmt: skip
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [found for i, (x, y) in pairs for found in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {json.dumps(a)[:300]}  !=  {json.dumps(b)[:300]}"]


def compare(first: Path, second: Path) -> int:
    """Print each run's differing fields; 1 when any differs."""
    found = 0
    for path in sorted(first.glob("*.json")):
        other = second / path.name
        diff = differences(json.loads(path.read_text()), json.loads(other.read_text()) if other.is_file() else None)
        print(f"{path.stem}: {'SAME' if not diff else f'{len(diff)} field(s) differ'}")
        for line in diff:
            print(f"  {line}")
        found += len(diff)
    return 1 if found else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(Path(sys.argv[2]).resolve())
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
