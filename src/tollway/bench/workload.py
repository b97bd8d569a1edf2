"""What the benchmark sends: synthetic prompts, a JSONL file of prompts, or shared-prefix prompts.

Why: the same workload must hit every target, and the same run must be repeatable. Request number i is a
pure function of (workload, seed, i): it does not depend on concurrency, timing or which target runs
first, so targets are compared on identical requests and a fingerprint in the JSON proves it.

Synthetic prompts are built from common English words that are one token each in the usual BPE
vocabularies, so N words are about N prompt tokens; the server's reported usage is still what the
reports use, and the JSON shows requested against reported lengths.
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tollway.bench.lengths import LengthDist

WORDS = (
    "the", "time", "people", "year", "way", "day", "man", "thing", "woman", "life", "child", "world",
    "school", "state", "family", "student", "group", "country", "problem", "hand", "part", "place",
    "case", "week", "company", "system", "program", "question", "work", "government", "number", "night",
    "point", "home", "water", "room", "mother", "area", "money", "story", "fact", "month", "lot", "right",
    "study", "book", "eye", "job", "word", "business", "issue", "side", "kind", "head", "house", "service",
    "friend", "father", "power", "hour", "game", "line", "end", "member", "law", "car", "city", "name",
    "team", "minute", "idea", "kid", "body", "back", "parent", "face", "others", "level", "office", "door",
    "health", "person", "art", "war", "history", "party", "result", "change", "morning", "reason",
    "research", "girl", "guy", "moment", "air", "teacher", "force", "education", "good", "new", "first",
    "last", "long", "great", "little", "own", "other", "old", "big", "high", "small", "large", "next",
    "early", "young", "important", "few", "public", "bad", "same", "able", "make", "know", "take", "see",
)


class WorkloadError(ValueError):
    """A workload that cannot be built; the message names the file, line or option at fault."""


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request of the workload, independent of any target.

    output_tokens: the output length to request (exactly, where the server allows); None lets the
    server decide. prompt_tokens_hint: the intended prompt length (synthetic workloads only).
    """

    index: int
    messages: tuple[dict[str, str], ...]
    output_tokens: int | None
    prompt_tokens_hint: int | None = None
    prefix_group: int | None = None


class Workload(ABC):
    """A deterministic, endless sequence of requests."""

    kind: str = ""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    @abstractmethod
    def request(self, index: int) -> RequestSpec:
        """Request number `index` (0-based); the same index always gives the same request."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The parameters that define this workload (written to the JSON as provenance)."""

    def fingerprint(self, sample: int = 32) -> str:
        """A short hash of the description and the first `sample` requests: equal hashes, equal work."""
        digest = hashlib.sha256(orjson.dumps(self.describe(), option=orjson.OPT_SORT_KEYS))
        for index in range(sample):
            spec = self.request(index)
            digest.update(orjson.dumps([spec.messages, spec.output_tokens]))
        return digest.hexdigest()[:16]

    def _rng(self, index: int, stream: str = "req") -> random.Random:
        return random.Random(f"{self.seed}/{stream}/{index}")


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


class SyntheticWorkload(Workload):
    """Prompts of random common words with lengths drawn from input/output distributions."""

    kind = "synthetic"

    def __init__(self, input_tokens: LengthDist, output_tokens: LengthDist, seed: int) -> None:
        super().__init__(seed)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens

    def request(self, index: int) -> RequestSpec:
        rng = self._rng(index)
        n_in = self.input_tokens.sample(rng)
        n_out = self.output_tokens.sample(rng)
        return RequestSpec(index, ({"role": "user", "content": _words(rng, n_in)},), n_out, n_in)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "input_tokens": self.input_tokens.describe(),
                "output_tokens": self.output_tokens.describe()}


class SharedPrefixWorkload(Workload):
    """Requests that share one of `groups` long system prompts, followed by a unique user question.

    Why: prefix caching changes TTFT and cost a lot; this workload shows how much a target gains from it
    (compare against the synthetic workload with the same total input length).
    """

    kind = "shared_prefix"

    def __init__(self, prefix_tokens: int, groups: int, input_tokens: LengthDist,
                 output_tokens: LengthDist, seed: int) -> None:
        super().__init__(seed)
        if prefix_tokens < 1 or groups < 1:
            raise WorkloadError("--shared-prefix: the prefix length and the number of groups must be >= 1")
        self.prefix_tokens = prefix_tokens
        self.groups = groups
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self._prefixes = [_words(self._rng(g, "prefix"), prefix_tokens) for g in range(groups)]

    def request(self, index: int) -> RequestSpec:
        rng = self._rng(index)
        group = rng.randrange(self.groups)
        n_in = self.input_tokens.sample(rng)
        n_out = self.output_tokens.sample(rng)
        messages = ({"role": "system", "content": self._prefixes[group]},
                    {"role": "user", "content": _words(rng, n_in)})
        return RequestSpec(index, messages, n_out, self.prefix_tokens + n_in, group)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "prefix_tokens": self.prefix_tokens,
                "groups": self.groups, "input_tokens": self.input_tokens.describe(),
                "output_tokens": self.output_tokens.describe()}


class JsonlWorkload(Workload):
    """Prompts from a JSONL file, one object per line: {"prompt": str} or {"messages": [...]}, with an
    optional "output_tokens" (or "max_tokens"). Lines are visited in a seeded shuffled order, a new
    shuffle for each pass over the file."""

    kind = "jsonl"

    def __init__(self, path: Path, output_tokens: LengthDist | None, seed: int) -> None:
        super().__init__(seed)
        self.path = Path(path)
        self.output_tokens = output_tokens
        raw = self._read_bytes()
        self.file_sha256 = hashlib.sha256(raw).hexdigest()
        self._items = _parse_jsonl(self.path, raw)
        self._orders: dict[int, list[int]] = {}

    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise WorkloadError(f"--prompts: cannot read {self.path}: {exc.strerror or exc}") from None

    def request(self, index: int) -> RequestSpec:
        epoch, position = divmod(index, len(self._items))
        order = self._orders.get(epoch)
        if order is None:
            order = list(range(len(self._items)))
            random.Random(f"{self.seed}/order/{epoch}").shuffle(order)
            self._orders = {epoch: order}
        messages, n_out = self._items[order[position]]
        if n_out is None and self.output_tokens is not None:
            n_out = self.output_tokens.sample(self._rng(index))
        return RequestSpec(index, messages, n_out)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "file": self.path.name, "file_sha256": self.file_sha256,
                "prompts": len(self._items),
                "output_tokens": self.output_tokens.describe() if self.output_tokens else "from file"}


def _parse_jsonl(path: Path, raw: bytes) -> list[tuple[tuple[dict[str, str], ...], int | None]]:
    items = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise WorkloadError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise WorkloadError(f"{where}: each line must be a JSON object")
        items.append((_messages(obj, where), _output_tokens(obj, where)))
    if not items:
        raise WorkloadError(f"{path}: no prompts found (expected one JSON object per line)")
    return items


def _messages(obj: dict[str, Any], where: str) -> tuple[dict[str, str], ...]:
    if isinstance(obj.get("prompt"), str) and obj["prompt"]:
        return ({"role": "user", "content": obj["prompt"]},)
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WorkloadError(f"{where}: needs a non-empty \"prompt\" string or a \"messages\" list")
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise WorkloadError(f"{where}: every message needs \"role\" and \"content\"")
    return tuple(messages)


def _output_tokens(obj: dict[str, Any], where: str) -> int | None:
    for key in ("output_tokens", "max_tokens"):
        if key in obj:
            value = obj[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise WorkloadError(f"{where}: \"{key}\" must be a positive integer, got {value!r}")
            return value
    return None
