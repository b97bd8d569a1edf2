"""Deterministic embedding vectors.

Each vector is derived from a hash of (model, input) and normalised to unit length, so tests can assert
that identical inputs embed identically and different inputs do not, without any model. The openai SDK
asks for base64 by default, so both float lists and base64 little-endian float32 are served.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any


def embedding_vector(model: str, item: Any, dimensions: int) -> list[float]:
    """A unit vector of `dimensions` floats for one input."""
    seed = f"{model}\x00{item}".encode()
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        for offset in range(0, len(digest), 4):
            raw = int.from_bytes(digest[offset:offset + 4], "big")
            values.append(raw / 0xFFFFFFFF * 2 - 1)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def encode_vector(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def embeddings_json(model: str, inputs: list[Any], dimensions: int, encoding_format: str, prompt_tokens: int) -> dict:
    """The /v1/embeddings body: one vector per input, usage with prompt_tokens = total_tokens."""
    data = [{"object": "embedding", "index": index,
             "embedding": encode_vector(embedding_vector(model, item, dimensions), encoding_format)}
            for index, item in enumerate(inputs)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}
