"""Connections with the session settings that make row text identical on every server, TLS modes, DSN masking."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from tenantmove.errors import ConfigError, DatabaseUnavailable, TlsRefused

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq's words for a TLS handshake that can never succeed as configured: retrying will not help.
_TLS_REFUSED = re.compile(r"does not support SSL|certificate|sslrootcert|SSL error: (?!.*SYSCALL)", re.I)

# Checksums hash each row's text form, so every session that reads rows must print values the same way
# whatever the server's own defaults are (time zone, float digits, bytea and interval styles).
SESSION_SETTINGS: dict[str, str] = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    "client_encoding": "UTF8",
    "lc_monetary": "C",
}

_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@\s]*)@", re.I)
_PASSWORD_IN_KV = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_PASSWORD_IN_QUERY = re.compile(r"(?P<key>[?&]password=)(?P<pw>[^&\s]+)", re.I)


def mask_dsn(text: str) -> str:
    """Replace every password in URLs, key=value DSNs and query strings found in text with ****."""
    text = _PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:****@", text)
    text = _PASSWORD_IN_KV.sub(lambda m: f"{m['key']}****", text)
    return _PASSWORD_IN_QUERY.sub(lambda m: f"{m['key']}****", text)


def with_sslmode(dsn: str, sslmode: str | None) -> str:
    """dsn with sslmode=`sslmode` when it names none: a DSN's own sslmode is kept (an operator who wrote one
    meant it). Every DSN the product uses passes through here at its entry (settings, providers)."""
    if not sslmode or "sslmode" in psycopg.conninfo.conninfo_to_dict(dsn):
        return dsn
    if sslmode not in SSLMODES:
        raise ConfigError(f"expected an sslmode among {', '.join(SSLMODES)}, found {sslmode!r}")
    if re.match(r"postgres(ql)?://", dsn):  # a URL stays a URL: it may go into the tenant row for Prisma
        base, _, fragment = dsn.partition("#")
        joined = f"{base}{'&' if '?' in base else '?'}sslmode={sslmode}"
        return f"{joined}#{fragment}" if fragment else joined
    return psycopg.conninfo.make_conninfo(dsn, sslmode=sslmode)


def _unavailable(dsn: str, exc: psycopg.OperationalError) -> Exception:
    message = f"cannot connect to {mask_dsn(dsn)}: {mask_dsn(str(exc)).strip()}"
    if _TLS_REFUSED.search(str(exc)):
        return TlsRefused(message)
    return DatabaseUnavailable(message)


async def apply_session_settings(conn: psycopg.AsyncConnection) -> None:
    for name, value in SESSION_SETTINGS.items():
        await conn.execute(sql.SQL("SELECT set_config({}, {}, false)").format(name, value))


async def connect(dsn: str, *, autocommit: bool = False, application_name: str = "stagesub-migrate"
                  ) -> psycopg.AsyncConnection:
    try:
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, application_name=application_name, connect_timeout=15
        )
    except psycopg.OperationalError as exc:
        raise _unavailable(dsn, exc) from exc
    await apply_session_settings(conn)
    await conn.set_autocommit(autocommit)
    return conn


@asynccontextmanager
async def connection(dsn: str, *, autocommit: bool = False, application_name: str = "stagesub-migrate"
                     ) -> AsyncIterator[psycopg.AsyncConnection]:
    conn = await connect(dsn, autocommit=autocommit, application_name=application_name)
    try:
        yield conn
    finally:
        await conn.close()


async def settle(conn: psycopg.AsyncConnection) -> None:
    """End the implicit transaction an earlier statement opened (catalog reads, checksums), so that the next
    `conn.transaction()` block is a real transaction that commits, not a savepoint inside that one."""
    if not conn.autocommit and conn.info.transaction_status == TransactionStatus.INTRANS:
        await conn.commit()


def connect_sync(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        conn = psycopg.connect(dsn, autocommit=True, application_name="stagesub-migrate", connect_timeout=15)
    except psycopg.OperationalError as exc:
        raise _unavailable(dsn, exc) from exc
    for name, value in SESSION_SETTINGS.items():
        conn.execute(sql.SQL("SELECT set_config({}, {}, false)").format(name, value))
    conn.autocommit = autocommit
    return conn


def with_database(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)
