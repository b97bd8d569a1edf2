"""`tollway local-model`: build, locate and run the bundled local model (llama.cpp + SmolLM2-135M)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from tollway.selfhost.build import LlamaBuildError, SourceBuildNeeded, ensure_llama_server, find_cached_llama_server
from tollway.selfhost.llamacpp import (
    DEFAULT_CTX_SIZE,
    DEFAULT_PARALLEL,
    MODEL_ALIAS,
    LlamaServerError,
    start_llama_server,
)
from tollway.selfhost.local_cache import CACHE_ENV, cache_root, llama_server_path, model_path
from tollway.selfhost.model_file import ModelFileError, ensure_model
from tollway.selfhost.pypi_fetch import DownloadError

_EXPECTED_FAILURES = (LlamaBuildError, LlamaServerError, ModelFileError, DownloadError)
NEEDS_SOURCE_BUILD_EXIT = 3  # `prepare --no-build`: scripts/quickstart installs a compiler on this status


@click.group("local-model")
def local_model() -> None:
    """Build and run the bundled local model: llama.cpp's llama-server serving SmolLM2-135M-Instruct.

    The binary and model are cached under the user cache directory (override with $TOLLWAY_CACHE_DIR),
    so only the first `prepare` is slow.
    """


@local_model.command()
@click.option("--no-build", is_flag=True,
              help=f"Use a cached or prebuilt llama-server only; exit {NEEDS_SOURCE_BUILD_EXIT} if it would "
                   "have to be compiled.")
def prepare(no_build: bool) -> None:
    """Get llama-server (prebuilt if one works here, else built: minutes) and the model; print both paths."""
    started = time.monotonic()
    try:
        model = ensure_model(_progress)
        binary = ensure_llama_server(_progress, allow_build=not no_build)
    except SourceBuildNeeded as exc:
        raise _SourceBuildNeeded(str(exc)) from None
    except _EXPECTED_FAILURES as exc:
        raise click.ClickException(str(exc)) from None
    _progress(f"ready in {time.monotonic() - started:.1f}s")
    click.echo(f"llama-server: {binary}")
    click.echo(f"model:        {model}")


@local_model.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8081, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--parallel", type=click.IntRange(1, 64), default=DEFAULT_PARALLEL, show_default=True,
              help="Concurrent request slots (llama-server -np).")
@click.option("--ctx-size", type=click.IntRange(1), default=DEFAULT_CTX_SIZE, show_default=True,
              help="Total context tokens, shared evenly by the slots.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write llama-server's log here instead of the terminal.")
def serve(port: int, host: str, parallel: int, ctx_size: int, log_file: Path | None) -> None:
    """Serve the local model in the foreground until Ctrl-C (building it first if needed)."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        server = start_llama_server(port=port, host=host, parallel=parallel, ctx_size=ctx_size,
                                    log_path=log_file, inherit_output=log_file is None, progress=_progress)
    except (_EXPECTED_FAILURES + (ValueError,)) as exc:
        raise click.ClickException(str(exc)) from None
    _progress(f"serving {MODEL_ALIAS} at {server.base_url} with {parallel} slots (Ctrl-C to stop)")
    try:
        code = server.process.wait()
    except (KeyboardInterrupt, SystemExit):
        server.stop()
        _progress("stopped")
        return
    raise click.ClickException(f"llama-server exited on its own with code {code}"
                               + (f"; log: {log_file}" if log_file else ""))


@local_model.command()
def path() -> None:
    """Print the cached binary and model paths; exit 1 if either is not there yet."""
    cached, model = find_cached_llama_server(), model_path()
    binary, binary_ready, model_ready = cached or llama_server_path(), cached is not None, model.is_file()
    click.echo(f"cache:        {cache_root()}  (override with ${CACHE_ENV})")
    click.echo(f"llama-server: {binary}" + ("" if binary_ready else "  (not built)"))
    click.echo(f"model:        {model}" + ("" if model_ready else "  (not downloaded)"))
    if not (binary_ready and model_ready):
        click.echo("run `tollway local-model prepare` to build and fetch them", err=True)
        sys.exit(1)


def _progress(message: str) -> None:
    click.echo(f"local-model: {message}", err=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


class _SourceBuildNeeded(click.ClickException):
    """`prepare --no-build` found no usable prebuilt server: a distinct exit code the quickstart reads."""

    exit_code = NEEDS_SOURCE_BUILD_EXIT
