"""Task 6, Integration Point Validation: foreign keys, cascades, isolation end to end, hostile input.

The report's section 6: every sync table's org_id references organization ON DELETE CASCADE and
its user column references auth.users_extended ON DELETE SET NULL. Here those keys are exercised
(not just read from the catalog, which task 1 does), then an application's flow is played as
authenticated users, then text and jsonb values an application may be handed are written and read
back. Everything runs in the test's transaction and is rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from readiness.acting import factories, keys, leaks, values
from readiness.acting.auth import accepted, acting_as, as_user, attempt, refused
from readiness.acting.factories import SYNC_TABLES, USER_COLUMNS, Tenant, organization, sync_row
from readiness.schema import catalog
from readiness.schema.expected import SERVICE_ROLE
from readiness.verdicts import not_applicable

pytestmark = [pytest.mark.readiness, pytest.mark.task(6)]
FOREIGN_KEY_COLUMNS = [(table, column) for table in SYNC_TABLES for column in ("org_id", USER_COLUMNS[table])]
TEXT_TYPES = ("text", "character varying")
TEXT_COLUMNS = """
SELECT a.attname, CASE WHEN a.atttypmod > 0 THEN a.atttypmod - 4 END,
       EXISTS (SELECT FROM pg_index i WHERE i.indrelid = a.attrelid AND a.attnum = ANY (i.indkey))
FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = ''
  AND a.attgenerated = '' AND a.atttypid = ANY (%s::regtype[])
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = a.attrelid AND k.contype = 'c'
                  AND a.attnum = ANY (k.conkey))  -- a column a CHECK constrains takes only what it allows
ORDER BY a.attnum
"""
FOREIGN_KEY_VIOLATION = "23503"
PROGRAM_LIMIT_EXCEEDED = "54000"
STRING_TOO_LONG = "22001"
BTREE_TUPLE_LIMIT = 2704  # bytes: the largest entry a btree (version 4) index holds on 8 kB pages

FOREIGN_KEY_OF_COLUMN = """
SELECT c.conname FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND c.conparentid = 0 AND a.attname = %s
"""
# Text PostgreSQL can hold: what st.text() draws (any character UTF-8 can encode, so no lone
# surrogates), but NUL.
NO_NUL_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"))
# jsonb numbers are decimal: a float is not read back as the same float, so none are generated.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | NO_NUL_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NO_NUL_TEXT, children, max_size=4),
    max_leaves=8,  # nested deep enough to matter, cheap enough to draw; deeper still in NESTED_UNICODE
)
JSON_OBJECTS = st.dictionaries(NO_NUL_TEXT, JSON_VALUES, max_size=4)

QUOTES = "it's \"quoted\" ''twice'' `backticked` \u2018curly\u2019 \u201cdouble\u201d"
BACKSLASHES = "C:\\sync\\new\\table \\n \\t \\x00 \\\\ E'\\'' \\u0000"
SQL_INJECTION = "'; DROP TABLE organization; --"
SQL_FRAGMENTS = "1' OR '1'='1' /* */ $$; SELECT pg_sleep(10); $$ $tag$ \\; COMMIT; ROLLBACK;"
EMOJI = (
    "\U0001f680\U0001f525 \U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 \U0001f1eb\U0001f1f7 \u2764\ufe0f"
)
CJK = "\u540c\u6b65\u9884\u89c8 \u9032\u6357 \ub85c\uadf8 \u65e5\u672c\u8a9e\u30c6\u30ad\u30b9\u30c8"
# Decomposed and precomposed forms stay distinct: PostgreSQL must not normalise.
COMBINING = "e\u0301 \u00e9 Z\u0351\u0335a\u0336l\u0337g\u0338o \u0928\u093f \ufeff\u200b\u202eRTL\u202c"
WHITESPACE = "  leading and trailing \t\r\n  "
LONG_COMPRESSIBLE = "sync log " * (100 * 1024 // 9)  # about 100 kB; TOAST compresses it
# About 100 kB that does not compress (a deterministic run through the BMP without repeats).
LONG_VARIED = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(100 * 1024))


# --- helpers ---------------------------------------------------------------------------


def text_columns(conn: psycopg.Connection, table: str, *, indexed: bool = True) -> dict[str, int | None]:
    """The free text columns of the migration under test in `table` (every one no CHECK constrains, not a fixed
    list): name -> max length."""
    rows = conn.execute(TEXT_COLUMNS, (table, list(TEXT_TYPES))).fetchall()
    return {name: limit for name, limit, in_index in rows if indexed or not in_index}


def json_columns(conn: psycopg.Connection, table: str) -> list[str]:
    """The jsonb columns of the migration under test in `table`."""
    return [row[0] for row in conn.execute(TEXT_COLUMNS, (table, ["jsonb"]))]


def none_to_check(what: str) -> None:
    """This migration has nothing of the kind: the check does not apply."""
    not_applicable(what)


def table_count(conn: psycopg.Connection, table: str, org_id: UUID | None = None) -> int:
    """Rows of `table`, of `org_id` only when given."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    if org_id is None:
        return conn.execute(query).fetchone()[0]  # type: ignore[index]
    return conn.execute(query + sql.SQL(" WHERE org_id = %s"), (org_id,)).fetchone()[0]  # type: ignore[index]


def log_partitions_of(conn: psycopg.Connection, wanted: tuple[keys.Key, ...]) -> list[str]:
    """The partitions of sync_activity_log the rows `wanted` lie in."""
    found = set()
    for key in wanted:
        query = sql.SQL("SELECT tableoid::regclass::text FROM sync_activity_log WHERE {}").format(
            keys.where(conn, "sync_activity_log", key))
        found.update(row[0] for row in conn.execute(query, key))
    return sorted(found)


def foreign_key_of(conn: psycopg.Connection, table: str, column: str) -> str | None:
    """The name of the foreign key on `table`.`column` (the parent's, for a partitioned table)."""
    row = conn.execute(FOREIGN_KEY_OF_COLUMN, (table, column)).fetchone()
    return row[0] if row else None


def visible(conn: psycopg.Connection, table: str, key: keys.Key) -> int:
    """How many rows of this key the current role sees in `table`."""
    return len(keys.value(conn, table, keys.columns(conn, table)[0], key))


def delete(conn: psycopg.Connection, table: str, key: Any, what: str) -> int:
    """Delete a prerequisite's row by its id, in a savepoint; a refusal fails the test naming `what`."""
    query = sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(*table.split(".")))
    with accepted(conn, what):
        deleted = conn.execute(query, (key,)).rowcount
    return deleted


@contextmanager
def captured(errors: list[psycopg.Error]) -> Iterator[None]:
    """Keep the error the block raises (then let it go on to `refused`)."""
    try:
        yield
    except psycopg.Error as error:
        errors.append(error)
        raise


def difference(expected: str, found: str | None) -> str:
    """Where two (possibly 100 kB) strings part: lengths and the first differing characters."""
    if found is None:
        return f"expected {len(expected)} characters, found no value (NULL or no row)"
    index = next((i for i, (a, b) in enumerate(zip(expected, found, strict=False)) if a != b), None)
    if index is None:
        index = min(len(expected), len(found))
    return (
        f"expected {len(expected)} characters, found {len(found)}; first difference at character {index}: "
        f"expected {expected[index : index + 24]!r}, found {found[index : index + 24]!r}"
    )


# --- foreign keys and cascades ---------------------------------------------------------


def present(conn: psycopg.Connection, table: str, wanted: tuple[keys.Key, ...]) -> dict[keys.Key, dict[str, Any]]:
    """The rows of `wanted` still there, by their keys, as the owner reads them."""
    return leaks.rows_by_key(conn, table, wanted)


@pytest.mark.enforces("report.cascade")
def test_deleting_organisation_cascades_to_every_table_and_partition(
    migrated: psycopg.Connection, two_tenants: tuple[Tenant, Tenant]
) -> None:
    """Deleting an organisation deletes the very rows it had, followed by their keys, in the three tables and every
    log partition they lie in, and none of another organisation's."""
    a, b = two_tenants
    partitions = log_partitions_of(migrated, a.rows["sync_activity_log"])
    deleted = delete(migrated, "organization", a.org_id, "deleting organisation A, which has sync rows")
    assert deleted == 1, f"deleting organisation A: expected 1 row deleted, {deleted} were"
    left = {table: present(migrated, table, a.rows[table]) for table in SYNC_TABLES}
    kept = {table: sorted({str(row["org_id"]) for row in rows.values()}) for table, rows in left.items() if rows}
    assert not kept, (
        "rows of the deleted organisation left behind (ON DELETE CASCADE expected), by table: "
        + "; ".join(f"{table}: {len(left[table])} of its {len(a.rows[table])} rows, now of org_id {orgs}"
                    for table, orgs in kept.items())  # fmt: skip
        + f" (its log rows lay in {len(partitions)} partitions: {', '.join(partitions)})"
    )
    lost = {table: len(b.rows[table]) - len(present(migrated, table, b.rows[table])) for table in SYNC_TABLES}
    assert set(lost.values()) == {0}, f"rows of organisation B deleted with organisation A, by table: {lost}"


@pytest.mark.enforces("report.set-null")
@pytest.mark.parametrize("table", SYNC_TABLES)
def test_deleting_user_sets_user_column_null_and_keeps_rows(
    migrated: psycopg.Connection, two_tenants: tuple[Tenant, Tenant], table: str
) -> None:
    """Deleting a user (auth.users_extended) sets computed_by / initiated_by / user_id NULL in the very rows that
    named them, of any organisation, keeps every row, and leaves the rows naming others as they were."""
    a, b = two_tenants
    column = USER_COLUMNS[table]
    every = a.rows[table] + b.rows[table]
    before = present(migrated, table, every)
    naming = [key for key, row in before.items() if row[column] == a.user_id]
    assert naming, f"{table}: no row of organisation A or B names user A in {column} (the domain's rows should)"

    deleted = delete(migrated, "auth.users_extended", a.user_id, f"deleting user A, named by {table}.{column}")
    assert deleted == 1, f"deleting user A from auth.users_extended: expected 1 row deleted, {deleted} were"

    after = present(migrated, table, every)
    gone = [key for key in every if key not in after]
    assert not gone, f"{table}: {len(gone)} of the {len(every)} rows of A and B are gone after user A was deleted"
    kept = [after[key][column] for key in naming if after[key][column] is not None]
    assert not kept, f"{table}.{column} of the {len(naming)} rows naming user A: expected NULL (SET NULL), found {kept}"
    touched = [key for key in every if key not in naming and after[key][column] != before[key][column]]
    assert not touched, f"{table}.{column} changed in {len(touched)} rows that did not name user A"


@pytest.mark.enforces("report.foreign-keys")
@pytest.mark.parametrize(("table", "column"), FOREIGN_KEY_COLUMNS, ids=[f"{t}.{c}" for t, c in FOREIGN_KEY_COLUMNS])
def test_row_naming_missing_parent_is_refused(
    migrated: psycopg.Connection, two_tenants: tuple[Tenant, Tenant], table: str, column: str
) -> None:
    """A row naming an organisation or a user that does not exist is refused (23503) by that column's foreign key."""
    a, _ = two_tenants
    constraint = foreign_key_of(migrated, table, column)
    assert constraint is not None, f"{table}.{column}: expected a foreign key on the column, found none"
    # a value of the key's type no organisation or user has: a new uuid, or a negative number
    typed = catalog.columns(migrated, table)[column].type
    missing = -424242 if values.base_type(typed) in values.NUMBERS else values.fresh(column, typed)
    org_id, user_id = (missing, None) if column == "org_id" else (a.org_id, missing)
    before = table_count(migrated, table)

    errors: list[psycopg.Error] = []
    with refused(migrated, FOREIGN_KEY_VIOLATION), captured(errors):
        sync_row(migrated, table, org_id, user_id, as_given=True)

    assert errors[0].diag.constraint_name == constraint, (
        f"{table}.{column} = {missing}: expected refusal by {constraint}, got {errors[0].diag.constraint_name}"
    )
    after = table_count(migrated, table)
    assert after == before, f"{table}: {before} rows before the refused insert, {after} after (expected equal)"


# --- end to end, as an application -----------------------------------------------------


@pytest.mark.enforces("report.isolation")
@pytest.mark.severity("CRITICAL")  # a failure is one organisation seeing another's rows
@pytest.mark.uses(*SYNC_TABLES)
def test_sync_flow_end_to_end_is_isolated_between_tenants(
    migrated: psycopg.Connection, two_tenants: tuple[Tenant, Tenant], columns
) -> None:
    """A user's preview-start-progress-complete flow is audited; org B sees none of it, service_role all of it."""
    a, b = two_tenants
    status, processed_items, total = (columns[("sync_progress", role)] for role in ("status", "processed", "total"))
    sync_id = factories.fresh_value_of(migrated, "sync_progress", "sync_id")
    with as_user(migrated, a.user_id) as conn:
        with accepted(conn, "user A (authenticated) inserting a preview and a sync_progress row for its org"):
            preview = sync_row(conn, "sync_preview_cache", a.org_id, a.user_id)
            progress = sync_row(conn, "sync_progress", a.org_id, a.user_id, sync_id=sync_id, **{total: 100})
        progress_key = keys.of(conn, "sync_progress", progress)
        where = keys.where(conn, "sync_progress", progress_key)
        steps = [("in_progress", processed) for processed in (10, 55, 100)] + [("completed", 100)]
        for new_status, processed in steps:
            with accepted(conn, f"user A moving its sync to {new_status} with {processed} items processed"):
                updated = conn.execute(
                    sql.SQL("UPDATE sync_progress SET {} = %s, {} = %s, completed_at = {} WHERE {}").format(
                        sql.Identifier(status), sql.Identifier(processed_items),
                        sql.SQL("now()" if new_status == "completed" else "NULL"), where,
                    ),
                    (new_status, processed, *progress_key),
                ).rowcount  # fmt: skip
            assert updated == 1, (
                f"user A moving its sync to {new_status}, {processed} items: expected 1 row updated, got {updated}"
            )
        state = keys.value(conn, "sync_progress", status, progress_key)
        assert [str(value) for value in state] == ["completed"], f"user A's sync_progress row: {state}, not completed"
        logs = conn.execute(
            sql.SQL("SELECT {}, org_id FROM sync_activity_log WHERE sync_id = %s").format(
                keys.selected(conn, "sync_activity_log")
            ),
            (sync_id,),
        ).fetchall()
        assert logs and {row[-1] for row in logs} == {a.org_id}, (
            f"the audit rows user A sees for its finished sync: {len(logs)}, expected at least one, of its organisation"
        )
    log_keys = [tuple(row[:-1]) for row in logs]
    a_rows = {
        "sync_preview_cache": [keys.of(migrated, "sync_preview_cache", preview)],
        "sync_progress": [progress_key],
        "sync_activity_log": log_keys,
    }
    with as_user(migrated, b.user_id) as conn:
        seen = {table: sum(visible(conn, table, key) for key in row_keys) for table, row_keys in a_rows.items()}
        assert seen == dict.fromkeys(SYNC_TABLES, 0), f"rows of org A a user of org B sees (expected none): {seen}"

    with acting_as(migrated, SERVICE_ROLE) as conn:
        seen = {table: sum(visible(conn, table, key) for key in row_keys) for table, row_keys in a_rows.items()}
        wanted = {table: len(row_keys) for table, row_keys in a_rows.items()}
        assert seen == wanted, f"rows of org A service_role sees: {seen}, expected all of them {wanted}"


# --- hostile and unusual input ---------------------------------------------------------


@pytest.mark.enforces("rule.verbatim")
@pytest.mark.parametrize("table", SYNC_TABLES)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=NO_NUL_TEXT)
@example(value=QUOTES)
@example(value=BACKSLASHES)
@example(value=SQL_INJECTION)
@example(value=SQL_FRAGMENTS)
@example(value=EMOJI)
@example(value=CJK)
@example(value=COMBINING)
@example(value=WHITESPACE)
@example(value="")
@example(value=LONG_COMPRESSIBLE)
def test_text_round_trips_verbatim(migrated: psycopg.Connection, table: str, value: str) -> None:
    """Text with quotes, backslashes, SQL, emoji, CJK, combining marks or 100 kB is stored and read back verbatim,
    in every text column of the table that can hold it."""
    columns = [name for name, limit in text_columns(migrated, table).items() if limit is None or len(value) <= limit]
    if not columns:
        none_to_check(f"{table} has no text column that holds {len(value)} characters")
    with migrated.transaction(force_rollback=True):
        with accepted(migrated, f"storing {len(value)} characters {value[:40]!r} in {table} {columns}"):
            row = sync_row(migrated, table, organization(migrated, "round-trip"), **dict.fromkeys(columns, value))
        for column in columns:
            found = keys.value(migrated, table, column, keys.of(migrated, table, row))
            assert found == [value], f"{table}.{column}: " + difference(value, found[0] if len(found) == 1 else None)
        intact = catalog.relation_exists(migrated, "public.organization")
        assert intact, f"after storing {value[:40]!r}: expected table organization to exist, it is gone"


@pytest.mark.enforces("rule.verbatim")
@pytest.mark.parametrize("table", SYNC_TABLES)
def test_long_varied_text_round_trips_verbatim(migrated: psycopg.Connection, table: str) -> None:
    """100 kB of text that does not compress is stored and read back verbatim in each unbounded, unindexed text
    column (an index entry cannot hold it: see the cache_key check)."""
    columns = [name for name, limit in text_columns(migrated, table, indexed=False).items() if limit is None]
    if not columns:
        none_to_check(f"{table} has no unbounded text column outside an index")
    with accepted(migrated, f"storing {len(LONG_VARIED)} characters in {table} {columns}"):
        row = sync_row(migrated, table, organization(migrated, "long"), **dict.fromkeys(columns, LONG_VARIED))
    for column in columns:
        found = keys.value(migrated, table, column, keys.of(migrated, table, row))
        assert found == [LONG_VARIED], f"{table}.{column}: " + difference(
            LONG_VARIED, found[0] if len(found) == 1 else None
        )


@pytest.mark.enforces("rule.index-limit")
@pytest.mark.uses("idx_sync_preview_cache_key")
def test_cache_key_longer_than_its_index_allows_is_refused_cleanly(migrated: psycopg.Connection) -> None:
    """A cache_key beyond what idx_sync_preview_cache_key (btree: 2704 bytes) or its type holds is refused (by
    the index, the type or a constraint of the migration's); nothing is stored, nothing is cut short."""
    org_id = organization(migrated, "long key")
    before = table_count(migrated, "sync_preview_cache")
    too_long = LONG_VARIED[: BTREE_TUPLE_LIMIT // 3 + 16]  # 3 bytes a character in UTF-8: just over the limit
    error = attempt(migrated, lambda: sync_row(migrated, "sync_preview_cache", org_id, cache_key=too_long,
                                               as_given=True))  # fmt: skip
    after = table_count(migrated, "sync_preview_cache")
    assert error is not None and after == before, (
        f"a cache_key of {len(too_long)} characters ({len(too_long.encode())} bytes, over the btree limit of "
        f"{BTREE_TUPLE_LIMIT}) was accepted: {after - before} row stored"
    )


NESTED_UNICODE = {
    "outer": {"inner": {"\u043a\u043b\u044e\u0447": "\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435"}},
    "\u9375": [EMOJI, COMBINING, None, True, False, 0, -1, 1.5, 2**70, [], {}],
    "quote'\"\\": SQL_INJECTION,
    "": {"": ""},
    "deep": {"a": {"b": {"c": {"d": {"e": [1, [2, [3, [4]]]]}}}}},
}


@pytest.mark.enforces("rule.verbatim")
@pytest.mark.parametrize("table", SYNC_TABLES)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_OBJECTS)
@example(value=NESTED_UNICODE)
@example(value={"message": LONG_VARIED})
def test_jsonb_round_trips_equal(migrated: psycopg.Connection, table: str, value: dict[str, Any]) -> None:
    """A jsonb value with nested keys, unicode and hostile strings is read back equal in every jsonb column."""
    columns = json_columns(migrated, table)
    if not columns:
        none_to_check(f"{table} has no jsonb column")
    with migrated.transaction(force_rollback=True):
        with accepted(migrated, f"storing {str(value)[:80]} in {table} {columns}"):
            row = sync_row(migrated, table, organization(migrated, "json"), **dict.fromkeys(columns, Jsonb(value)))
        for column in columns:
            found = keys.value(migrated, table, column, keys.of(migrated, table, row))
            assert found == [value], f"{table}.{column}: expected [{str(value)[:200]}], found {str(found)[:200]}"
