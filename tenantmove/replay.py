"""Replay captured changes on the target: re-read each changed key's row in shared, then upsert or delete it."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tenantmove.capture import DEFAULT_BATCH, ApplyResult, Capture
from tenantmove.copy import choose_format, copy_rows, engine_error, pipe, upsert_from
from tenantmove.db import settle
from tenantmove.plan import Plan
from tenantmove.rows import RowSelection
from tenantmove.selection import tenant_selection
from tenantmove.sequences import advance_sequences

_BATCH = sql.Identifier("tenantmove_batch")


def _keys(alias: str, key: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(alias, k) for k in key)


class ChangedKeys:
    """One table's changed keys (named by a (relid, key) relation in shared): the tenant's current rows for
    them, staged on the target for a replay round, or compared there by verify_changes."""

    def __init__(self, plan: Plan, tenant: str, name: str, relid: int, index: int,
                 source: sql.Composable = _BATCH) -> None:
        self.selection = tenant_selection(plan, name, tenant)
        self.source = source  # the (relid, key) relation in shared naming the changed keys
        self.relid = relid
        self.target = self.selection.qualified
        self.stage = sql.Identifier(f"tenantmove_replay_rows_{index}")
        self.changed_keys = sql.Identifier(f"tenantmove_replay_keys_{index}")

    def _key_rows(self, source: sql.Composable) -> sql.Composed:
        """The changed keys, typed like the table's own columns, out of a (key jsonb) relation."""
        return sql.SQL("SELECT {} FROM {} AS b, jsonb_populate_record(NULL::{}, b.key) AS r").format(
            _keys("r", self.selection.key), source, self.target)

    def current_rows(self) -> RowSelection:
        s = self.selection
        query = sql.SQL("SELECT {} FROM ({}) AS s ({}) WHERE ({}) IN ({} WHERE b.relid = %(tenantmove_relid)s)"
                        ).format(_keys("s", s.columns), s.query, s.column_list, _keys("s", s.key),
                                 self._key_rows(self.source))
        return RowSelection(s.schema, s.table, s.columns, query, {**s.params, "tenantmove_relid": self.relid}, s.key)

    def key_list(self) -> RowSelection:
        query = sql.SQL("SELECT DISTINCT key FROM {} WHERE relid = %(tenantmove_relid)s").format(self.source)
        return RowSelection("pg_temp", "tenantmove_batch", ("key",), query, {"tenantmove_relid": self.relid})

    async def stage_keys(self, src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection) -> None:
        await dst.execute(sql.SQL("CREATE TEMP TABLE {} (key jsonb) ON COMMIT DROP").format(self.changed_keys))
        await pipe(src, dst, self.key_list(), self.changed_keys, "text")
        await dst.execute(sql.SQL("ANALYZE {}").format(self.changed_keys))  # see apply_changes

    def target_rows(self) -> RowSelection:
        """The target's rows whose key changed (after stage_keys, on the target)."""
        s = self.selection
        query = sql.SQL("SELECT {} FROM {} AS t WHERE ({}) IN ({})").format(
            _keys("t", s.columns), self.target, _keys("t", s.key), self._key_rows(self.changed_keys))
        return RowSelection(s.schema, s.table, s.columns, query, {}, s.key)

    async def stage_rows(self, src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection) -> int:
        await dst.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
                          .format(self.stage, self.selection.column_list, self.target))
        fmt = await choose_format(src, dst, self.selection, self.selection.schema, self.selection.table)
        rows, _ = await pipe(src, dst, self.current_rows(), self.stage, fmt)
        await self.stage_keys(src, dst)
        return rows

    async def delete_gone(self, dst: psycopg.AsyncConnection) -> int:
        """Target rows whose key changed and that are no longer the tenant's in shared (deleted, or moved)."""
        key = self.selection.key
        cur = await dst.execute(sql.SQL(
            "DELETE FROM {} AS t WHERE ({}) IN ({}) AND NOT EXISTS (SELECT FROM {} AS g WHERE ({}) = ({}))"
        ).format(self.target, _keys("t", key), self._key_rows(self.changed_keys), self.stage, _keys("g", key),
                 _keys("t", key)))
        return cur.rowcount


async def table_oids(conn: psycopg.AsyncConnection, plan: Plan) -> dict[int, str]:
    cur = await conn.execute(
        "SELECT t.name, (quote_ident(%s) || '.' || quote_ident(t.name))::regclass::oid FROM unnest(%s::text[])"
        " AS t(name)", (plan.schema, list(plan.load_order)))
    return {int(oid): name for name, oid in await cur.fetchall()}


async def apply_changes(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan, tenant: str,
                        capture: Capture, *, limit: int = DEFAULT_BATCH, record: bool = False,
                        in_transaction: bool = False) -> ApplyResult:
    """Take up to `limit` recorded changes and bring the target's rows for those keys to their state in
    shared now. The changes are deleted from the capture in a transaction that commits only after the
    target has committed: a crash in between replays them again, which is harmless. `record` keeps the keys
    in the capture's applied table for verify_changes; `in_transaction` runs inside the caller's open
    transaction on src (a snapshot the replay must read from) instead of one of its own."""
    if not in_transaction:
        await settle(src)
    await settle(dst)
    result = ApplyResult()
    try:
        async with src.transaction():
            await src.execute(sql.SQL("CREATE TEMP TABLE {} (relid oid, key jsonb) ON COMMIT DROP").format(_BATCH))
            cur = await src.execute(sql.SQL(
                "WITH taken AS (DELETE FROM {changes} WHERE id IN (SELECT id FROM {changes} ORDER BY id LIMIT "
                "%(limit)s) RETURNING relid, key), logged AS (INSERT INTO {applied} SELECT relid, key FROM taken "
                "WHERE %(record)s) INSERT INTO {batch} SELECT relid, key FROM taken"
            ).format(changes=capture.changes, batch=_BATCH, applied=capture.applied),
                {"limit": limit, "record": record})
            result.changes = cur.rowcount
            if result.changes:
                # Temp tables are never analyzed by autovacuum: without statistics the planner takes the batch
                # for a big one and scans whole tables instead of looking the changed keys up by index.
                await src.execute(sql.SQL("ANALYZE {}").format(_BATCH))
                relids = await table_oids(src, plan)
                cur = await src.execute(sql.SQL("SELECT DISTINCT relid FROM {}").format(_BATCH))
                present = {int(row[0]) for row in await cur.fetchall()}
                parts = [ChangedKeys(plan, tenant, relids[oid], oid, i)
                         for i, oid in enumerate(sorted(present, key=lambda o: plan.load_order.index(relids[o])))
                         if oid in relids]
                await _replay_either_order(src, dst, plan, parts, result)
            # Within a caller's transaction the ON COMMIT DROP would wait for its end; the next round needs
            # the name again.
            await src.execute(sql.SQL("DROP TABLE {}").format(_BATCH))
    except psycopg.Error as exc:
        raise engine_error(exc, table="*", action="replaying captured changes") from exc
    return result


async def _replay_either_order(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan,
                               parts: list[ChangedKeys], result: ApplyResult) -> None:
    # Upserts first (parents before children), then deletes (children first) suits a row moved to another
    # parent that is then deleted; deletes first suits a unique value freed by one row and taken by another.
    # Each order fails on the other's case, so the second runs when the first meets a constraint.
    try:
        await _replay(src, dst, plan, parts, result, upserts_first=True)
    except (psycopg.errors.UniqueViolation, psycopg.errors.ForeignKeyViolation):
        result.upserted.clear()
        result.deleted.clear()
        await _replay(src, dst, plan, parts, result, upserts_first=False)


async def _replay(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan, parts: list[ChangedKeys],
                  result: ApplyResult, *, upserts_first: bool) -> None:
    async with dst.transaction():
        await dst.execute(sql.SQL("SET CONSTRAINTS ALL DEFERRED"))
        keyed = [p for p in parts if p.selection.key]
        for part in parts:
            if not part.selection.key:  # no key to replay by: the table's scope is repaired as a whole
                copied = await copy_rows(src, dst, part.selection)
                result.upserted[part.selection.table] = copied.rows
        staged = {p.selection.table: await p.stage_rows(src, dst) for p in keyed}

        async def upserts() -> None:
            for part in keyed:
                await upsert_from(dst, part.target, part.stage, part.selection)
                result.upserted[part.selection.table] = staged[part.selection.table]

        async def deletes() -> None:
            for part in reversed(keyed):
                result.deleted[part.selection.table] = await part.delete_gone(dst)

        for phase in (upserts, deletes) if upserts_first else (deletes, upserts):
            await phase()
        await advance_sequences(dst, plan, [p.selection.table for p in parts])
