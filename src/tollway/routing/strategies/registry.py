"""The routing strategies by name: what `strategy:` in a route group may say.

Adding a strategy: its module beside these (options model, rank step, what explain and replay show),
one line here, and its tests; docs/routing.md lists the recipe.
"""

from __future__ import annotations

from tollway.routing.strategies.base import Strategy
from tollway.routing.strategies.cheapest import Cheapest
from tollway.routing.strategies.fastest import Fastest
from tollway.routing.strategies.priority import Priority
from tollway.routing.strategies.tiers import Tiers
from tollway.routing.strategies.weighted import Weighted

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (Priority(), Cheapest(), Fastest(), Weighted(), Tiers())}
DEFAULT = "priority"

# option key -> the strategy it belongs to, so a key given to another strategy is named as such
OPTION_OWNERS: dict[str, str] = {key: s.name for s in STRATEGIES.values() for key in s.options.model_fields}


def names_text() -> str:
    """The known names as pydantic words a choice ('priority', 'cheapest' or 'tiers'), for the config's error."""
    quoted = [repr(name) for name in STRATEGIES]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
