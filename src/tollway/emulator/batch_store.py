"""What the emulator's batch APIs remember: uploaded files, batches on their timelines, and each line's runs.

A batch is rehearsed on a timeline instead of a worker: it validates for `validating_s`, then its lines
finish one after another across `duration_s`, each run the moment a request observes that it is due. So a
test that polls sees validating, then in_progress with a growing count, then the end, and no background
task can outlive a test. Every run of a line is counted by its custom_id, which is how a test proves that
a gateway restart did not send a line to the provider twice.
"""

from __future__ import annotations

import collections
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

#: How a line ended: its HTTP status and the body the provider would have answered, or why it never ran.
LineEnd = Literal["ok", "error", "cancelled", "expired"]
#: Where a batch is on its timeline, in OpenAI's words (the Anthropic renderer maps them onto its own).
Phase = Literal["validating", "failed", "in_progress", "completed", "cancelling", "cancelled", "expired"]
#: The kinds of failure a configured partial failure may give a line (error_bodies.py renders each dialect's).
LineFailure = Literal["server_error", "rate_limit", "overloaded", "invalid_request", "context_length"]

BATCH_HEADERS = {"validating_s": "x-emulator-batch-validating-s", "duration_s": "x-emulator-batch-duration-s",
                 "fail_every": "x-emulator-batch-fail-every", "expire_after_s": "x-emulator-batch-expire-after-s"}


class BatchSettings(BaseModel):
    """How emulated batches behave; the control API sets the defaults, request headers override per batch."""

    model_config = ConfigDict(extra="forbid")

    validating_s: float = Field(default=0.0, ge=0)    # time in "validating" before the first line runs
    duration_s: float = Field(default=0.5, ge=0)      # time over which the lines finish, evenly spaced
    fail_every: int | None = Field(default=None, ge=1)  # every Nth line (1-based) fails
    fail_kind: LineFailure = "server_error"
    fail_status: int | None = Field(default=None, ge=400, le=599)  # the server_error status (500 if unset)
    expire_after_s: float | None = Field(default=None, ge=0)  # lines not run by then expire with the batch

    def overridden(self, headers: Any) -> "BatchSettings":
        """These settings with the per-batch header overrides a request carries."""
        given = {name: headers[header] for name, header in BATCH_HEADERS.items() if header in headers}
        return self.model_validate({**self.model_dump(), **given}) if given else self


@dataclass
class StoredFile:
    """One file of the Files API: a client's upload or a batch's output."""

    id: str
    dialect: str
    filename: str
    purpose: str
    content: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))


@dataclass(frozen=True, slots=True)
class Line:
    """One request of a batch as the provider received it."""

    custom_id: str
    url: str
    body: Any


@dataclass(frozen=True, slots=True)
class LineResult:
    """How one line ended; `body` is the answer or the error body, None for a line that never ran."""

    end: LineEnd
    status: int
    body: dict[str, Any] | None


#: Runs one line the way the emulator answers that request: (line, its 1-based position, settings) -> result.
LineRunner = Callable[[Line, int, BatchSettings], LineResult]


@dataclass
class EmulatedBatch:
    """One batch on its timeline. `advance` must be called before the batch is read."""

    id: str
    dialect: str
    settings: BatchSettings
    lines: list[Line]
    created: float                                  # wall-clock seconds
    validation_error: dict[str, Any] | None = None  # {"code","message","line"}: the batch fails validating
    attributes: dict[str, Any] = field(default_factory=dict)  # the create request's own fields, echoed back
    results: dict[int, LineResult] = field(default_factory=dict)
    phase: Phase = "validating"
    at: dict[str, float] = field(default_factory=dict)  # phase -> when it began (in_progress, cancelling, ...)

    @property
    def started(self) -> float:
        return self.created + self.settings.validating_s

    def due(self, index: int) -> float:
        """When line `index` (0-based) finishes: the lines share the duration evenly."""
        return self.started + self.settings.duration_s * (index + 1) / max(1, len(self.lines))

    @property
    def ended(self) -> bool:
        return self.phase in ("failed", "completed", "cancelled", "expired")

    def advance(self, now: float, run: LineRunner) -> None:
        """Move the batch to `now`: run every line that is due, and enter the phase the clock says."""
        if self.ended:
            return
        if self.phase == "validating":
            if now < self.started:
                return
            if self.validation_error is not None:
                self._enter("failed", self.started)
                return
            self._enter("in_progress", self.started)
        if self.phase == "cancelling":
            self._stop("cancelled", now)
            return
        deadline = self.created + self.settings.expire_after_s if self.settings.expire_after_s is not None else None
        for index, line in enumerate(self.lines):
            if index in self.results:
                continue
            due = self.due(index)
            if due > now or (deadline is not None and due > deadline):
                break
            self.results[index] = run(line, index + 1, self.settings)
        if len(self.results) == len(self.lines):
            self._enter("completed", max(self.due(len(self.lines) - 1), self.started))
        elif deadline is not None and now >= deadline:
            self._stop("expired", deadline)

    def cancel(self, now: float, run: LineRunner) -> None:
        """Stop taking new lines; the ones already finished keep their results."""
        self.advance(now, run)
        if self.phase in ("validating", "in_progress"):
            self._enter("cancelling", now)

    def _stop(self, phase: Phase, when: float) -> None:
        end: LineEnd = "cancelled" if phase == "cancelled" else "expired"
        for index in range(len(self.lines)):
            self.results.setdefault(index, LineResult(end, 0, None))
        self._enter(phase, when)

    def _enter(self, phase: Phase, when: float) -> None:
        self.phase = phase
        self.at[phase] = when

    def counts(self) -> collections.Counter:
        """Lines by how they ended so far."""
        return collections.Counter(result.end for result in self.results.values())


class BatchStore:
    """Files and batches per dialect, the default settings, and how often each custom_id was run."""

    def __init__(self) -> None:
        self.settings = BatchSettings()
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, EmulatedBatch] = {}
        self.executions: collections.Counter = collections.Counter()

    def reset(self, settings: bool = False) -> None:
        """Forget files, batches and run counts; with `settings`, restore the default settings too."""
        self.files.clear()
        self.batches.clear()
        self.executions.clear()
        if settings:
            self.settings = BatchSettings()

    def add_file(self, dialect: str, filename: str, purpose: str, content: bytes, prefix: str) -> StoredFile:
        stored = StoredFile(f"{prefix}{uuid.uuid4().hex[:24]}", dialect, filename, purpose, content)
        self.files[stored.id] = stored
        return stored

    def file(self, dialect: str, file_id: str) -> StoredFile | None:
        """A file as one provider sees it: another provider's files do not exist there."""
        stored = self.files.get(file_id)
        return stored if stored is not None and stored.dialect == dialect else None

    def batch(self, dialect: str, batch_id: str) -> EmulatedBatch | None:
        found = self.batches.get(batch_id)
        return found if found is not None and found.dialect == dialect else None

    def add_batch(self, batch: EmulatedBatch) -> EmulatedBatch:
        self.batches[batch.id] = batch
        return batch

    def counted(self, run: LineRunner) -> LineRunner:
        """`run`, counting each execution by custom_id."""
        def counting(line: Line, position: int, settings: BatchSettings) -> LineResult:
            self.executions[line.custom_id] += 1
            return run(line, position, settings)
        return counting


BATCHES = web.AppKey("emulator_batches", BatchStore)
