"""How a migration tells what it is doing: a rich progress display, or nothing (tests, scripts)."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text


class Reporter(Protocol):
    def table_started(self, label: str, *, total: int, done: int) -> None: ...

    def rows_copied(self, label: str, rows: int) -> None: ...

    def caught_up(self, service: str, *, round_no: int, applied: int, pending: int) -> None: ...

    def note(self, message: str) -> None: ...


class QuietReporter:
    """Keeps what it is told, says nothing: the reporter tests and scripts use."""

    def __init__(self) -> None:
        self.copied: dict[str, int] = {}
        self.rounds: list[tuple[str, int, int, int]] = []
        self.notes: list[str] = []

    def table_started(self, label: str, *, total: int, done: int) -> None:
        self.copied.setdefault(label, 0)

    def rows_copied(self, label: str, rows: int) -> None:
        self.copied[label] = self.copied.get(label, 0) + rows

    def caught_up(self, service: str, *, round_no: int, applied: int, pending: int) -> None:
        self.rounds.append((service, round_no, applied, pending))

    def note(self, message: str) -> None:
        self.notes.append(message)


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")


class RichReporter:
    """A progress bar per table while it copies, and a line per catch-up round."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:<36}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RowsPerSecond(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def table_started(self, label: str, *, total: int, done: int) -> None:
        self.tasks[label] = self.progress.add_task(label, total=max(total, done), completed=done)

    def rows_copied(self, label: str, rows: int) -> None:
        task = self.tasks[label]
        self.progress.advance(task, rows)
        current = self.progress.tasks[task]
        if current.total is not None and current.completed > current.total:
            self.progress.update(task, total=current.completed)  # rows written while the copy ran

    def caught_up(self, service: str, *, round_no: int, applied: int, pending: int) -> None:
        self.progress.console.log(f"{service}: catch-up round {round_no}: {applied} rows written, {pending} pending")

    def note(self, message: str) -> None:
        self.progress.console.log(message)
