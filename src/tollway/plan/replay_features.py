"""A logged request's features in the shape routing reads, so replay runs the gateway's own planner.

The live gateway reads features from the request body (routing/features.py); replay has only what the
ledger kept. The planner asks a request for `creq.features` before computing its own, so a ClientRequest
carrying these features goes through the real residency, capability and context filters and the real
strategies. What the ledger does not keep reads as absent: no text (so no topics, no code or maths signals
for `tiers`), one message, no `user`, no reasoning effort. The prompt size is the upstream's own count
when the row has one, which is better than the gateway's estimate at request time.
"""

from __future__ import annotations

from tollway.core.request import ClientRequest
from tollway.plan.replay_rows import LoggedRequest


class ReplayFeatures:
    """Duck-types routing.features.RequestFeatures from a ledger row."""

    __slots__ = ("creq", "endpoint", "max_tokens", "needs", "prompt_tokens")

    text = ""
    cjk_share = 0.0
    topics: frozenset[str] = frozenset()
    message_count = 1
    user = None
    reasoning_effort = None

    def __init__(self, creq: ClientRequest, request: LoggedRequest) -> None:
        logged = request.features
        self.creq = creq
        self.endpoint = request.endpoint
        self.max_tokens = logged.max_tokens
        self.needs = logged.needs
        self.prompt_tokens = request.prompt_tokens or logged.prompt_tokens_estimate or 0

    @property
    def tool_count(self) -> int:
        """The ledger says whether tools were sent, not how many: one, for the complexity heuristic."""
        return 1 if "tools" in self.needs else 0

    def prompt_tokens_at_most(self) -> int:
        return self.prompt_tokens

    def describe_needs(self) -> str:
        return ", ".join(sorted(self.needs)) or "nothing special"


def replay_request(request: LoggedRequest) -> ClientRequest:
    """A body-less ClientRequest whose features are the logged ones."""
    creq = ClientRequest(request.endpoint, {}, request.requested_model, request.streamed, False, 0)
    creq.features = ReplayFeatures(creq, request)
    return creq
