"""A seeded random schema of many tables and foreign keys: tenant columns, nullable and composite links,
self-references, one-to-one rows, cycles, lookups; for plan-scale tests and the plan benchmark."""

from __future__ import annotations

import random


def wide_schema_sql(tables: int = 60, foreign_keys: int = 120, seed: int = 7) -> str:
    """DDL and a little data for `tables` tables (plus the tenant table) and about `foreign_keys` links."""
    rng = random.Random(seed)
    out = ["CREATE TABLE tenant (id text PRIMARY KEY, name text);",
           "INSERT INTO tenant VALUES ('a', 'A'), ('b', 'B');"]
    names = [f"t{i:02d}" for i in range(tables)]
    composite = set(rng.sample(names, max(1, tables // 10)))
    for name in names:
        if name in composite:
            out.append(f"CREATE TABLE {name} (id integer NOT NULL, part integer NOT NULL, payload text, "
                       f"PRIMARY KEY (id, part));")
        else:
            out.append(f"CREATE TABLE {name} (id integer PRIMARY KEY, payload text);")
    links = 0
    updates = []
    for name in names:
        if rng.random() < 0.3:
            out.append(f"ALTER TABLE {name} ADD COLUMN org_id text REFERENCES tenant (id);")
            updates.append(f"UPDATE {name} SET org_id = CASE WHEN id % 3 = 0 THEN NULL WHEN id % 2 = 0 THEN 'a' "
                           "ELSE 'b' END;")
            links += 1
    while links < foreign_keys:
        child, parent = rng.choice(names), rng.choice(names)
        i, j = names.index(child), names.index(parent)
        # mostly children point at earlier tables; a few point forward (cycles) or at themselves
        if j > i and rng.random() < 0.9:
            child, parent = parent, child
        col = f"ref{links}"
        unique = " UNIQUE" if rng.random() < 0.05 else ""
        if parent in composite:
            out.append(f"ALTER TABLE {child} ADD COLUMN {col}_id integer, ADD COLUMN {col}_part integer;")
            out.append(f"ALTER TABLE {child} ADD FOREIGN KEY ({col}_id, {col}_part) REFERENCES {parent} (id, part);")
            updates.append(f"UPDATE {child} SET {col}_id = id, {col}_part = 1 WHERE id % 4 = {links % 4};")
        else:
            out.append(f"ALTER TABLE {child} ADD COLUMN {col} integer{unique} REFERENCES {parent} (id);")
            updates.append(f"UPDATE {child} SET {col} = id WHERE id % 4 = {links % 4};")
        links += 1
    for name in names:
        extra = ", 1" if name in composite else ""
        out.append(f"INSERT INTO {name} (id{', part' if extra else ''}, payload) "
                   f"SELECT g{extra}, md5(g::text) FROM generate_series(1, 20) g;")
    return "\n".join(out + updates)
