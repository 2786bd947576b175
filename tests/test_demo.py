"""The README's main command: the demo on a fresh state directory, with the real Temporal dev server."""

from __future__ import annotations

from activities.models import State
from console.demo import run_demo
from tenantmove.pgserver import LocalPostgres
from tenantmove.settings import Settings


async def test_demo_migrates_an_orchestra_end_to_end(tmp_path):
    settings = Settings(state_dir=tmp_path, shared_database_url=None, postgres_admin_url=None, log_format="json")
    lines: list[str] = []
    try:
        report = await run_demo(settings, out=lines.append)
        again = await run_demo(settings, out=lines.append, target="neon")  # the next orchestra, through Neon
    finally:
        for name in ("pg-shared", "pg-dedicated"):
            LocalPostgres(tmp_path / name).destroy()
    assert report.state is State.COMPLETED and again.state is State.COMPLETED
    assert report.tenant_id != again.tenant_id
    assert report.database.kind == "postgres" and again.database.kind == "neon"
    assert "local Neon API at http://127.0.0.1:" in "\n".join(lines)
    text = "\n".join(lines)
    assert "Temporal UI: http://127.0.0.1:" in text and "cleanup done" in text and "100%" in text
    assert report.tables["Musician"] > 0 and report.cleanup_done
