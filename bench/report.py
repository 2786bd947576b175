"""The benchmark's results as a Markdown table: measurements, ratios, and each of issue 6's targets met or not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bench.measure import Measurement
from bench.migration import MigrationRun

MB = 2**20
# Issue 6's targets.
ENGINE_VS_LIMIT = 1.0     # engine import rows/s >= the sequential COPY pipe's
ENGINE_VS_SEED = 25.0     # engine import rows/s >= 25x one INSERT per row
MIGRATION_VS_LIMIT = 3.0  # whole migration < 3x the limit's copy time
MAX_RSS = 250 * MB        # worker peak RSS
FLAT = 1.25               # peak RSS at the large size at most this times the small size's
MAX_FREEZE = 5.0          # seconds a steady writer cannot write (online mode)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


@dataclass
class Report:
    command: str
    rows: int
    small_rows: int
    copies: list[Measurement]
    migrations: dict[int, MigrationRun]
    cores: int
    postgres: str
    load: float
    python: str
    mode: str
    total_seconds: float

    def _copy(self, name: str) -> Measurement:
        return next(m for m in self.copies if m.name == name)

    def markdown(self) -> str:
        return "\n".join([*self._header(), "", *self._table(), "", *self._writer(), "", *self._targets(), ""])

    def _header(self) -> list[str]:
        lines = [
            "# Benchmark: moving one large tenant (issue 6)", "",
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; `{self.command}`"
            f" ({self.total_seconds:.0f} s in all)",
            f"- machine: {self.cores} cores, load average {self.load:.2f} at start; {self.postgres}; "
            f"Python {self.python}",
            f"- tenant: {self.rows:,} rows planned (most in AuditLog and CommunicationLog) among the three demo "
            "orchestras; every measurement loads into a new database created for it",
            f"- migration mode: {self.mode}; options passed: {self._options() or 'none beyond the defaults'}",
        ]
        large, small = self.migrations[self.rows], self.migrations[self.small_rows]
        if large.rows < 2 * small.rows:
            lines.append(f"- the two migrated tenants hold {small.rows:,} and {large.rows:,} rows (the seed's fixed "
                         "part is about 45,000 rows): too close for the memory comparison to show flatness")
        if self.load > self.cores / 2:
            lines.append(f"- **the machine was loaded** (load average {self.load:.2f} on {self.cores} cores): "
                         "these numbers are noisy, not a reference")
        return lines

    def _options(self) -> str:
        run = next(iter(self.migrations.values()), None)
        return ", ".join(f"{k}={v}" for k, v in (run.options if run else {}).items())

    def _table(self) -> list[str]:
        lines = ["| measurement | rows | seconds | rows/s | peak RSS | notes |", "| --- | ---: | ---: | ---: | ---: | --- |"]
        for m in self.copies:
            rss = f"{m.rss / MB:.0f} MB" if m.rss else "-"
            lines.append(f"| {m.name} | {m.rows:,} | {m.seconds:.2f} | {m.rate:,.0f} | {rss} | {m.note} |")
        for size, run in sorted(self.migrations.items()):
            steps = ", ".join(f"{name} {sec:.1f}" for name, sec in run.steps.items() if sec >= 0.05)
            lines.append(f"| migration (seeded {size:,}) | {run.rows:,} | {run.seconds:.2f} | "
                         f"{_ratio(run.rows, run.seconds):,.0f} | {run.worker_peak_rss / MB:.0f} MB | approval to completed;"
                         f" worker RSS {run.worker_start_rss / MB:.0f} MB before; steps (s): {steps} |")
        return lines

    def _writer(self) -> list[str]:
        lines = ["| migration | writes acknowledged | of them on dedicated | errors | longest freeze seen by "
                 "writer | maintenance on -> off (workflow) | writer's live rows expected | found in dedicated |"
                 " missing | wrong | left in shared |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for size, run in sorted(self.migrations.items()):
            w, c = run.writer, run.check
            window = f"{run.freeze_workflow:.2f} s" if run.freeze_workflow is not None else "-"
            lines.append(f"| seeded {size:,} | {w.writes:,} | {w.writes_to_dedicated:,} | {w.errors} |"
                         f" {w.longest_gap:.2f} s | {window} | {c.expected:,} | {c.found:,} | {c.missing} |"
                         f" {c.wrong} | {c.left_in_shared} |")
        errors = [f"{size:,} rows: {run.writer.last_error}" for size, run in sorted(self.migrations.items())
                  if run.writer.last_error]
        if errors:
            lines += ["", "Writer's last error: " + "; ".join(errors)]
        return lines

    def _targets(self) -> list[str]:
        limit, seed, engine = self._copy("limit"), self._copy("seed"), self._copy("engine import")
        large, small = self.migrations[self.rows], self.migrations[self.small_rows]
        e_l, e_s = _ratio(engine.rate, limit.rate), _ratio(engine.rate, seed.rate)
        m_l, flat = _ratio(large.seconds, limit.seconds), _ratio(large.worker_peak_rss, small.worker_peak_rss)
        rows = [
            ("engine/limit (import rows/s)", f"{e_l:.2f}x", f">= {ENGINE_VS_LIMIT:.1f}x", e_l >= ENGINE_VS_LIMIT),
            ("engine/seed (import rows/s)", f"{e_s:.1f}x", f">= {ENGINE_VS_SEED:.0f}x", e_s >= ENGINE_VS_SEED),
            (f"migration/limit (seconds, {large.rows:,} rows)", f"{m_l:.2f}x", f"< {MIGRATION_VS_LIMIT:.0f}x",
             m_l < MIGRATION_VS_LIMIT),
            (f"worker peak RSS at {small.rows:,} / {large.rows:,} rows",
             f"{small.worker_peak_rss / MB:.0f} / {large.worker_peak_rss / MB:.0f} MB", f"< {MAX_RSS // MB} MB",
             max(small.worker_peak_rss, large.worker_peak_rss) < MAX_RSS),
            ("worker peak RSS flat in tenant size", f"{flat:.2f}x", f"<= {FLAT:.2f}x", flat <= FLAT),
            (f"write freeze seen by a steady writer ({large.rows:,} rows)", f"{large.writer.longest_gap:.2f} s",
             f"< {MAX_FREEZE:.0f} s (online mode)", large.writer.longest_gap < MAX_FREEZE),
            ("every acknowledged write in the dedicated database",
             ", ".join(f"{r.check.found:,}/{r.check.expected:,}" for _, r in sorted(self.migrations.items())),
             "all, none stale", all(r.check.ok for r in self.migrations.values())),
        ]
        lines = ["| target | measured | goal | met |", "| --- | ---: | --- | --- |"]
        lines += [f"| {name} | {value} | {goal} | {'met' if ok else '**not met**'} |" for name, value, goal, ok in rows]
        return lines
