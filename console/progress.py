"""Render a migration's status for a terminal: state, step, a progress bar, per-table rows."""

from __future__ import annotations

from activities.models import MigrationStatus


def bar(percent: int, width: int = 30) -> str:
    filled = round(width * max(0, min(percent, 100)) / 100)
    return "[" + "#" * filled + "." * (width - filled) + f"] {percent:3d}%"


def render_status(status: MigrationStatus) -> str:
    lines = [f"{status.tenant_id}: {status.state.value} at {status.step} {bar(status.progress)}"]
    if status.stats:
        figures = ", ".join(f"{k} {v:,}" for k, v in status.stats.figures.items())
        lines.append(f"  tenant: {status.stats.rows:,} rows, {status.stats.bytes / 1e6:.1f} MB" +
                     (f"; {figures}" if figures else ""))
    if status.scheduled_at:
        lines.append(f"  scheduled for {status.scheduled_at.isoformat()}")
    for name, table in status.tables.items():
        mark = "done" if table.done else "    "
        lines.append(f"  {mark} {name:<24} {table.rows_done:>10,} / {table.rows_total:,}")
    for step, timing in status.timings.items():
        if timing.seconds is not None:
            lines.append(f"  {step:<16} {timing.seconds:8.2f} s")
    if status.last_error:
        lines.append(f"  last error: {status.last_error}")
    lines += [f"  ignored: {line}" for line in status.ignored_signals]
    return "\n".join(lines)
