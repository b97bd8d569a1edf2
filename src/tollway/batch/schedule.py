"""The planner: where and when each line of a batch runs, what it should cost, and the most it can cost.

A line goes to the first deployment of its route group (scheduled lines may still fail over when sent).
- A deployment with a native batch upstream and a catalog batch rate takes its lines at that rate, sent
  now (the provider runs them inside its own 24-hour window).
- Any other deployment's lines are scheduled: each is sent at the earliest moment, inside the completion
  window, whose catalog price is the cheapest the window offers (DeepSeek's off-peak hours), leaving
  enough of the window to run every line at the executor's concurrency.
Prices change only at quarter hours in every catalog rule (peak windows are whole local minutes on the
quarter, and versions start on them in practice), so the window is searched at quarter-hour steps; the
exact moment a line is sent is priced again then, so a plan is a forecast, never a charge.

A window the schedule cannot meet (too short for the lines at the configured concurrency, or longer than
`batch.max_window_h`) gives an infeasible plan whose reason names `completion_window`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Callable, Sequence

import orjson

from tollway.batch.rates import batch_tier_price, rate_of
from tollway.batch.types import BatchLine, BatchPlan, PlannedLine, Rate
from tollway.catalog import Price
from tollway.catalog.cost import try_cost_usd
from tollway.core.usage import Usage, estimate_tokens

if TYPE_CHECKING:
    from tollway.catalog.deployment_prices import DeploymentPricer
    from tollway.routing.table import RoutedDeployment, RouteTable

STEP = timedelta(minutes=15)
NATIVE_WINDOW = "24h"  # what OpenAI, Anthropic and DashScope batch APIs complete within
_WINDOW = re.compile(r"^([1-9][0-9]{0,3})h$")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """The executor's pace, which decides whether a window is long enough."""

    concurrency: int = 4
    line_estimate_s: float = 30.0
    expected_output_tokens: int = 256
    max_window_h: int = 168


def window_seconds(window: str) -> int | None:
    """"24h" -> 86400; None for anything that is not a whole number of hours."""
    match = _WINDOW.match(window) if isinstance(window, str) else None
    return int(match.group(1)) * 3600 if match else None


def plan_batch(lines: Sequence[BatchLine], table: "RouteTable", pricer: "DeploymentPricer", now: datetime,
               window: str, *, native: Callable[["RoutedDeployment", str], bool] = lambda dep, endpoint: False,
               limits: PlanLimits = PlanLimits(),
               worst_case: Callable[[BatchLine], Decimal] | None = None) -> BatchPlan:
    """The batch's schedule. `native(dep)` says whether a native batch client serves the deployment;
    `worst_case(line)` is what a line holds against budgets (admission's hold; by default the dearest
    standard rate of its group for the whole body and its max_tokens or the model's max output)."""
    now = now.astimezone(timezone.utc)
    seconds = window_seconds(window)
    deadline = now + timedelta(seconds=seconds or 0)
    run_s = math.ceil(len(lines) / limits.concurrency) * limits.line_estimate_s
    reason = ""
    if seconds is None:
        reason = f"completion_window {window!r} is not a whole number of hours such as \"24h\""
    elif seconds > limits.max_window_h * 3600:
        reason = (f"completion_window {window} is longer than this gateway keeps a batch "
                  f"(batch.max_window_h: {limits.max_window_h}h)")
    elif run_s > seconds:
        reason = (f"completion_window {window} is too short for {len(lines)} lines at batch.concurrency "
                  f"{limits.concurrency} (about {_duration(run_s)} needed at {limits.line_estimate_s:g}s a line)")
    if reason:
        return BatchPlan((), deadline, _ZERO, _ZERO, _ZERO, feasible=False, reason=reason)
    latest = deadline - timedelta(seconds=run_s)
    planner = _Planner(table, pricer, now, latest, window, native, limits)
    planned, now_cost, worst = [], _ZERO, _ZERO
    for line in lines:
        dep = planner.deployment(line)
        prompt, completion, bound = _tokens(line, limits.expected_output_tokens, dep.max_output)
        planned.append(planner.place(line, dep, prompt, completion))
        now_cost += _cost(pricer.price(dep, now, prompt), prompt, completion)
        worst += worst_case(line) if worst_case is not None else planner.dearest(line, prompt_bound=len(
            orjson.dumps(line.body)), completion_bound=bound)
    expected = sum((p.expected_cost_usd for p in planned), _ZERO)
    return BatchPlan(tuple(planned), deadline, expected, now_cost, worst)


class _Planner:
    def __init__(self, table: "RouteTable", pricer: "DeploymentPricer", now: datetime, latest: datetime,
                 window: str, native: Callable[["RoutedDeployment", str], bool], limits: PlanLimits) -> None:
        self.table, self.pricer, self.now, self.latest = table, pricer, now, latest
        self.window, self.native, self.limits = window, native, limits
        self._periods: dict[str, list[datetime]] = {}  # deployment -> the earliest moment of each price

    def deployment(self, line: BatchLine) -> "RoutedDeployment":
        group = self.table.group_for(line.model)
        assert group is not None and group.deployments, f"line {line.index + 1}: model checked before planning"
        return group.deployments[0]

    def place(self, line: BatchLine, dep: "RoutedDeployment", prompt: int, completion: int) -> PlannedLine:
        if self.window == NATIVE_WINDOW and self.native(dep, line.endpoint):
            price = batch_tier_price(self.pricer, dep, self.now, prompt)
            if price is not None:
                return PlannedLine(line.index, dep.name, "native", self.now, "batch",
                                   _cost(price, prompt, completion))
        best: tuple[Decimal, datetime, Rate] | None = None
        for moment in self._moments(dep):
            price = self.pricer.price(dep, moment, prompt)
            cost = _cost(price, prompt, completion)
            if best is None or cost < best[0]:
                best = (cost, moment, rate_of(price))
        assert best is not None
        return PlannedLine(line.index, dep.name, "scheduled", best[1], best[2], best[0])

    def dearest(self, line: BatchLine, prompt_bound: int, completion_bound: int) -> Decimal:
        group = self.table.group_for(line.model)
        costs = [_cost(self.pricer.price(dep, moment, prompt_bound), prompt_bound, completion_bound)
                 for dep in (group.deployments if group else []) for moment in (self.now, self.latest)]
        return max(costs, default=_ZERO)

    def _moments(self, dep: "RoutedDeployment") -> list[datetime]:
        """Now, and the first moment of each later price the window offers (one per distinct Price)."""
        found = self._periods.get(dep.name)
        if found is None:
            seen: dict[int, datetime] = {}
            moment = self.now
            step_start = _next_quarter(self.now)
            while moment <= self.latest:
                price = self.pricer.price(dep, moment, 0)
                seen.setdefault(id(price), moment)
                moment = step_start
                step_start += STEP
            found = self._periods[dep.name] = sorted(seen.values()) or [self.now]
        return found


def _next_quarter(at: datetime) -> datetime:
    floor = at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)
    return floor + STEP


def _tokens(line: BatchLine, expected_output: int, max_output: int) -> tuple[int, int, int]:
    """(expected prompt tokens, expected completion tokens, completion bound) of a line."""
    body = line.body
    text = orjson.dumps({k: v for k, v in body.items() if k != "model"}).decode()
    prompt = estimate_tokens(text)
    if line.endpoint == "/v1/embeddings":
        return prompt, 0, 0
    given = body.get("max_completion_tokens") or body.get("max_tokens")
    limit: int | None = given if isinstance(given, int) and given > 0 else None
    choices = body.get("n")
    n = choices if isinstance(choices, int) and choices > 0 else 1
    expected = expected_output if limit is None else min(limit, expected_output)
    return prompt, expected * n, (max_output if limit is None else limit) * n


def _cost(price: Price | None, prompt: int, completion: int) -> Decimal:
    cost = try_cost_usd(Usage(prompt_tokens=prompt, completion_tokens=completion, source="estimated"), price)
    return cost if cost is not None else _ZERO


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{max(rest // 60, 1)}m"
