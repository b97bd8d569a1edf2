"""Service-level objectives and the per-request test behind goodput.

Why: goodput is only honest if every request is judged, including the ones that failed. A request meets
the SLOs when it completed successfully AND each configured latency is within its bound; failed, timed-out
and rate-limited requests are misses, never silently dropped from the denominator.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.bench.durations import DurationError, parse_duration

SLO_KEYS = ("ttft", "tpot", "e2e", "itl")


class SloError(ValueError):
    """An --slo value that cannot be read; the message names the offending part."""


@dataclass(frozen=True, slots=True)
class Slo:
    """Upper bounds in seconds; None means no objective on that metric.

    itl bounds the longest gap between two content events of one request (a stall the user sees).
    """

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    itl_s: float | None = None

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in (self.ttft_s, self.tpot_s, self.e2e_s, self.itl_s))

    def describe(self) -> str:
        parts = [f"{k}<={v:g}ms" for k, v in self.as_ms().items() if v is not None]
        return ", ".join(parts) if parts else "none"

    def as_ms(self) -> dict[str, float | None]:
        """Bounds in milliseconds keyed by metric name (the form written to JSON)."""
        return {key: None if value is None else value * 1000.0 for key, value in
                zip(SLO_KEYS, (self.ttft_s, self.tpot_s, self.e2e_s, self.itl_s), strict=True)}


def parse_slo(text: str | None) -> Slo:
    """Read `ttft=500ms,tpot=50ms,e2e=10s[,itl=200ms]`; an empty or None text means no SLOs."""
    if not text or not text.strip():
        return Slo()
    bounds: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in SLO_KEYS:
            raise SloError(f"--slo: {part.strip()!r} is not KEY=DURATION with KEY one of {', '.join(SLO_KEYS)}")
        if key in bounds:
            raise SloError(f"--slo: {key} is given twice")
        try:
            bounds[key] = parse_duration(value, f"--slo {key}")
        except DurationError as exc:
            raise SloError(str(exc)) from exc
        if bounds[key] <= 0:
            raise SloError(f"--slo {key}: {value.strip()!r} must be greater than zero")
    return Slo(ttft_s=bounds.get("ttft"), tpot_s=bounds.get("tpot"), e2e_s=bounds.get("e2e"),
               itl_s=bounds.get("itl"))


def meets_slo(slo: Slo, ok: bool, measured_s: dict[str, float | None],
              not_applicable: frozenset[str] = frozenset()) -> bool:
    """Whether one request counts toward goodput.

    `measured_s` maps ttft/tpot/e2e/itl to seconds (itl: the request's longest gap between content
    events). A failed request is a miss. A bounded metric the request could not report (None) is a miss,
    e.g. TPOT when the server sent no usage, unless it is listed in `not_applicable`: TPOT of a one-token
    answer and ITL of a one-chunk answer do not exist, so they cannot break a bound.
    """
    if not ok:
        return False
    for key, bound in zip(SLO_KEYS, (slo.ttft_s, slo.tpot_s, slo.e2e_s, slo.itl_s), strict=True):
        if bound is None or key in not_applicable:
            continue
        value = measured_s.get(key)
        if value is None or value > bound:
            return False
    return True
