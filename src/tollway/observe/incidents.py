"""Which spend findings are one incident: findings grouped by the traffic that tripped them.

One spike by one key on a shared route trips the key, its deployment and its route group, each against its
own baseline, and with other keys' traffic in the broader windows the three sums differ. What they share is
the traffic: the key's requests are inside both broader series. So a finding joins a page when the traffic
it shares with the page's lead (the sum over the cells, key x route group x deployment x provider, that are
in both series, in the finding's metric over the alert window) is at least half of the finding's excess
over its usual amount: most of what tripped it is the lead's traffic. With several such pages it joins the
one it shares most with. Findings are taken most specific first (key, deployment, provider, route group,
total), so a page is led by the narrowest series that tripped.

Two spikes by two keys are two pages: the keys share no traffic. A route group both spikes tripped joins
the page of the key that brought more of its excess. A series that trips later, on traffic a page that is
still firing already covers (its lead's condition still holds), is part of that incident: it does not page
again, and the log says which page it joined.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from tollway.observe.baselines import Series
from tollway.observe.settings import ThresholdRule
from tollway.observe.window_sums import Cell

log = logging.getLogger("tollway.alerts")

_SPECIFICITY = {"key": 0, "deployment": 1, "provider": 2, "route_group": 3, "total": 4}
_CELL_FIELD = {"key": 0, "route_group": 1, "deployment": 2, "provider": 3}


@dataclass(frozen=True)
class Finding:
    """A series whose window passed its limit, what was seen per metric and what was expected."""

    series: Series
    seen: tuple[tuple[str, Decimal], ...]
    expected: dict[str, Decimal]
    basis: str
    rule: ThresholdRule | None = None

    @property
    def metric(self) -> str:
        """The metric the page leads with: spend when spend tripped, else tokens."""
        return "cost_usd" if any(metric == "cost_usd" for metric, _ in self.seen) else self.seen[0][0]

    @property
    def excess(self) -> Decimal:
        return dict(self.seen)[self.metric] - self.expected[self.metric]


def specific_first(finding: Finding) -> tuple[int, str]:
    return _SPECIFICITY[finding.series[0]], finding.series[1]


def in_series(cell: Cell, series: Series) -> bool:
    scope, name = series
    return scope == "total" or cell[_CELL_FIELD[scope]] == name


def shared_traffic(cells: dict[Cell, Decimal], first: Series, second: Series) -> Decimal:
    """The amount of the window's traffic that counts towards both series."""
    return sum((amount for cell, amount in cells.items() if in_series(cell, first) and in_series(cell, second)),
               Decimal(0))


class Incidents:
    """Groups each evaluation's findings into pages, and remembers the leads of pages still firing."""

    def __init__(self) -> None:
        self._open: list[Series] = []

    def group(self, findings: list[Finding], cells: Callable[[str], dict[Cell, Decimal]],
              firing: Callable[[Series], bool]) -> list[list[Finding]]:
        """The pages to send, each a list of findings led by its most specific one. `cells(metric)` gives
        each cell's amount over the window; `firing(series)` whether its condition still holds."""
        rising = {finding.series for finding in findings}
        self._open = [lead for lead in self._open if firing(lead) and lead not in rising]
        pages: list[list[Finding]] = []
        by_metric: dict[str, dict[Cell, Decimal]] = {}
        for finding in sorted(findings, key=specific_first):
            amounts = by_metric.get(finding.metric)
            if amounts is None:
                amounts = by_metric[finding.metric] = cells(finding.metric)
            page = self._page_of(finding, amounts, pages)
            if page is None:
                pages.append([finding])
            elif isinstance(page, list):
                page.append(finding)
            else:
                log.info("%s %s tripped on the traffic of the open alert on %s %s: not paged again",
                         *finding.series, *page)
        self._open += [page[0].series for page in pages]
        return pages

    def _page_of(self, finding: Finding, cells: dict[Cell, Decimal],
                 pages: list[list[Finding]]) -> list[Finding] | Series | None:
        """The new page (a list) or open page (its lead) whose lead's traffic tripped `finding`, or None."""
        best: list[Finding] | Series | None = None
        best_shared = Decimal(0)
        candidates: list[tuple[Series, list[Finding] | Series]] = [(lead, lead) for lead in self._open]
        candidates += [(page[0].series, page) for page in pages]
        for lead, page in candidates:
            shared = shared_traffic(cells, finding.series, lead)
            if shared * 2 >= finding.excess and shared > best_shared:
                best, best_shared = page, shared
        return best
