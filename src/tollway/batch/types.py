"""The vocabulary the batch package shares: a batch's lines, how each will run, and a native batch upstream.

Kept apart from the modules that store, plan and execute batches so that each of them, and each native
upstream client, depends on these records alone and not on one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, Sequence

#: The client paths a batch line may target (OpenAI's `url` field of a line).
BATCH_ENDPOINTS: tuple[str, ...] = (
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages", "/v1/responses",
)

#: How a line is priced: the catalog's batch tier, its off-peak rate, or the standard rate.
Rate = Literal["batch", "off_peak", "standard"]

#: How a line runs: handed to the provider's batch API, or sent by tollway through normal routing.
Mode = Literal["native", "scheduled"]

#: A native upstream batch's state, in OpenAI's vocabulary (other providers' states are mapped onto it).
NativeState = Literal["validating", "in_progress", "finalizing", "completed", "failed", "expired",
                      "cancelling", "cancelled"]


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a batch, as the client wrote it (the body is the endpoint's own request body)."""

    index: int              # 0-based position in the input file
    custom_id: str
    endpoint: str           # one of BATCH_ENDPOINTS
    model: str              # the route group the body names
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlannedLine:
    """Where and when one line runs, and what it is expected to cost there."""

    index: int
    deployment: str         # the deployment chosen first (scheduled lines may still fail over)
    mode: Mode
    not_before: datetime    # UTC; a scheduled line is not sent earlier
    rate: Rate
    expected_cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """A whole batch's schedule, with its cost against sending every line now at the standard rate."""

    lines: tuple[PlannedLine, ...]
    deadline: datetime                  # created_at + completion window
    expected_cost_usd: Decimal
    cost_now_usd: Decimal
    worst_case_usd: Decimal             # what the batch reserves against the key's budgets
    feasible: bool = True
    reason: str = ""                    # why not feasible (names the line or the window)


@dataclass(frozen=True, slots=True)
class NativeResult:
    """One line's outcome from a native batch upstream, in that upstream's own response shape."""

    custom_id: str
    status_code: int
    body: dict[str, Any] | None          # the upstream's response body (carries its usage)
    error: dict[str, Any] | None = None  # {"code", "message"} when the line failed upstream


@dataclass(frozen=True, slots=True)
class NativeSubmission:
    """What a native upstream returned on submit: its batch id, stored so a restart polls, never resubmits."""

    upstream_batch_id: str
    upstream_file_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class NativeBatchClient(Protocol):
    """A provider's own batch API (OpenAI Batch, DashScope batch, Anthropic Message Batches).

    Each implementation speaks one provider's wire shape; the executor only submits a share of lines,
    polls, fetches results and cancels. Errors reaching the provider raise GatewayError (core.errors).
    """

    dialect: str
    endpoints: frozenset[str]   # the line endpoints the provider batches
    max_lines: int              # per provider batch: a larger share is split by the executor
    max_bytes: int

    def ends_within_s(self, window: str) -> int:
        """The longest the provider may take for a batch given tollway's `window`; a 400 when it cannot
        promise to end inside it (those lines are scheduled instead)."""
        ...

    async def submit(self, lines: Sequence[BatchLine], upstream_model: str, window: str) -> NativeSubmission: ...

    async def state(self, submission: NativeSubmission) -> NativeState: ...

    async def results(self, submission: NativeSubmission) -> list[NativeResult]: ...

    async def cancel(self, submission: NativeSubmission) -> None: ...


@dataclass(frozen=True, slots=True)
class LineRun:
    """One line handed to the gateway to run (or, for a native result, to record) as a request of its own."""

    batch_id: str
    key_id: str             # the batch's key: the line is admitted, budgeted and billed as that key
    line: BatchLine
    request_id: str         # "<batch id>-<index>": the line's ledger row id, the same on every replica
    rate: Rate              # the rate the plan chose ("batch" for native lines)
    at: datetime            # the batch clock's now (UTC): prices the line and dates its row
    deployment: str = ""    # native lines: the deployment whose batch upstream answered


@dataclass(frozen=True, slots=True)
class LineOutcome:
    """What a line got: the response a client would have had, its exact cost, and its ledger row's rate."""

    status_code: int
    body: dict[str, Any] | None
    cost_usd: Decimal
    rate: Rate
    error: dict[str, Any] | None = None  # {"code", "message"} when status_code is not 200


class LineService(Protocol):
    """What the gateway gives the executor: a line run through a request's whole life (auth as the batch's
    key, routing, failover, residency, the budget hold and settlement, one ledger row), and a native
    upstream's result recorded the same way (priced, settled, one row) without calling anything."""

    async def run(self, run: LineRun) -> LineOutcome: ...

    async def record_native(self, run: LineRun, result: NativeResult) -> LineOutcome: ...

    async def record_unsent(self, run: LineRun, state: str, message: str) -> None:
        """The row of a line never sent (`state` cancelled or expired): who, what, nothing charged."""
        ...
