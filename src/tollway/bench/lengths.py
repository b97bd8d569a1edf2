"""Token-length distributions for synthetic workloads: `128`, `uniform:64,256`, `normal:512,128`,
`lognormal:512,0.6`.

Why: real traffic is not one fixed length, and the tail of the output-length distribution is what fills
a server's KV cache; a workload must be able to say so, and say it reproducibly (every sample comes from
a caller-seeded random.Random).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

KINDS = ("fixed", "uniform", "normal", "lognormal")


class LengthError(ValueError):
    """A length distribution that cannot be read; the message names the option and the value."""


@dataclass(frozen=True, slots=True)
class LengthDist:
    """A distribution of positive token counts.

    fixed: a. uniform: integers in [a, b]. normal: mean a, standard deviation b.
    lognormal: median a, shape sigma b. Samples are rounded and clipped to [1, cap].
    """

    kind: str
    a: float
    b: float = 0.0
    cap: int = 1_000_000

    def sample(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.randint(int(self.a), int(self.b))
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        else:
            value = rng.lognormvariate(math.log(self.a), self.b)
        return max(1, min(self.cap, int(round(value))))

    @property
    def mean(self) -> float:
        """Expected value before clipping (for reports and the planner's workload description)."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "normal":
            return self.a
        return self.a * math.exp(self.b ** 2 / 2)

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{int(self.a)}"
        return f"{self.kind}:{self.a:g},{self.b:g}"


def parse_length(text: str | int, option: str) -> LengthDist:
    """Read a length distribution given to `option` (named in any error)."""
    raw = str(text).strip()
    kind, sep, params = raw.partition(":")
    if not sep:
        kind, params = "fixed", raw
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise LengthError(f"{option}: {raw!r} has unknown kind {kind!r}; use N, uniform:MIN,MAX, "
                          f"normal:MEAN,STD or lognormal:MEDIAN,SIGMA")
    try:
        numbers = [float(p) for p in params.split(",")] if params.strip() else []
    except ValueError:
        raise LengthError(f"{option}: {raw!r} has a parameter that is not a number") from None
    want = 1 if kind == "fixed" else 2
    if len(numbers) != want:
        raise LengthError(f"{option}: {raw!r} needs {want} number(s) after '{kind}:'")
    dist = LengthDist(kind, numbers[0], numbers[1] if want == 2 else 0.0)
    _check(dist, option, raw)
    return dist


def _check(dist: LengthDist, option: str, raw: str) -> None:
    if dist.a < 1:
        raise LengthError(f"{option}: {raw!r}: the first number must be at least 1")
    if dist.kind == "fixed" and dist.a != int(dist.a):
        raise LengthError(f"{option}: {raw!r}: a fixed length must be a whole number of tokens")
    if dist.kind == "uniform" and dist.b < dist.a:
        raise LengthError(f"{option}: {raw!r}: MAX must not be below MIN")
    if dist.kind in ("normal", "lognormal") and dist.b < 0:
        raise LengthError(f"{option}: {raw!r}: the spread must not be negative")
