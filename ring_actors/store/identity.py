"""The server's identity: a UUID created once per database.

Every instance is labelled with it (`ring_actors.server`), so orphan reaping only
ever touches instances this server (this database) created.
"""

from __future__ import annotations

import sqlite3
import uuid

from ring_actors.store.db import Database


async def server_identity(db: Database) -> str:
    def run(conn: sqlite3.Connection) -> str:
        row = conn.execute("SELECT value FROM server_info WHERE key='server_id'").fetchone()
        if row:
            return row[0]
        value = str(uuid.uuid4())
        conn.execute("INSERT INTO server_info (key, value) VALUES ('server_id', ?)", (value,))
        return value

    return await db.call(run)
