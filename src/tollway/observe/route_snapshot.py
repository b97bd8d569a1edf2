"""The quiet downgrade/upgrade guard: did a config change repoint a public model to another price class?

Changing `deployments: [...]` of a route group, or moving an alias, is one line in a YAML file; if it
sends `gpt-4o-mini` traffic to a model eight times dearer (or to a much weaker one), nothing fails and
the invoice is the first to notice. So at each start the gateway writes, next to its ledger, what every
public model name resolves to (its first deployment, provider, upstream model and blended price), and
compares with what the previous start wrote. A public model whose first deployment is now priced
`repoint_price_factor` times higher or lower (or went from free to paid, or from priced to unknown) is
one alert; names that moved together (a group and its aliases) share that alert.

Blended price = (3 x input + output) / 4 USD per million tokens: a typical chat mix, so a swap that only
moves the output rate still counts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from tollway.core.alerts import Alert

if TYPE_CHECKING:
    from tollway.catalog.deployment_prices import DeploymentPricer
    from tollway.routing.table import RouteTable

log = logging.getLogger("tollway.alerts")
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Target:
    """What one public model name is served by first."""

    deployment: str
    provider: str
    model: str
    blended_usd_per_m: str | None  # exact decimal text; None when the price is unknown

    @property
    def blended(self) -> Decimal | None:
        return None if self.blended_usd_per_m is None else Decimal(self.blended_usd_per_m)

    def describe(self) -> str:
        price = "unknown price" if self.blended_usd_per_m is None else f"${self.blended_usd_per_m}/M blended"
        return f"{self.deployment} ({self.provider}/{self.model}, {price})"


def state_path(ledger_path: Path) -> Path:
    """`<ledger>.routes.json` beside the ledger file."""
    return ledger_path.with_name(ledger_path.name + ".routes.json")


def current_targets(table: RouteTable, pricer: DeploymentPricer, at: datetime) -> dict[str, Target]:
    targets = {}
    for public in table.public_names():
        group = table.group_for(public)
        if group is None or not group.deployments:
            continue
        dep = group.deployments[0]
        targets[public] = Target(dep.name, dep.provider, dep.upstream_model, _blended(pricer, dep, at))
    return targets


def _blended(pricer: DeploymentPricer, dep, at: datetime) -> str | None:
    price = pricer.price(dep, at)
    if price is None or price.input.is_nan() or price.output.is_nan():
        return None
    return f"{((price.input * 3 + price.output) / 4).normalize():f}"


def load_targets(path: Path) -> dict[str, Target] | None:
    """The previous start's targets; None on the first start (or an unreadable file, which is logged)."""
    try:
        data = orjson.loads(path.read_bytes())
        return {name: Target(**fields) for name, fields in data["targets"].items()}
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        log.warning("%s is not a route snapshot tollway can read (%s); starting a new one", path, type(exc).__name__)
        return None


def save_targets(path: Path, targets: dict[str, Target]) -> None:
    """Write atomically: a crash mid-write must not lose the previous snapshot."""
    data = {"version": STATE_VERSION, "written_at": datetime.now(UTC).isoformat(),
            "targets": {name: _fields(t) for name, t in targets.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)


def _fields(target: Target) -> dict[str, object]:
    return {"deployment": target.deployment, "provider": target.provider, "model": target.model,
            "blended_usd_per_m": target.blended_usd_per_m}


def price_class_changed(old: Target, new: Target, factor: Decimal) -> bool:
    a, b = old.blended, new.blended
    if a is None or b is None:
        return (a is None) != (b is None)
    if a == 0 or b == 0:
        return a != b
    ratio = b / a
    return ratio >= factor or ratio <= 1 / factor


def repoint_alerts(previous: dict[str, Target], current: dict[str, Target], factor: Decimal) -> list[Alert]:
    """One alert per distinct (old target -> new target) move that crosses a price class."""
    moves: dict[tuple[Target, Target], list[str]] = {}
    for public, new in current.items():
        old = previous.get(public)
        if old is None or old == new:
            continue
        if price_class_changed(old, new, factor):
            moves.setdefault((old, new), []).append(public)
        else:
            log.info("public model %s now served by %s (was %s), same price class", public, new.describe(),
                     old.describe())
    return [_alert(old, new, names) for (old, new), names in moves.items()]


def _alert(old: Target, new: Target, names: list[str]) -> Alert:
    a, b = old.blended, new.blended
    if a is not None and b is not None and a > 0 and b > 0:
        change = f"{'upgrade' if b > a else 'downgrade'}: {b / a:.2f}x the price"
    else:
        change = "price class changed"
    listed = ", ".join(sorted(names))
    return Alert(
        kind="route_repointed", severity="critical", scope="public_model", subject=listed,
        title=f"Public model {listed} repointed from {old.deployment} to {new.deployment} ({change})",
        detail=f"Since the last start, {listed} is served first by {new.describe()} instead of "
               f"{old.describe()}. If this was not intended, revert the route group or alias in the config.",
        value=new.blended_usd_per_m or "unknown", expected=old.blended_usd_per_m or "unknown")
