"""The per-episode results file: one CSV row per finished episode, appended and synced one line
at a time, so a run killed at any moment loses at most the episode in flight, and a rerun
skips every episode already on disk.

Columns (``RESULT_FIELDS``):

    task, arm, split, seed        the job (the key; unique in a file)
    success                       1 or 0
    failure_reason                the sim's reason ("" on success; e.g. "timeout", "dropped")
    duration_s                    episode length in virtual s
    ticks                         control ticks executed
    plans                         plans that reached the controller
    plan_latency_mean_s, plan_latency_max_s
                                  observation -> plan arrival, virtual s (incl. injected delay)
    tick_compute_mean_s, tick_compute_max_s
                                  wall s spent computing one control tick
    overruns                      ticks whose compute exceeded the tick period
    safety_events                 actions the safety filter changed or stopped
    safety_kinds                  those interventions by kind, "kind:count;..." (most first)
    wall_s                        wall s the episode took to simulate
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dualctl.errors import DataError


@dataclass(frozen=True)
class Job:
    """One episode to run. The same (task, split, seed) is run by every arm."""

    task: str
    arm: str
    split: str
    seed: int
    record_video: bool = False

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.task, self.arm, self.split, self.seed)


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode produced; see the module doc for each column."""

    task: str
    arm: str
    split: str
    seed: int
    success: bool
    failure_reason: str = ""
    duration_s: float = 0.0
    ticks: int = 0
    plans: int = 0
    plan_latency_mean_s: float = float("nan")
    plan_latency_max_s: float = float("nan")
    tick_compute_mean_s: float = float("nan")
    tick_compute_max_s: float = float("nan")
    overruns: int = 0
    safety_events: int = 0
    safety_kinds: str = ""
    wall_s: float = 0.0

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.task, self.arm, self.split, self.seed)

    def to_row(self) -> list[str]:
        row = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                row.append(str(int(value)))
            elif isinstance(value, float):
                row.append(f"{value:.6g}")
            else:
                row.append(str(value))
        return row

    @classmethod
    def from_row(cls, row: dict[str, str]) -> EpisodeResult:
        values = {}
        for f in dataclasses.fields(cls):
            text = row[f.name]
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            if kind == "bool":
                values[f.name] = text.strip() in ("1", "True", "true")
            elif kind == "int":
                values[f.name] = int(text)
            elif kind == "float":
                values[f.name] = float(text)
            else:
                values[f.name] = text
        return cls(**values)


RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(EpisodeResult))


class ResultsStore:
    """Append-only CSV of :class:`EpisodeResult`, readable while it is being written.

    Opening an existing file reads what is there (dropping a last line cut off by a crash) so
    :meth:`done` can tell the runner what to skip.
    """

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._results: dict[tuple, EpisodeResult] = {}
        if self.path.exists():
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append_line(RESULT_FIELDS)

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data) and not self.read_only:
            # A crash mid-write left a partial last row: cut it so the rerun redoes that episode.
            with open(self.path, "r+b") as file:
                file.truncate(len(complete))
                file.flush()
                os.fsync(file.fileno())
        reader = csv.DictReader(io.StringIO(complete.decode()))
        if not complete:
            if not self.read_only:
                self._append_line(RESULT_FIELDS)
            return
        if tuple(reader.fieldnames or ()) != RESULT_FIELDS:
            raise DataError(
                f"results file {self.path} has columns {reader.fieldnames}, expected "
                f"{list(RESULT_FIELDS)}; move it away or choose another ablate.out"
            )
        for row in reader:
            result = EpisodeResult.from_row(row)
            self._results[result.key] = result

    def _append_line(self, values: Iterable[str]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(buffer.getvalue())
            file.flush()
            os.fsync(file.fileno())

    def done(self, key: tuple) -> bool:
        return key in self._results

    def add(self, result: EpisodeResult) -> None:
        """Append one result durably; a key already present is an error (no double counting)."""
        if self.read_only:
            raise DataError(f"results file {self.path} was opened read-only")
        if result.key in self._results:
            raise DataError(f"results file {self.path} already holds {result.key}")
        self._append_line(result.to_row())
        self._results[result.key] = result

    def results(self) -> list[EpisodeResult]:
        return list(self._results.values())

    def __len__(self) -> int:
        return len(self._results)


def read_results(path: Path) -> list[EpisodeResult]:
    """Every result in a results file (for reports on a finished or running ablation)."""
    if not Path(path).is_file():
        raise DataError(f"results file {path} does not exist; run `dualctl ablate` first")
    return ResultsStore(path, read_only=True).results()
