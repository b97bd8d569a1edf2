"""The translation rows: tollway's CPU per request on its other client endpoints and upstream dialects,
beside its own chat path in the same run.

Each row is one client endpoint to one upstream shape on the fake upstream, closed loop with wrk like the
chat modes and in the same rounds, so a row's ratio to the chat path of its mode (streamed or not) is
read within one run. `native` rows are the same-dialect fast path (the client's body goes upstream as it
is); `translated` rows go through the canonical Chat Completions request, in one direction or both.
Responses requests are sent with `store: false`: the rows price the translation, not the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from wrk import chat_body

PROMPT = "Say hello in one short sentence, please."


@dataclass(frozen=True)
class Row:
    name: str
    path: str
    group: str
    kind: str  # "chat", "messages" or "responses": the client's body

    def body(self, stream: bool) -> str:
        if self.kind == "chat":
            return chat_body(self.group, stream)
        if self.kind == "messages":
            body: dict = {"model": self.group, "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]}
        else:
            body = {"model": self.group, "max_output_tokens": 64, "input": PROMPT, "store": False}
        if stream:
            body["stream"] = True
        return json.dumps(body, separators=(",", ":"))


ROWS = (
    Row("/v1/messages -> OpenAI upstream (translated both ways)", "/v1/messages", "chat", "messages"),
    Row("/v1/messages -> Anthropic upstream (native)", "/v1/messages", "claude", "messages"),
    Row("/v1/responses -> DeepSeek upstream (translated both ways)", "/v1/responses", "ds", "responses"),
    Row("/v1/responses -> OpenAI upstream (native)", "/v1/responses", "chat", "responses"),
    Row("/v1/chat/completions -> Anthropic upstream (translated)", "/v1/chat/completions", "claude", "chat"),
)


def key(row: Row, mode: str) -> str:
    return f"{row.name} | {mode}"
