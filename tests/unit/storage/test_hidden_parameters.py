"""A failing statement never carries its bound values into errors, logs or tracebacks."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from sqlalchemy import text

from courriel.errors import StorageError
from courriel.storage.db import Database, sqlite_url_for

SECRET = "s3cret-value-that-must-not-leak"


async def test_a_failing_write_hides_its_parameters(tmp_path: Path) -> None:
    db = await Database.open(sqlite_url_for(tmp_path))
    try:
        with pytest.raises(StorageError) as info:
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO no_such_table VALUES (:v)"), {"v": SECRET})
        rendered = "".join(traceback.format_exception(info.value))
        assert SECRET not in rendered
        assert "no_such_table" in rendered  # the statement is still there to debug with
    finally:
        await db.close()
