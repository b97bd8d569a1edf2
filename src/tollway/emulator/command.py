"""`tollway emulate`: run the sandbox provider from the command line."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import click

from tollway.emulator.profiles import ConfigError, load_config

# CLI flag -> default-profile field; only flags given on the command line override the config file
FLAG_FIELDS = {"ttft_ms": "ttft_ms", "tpot_ms": "tpot_ms", "output_tokens": "output_tokens",
               "tokens_per_chunk": "tokens_per_chunk"}


@click.command("emulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9100, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file with seed, default and per-model profiles (see docs/emulator.md).")
@click.option("--ttft-ms", type=click.FloatRange(min=0), help="Default time to first token, ms.  [default: 0]")
@click.option("--tpot-ms", type=click.FloatRange(min=0), help="Default delay per output token, ms.  [default: 0]")
@click.option("--output-tokens", type=click.IntRange(min=0), help="Default output length in tokens.  [default: 16]")
@click.option("--tokens-per-chunk", type=click.IntRange(min=1),
              help="Default tokens per streamed chunk.  [default: 1]")
def emulate(host: str, port: int, config_path: Path | None, ttft_ms: float | None, tpot_ms: float | None,
            output_tokens: int | None, tokens_per_chunk: int | None) -> None:
    """Run a sandbox provider that speaks each provider's dialect and injects faults.

    Paths: /{dialect}/v1/chat/completions, /completions, /embeddings, /models for dialect in openai,
    deepseek, qwen, kimi, glm, vllm, sglang, lmdeploy, llamacpp, ollama; /anthropic/v1/messages;
    /{dialect}/metrics; /healthz; the batch APIs under /{openai,qwen}/v1/files and /batches and
    /anthropic/v1/messages/batches; control API under /_emulator/.
    """
    flags = {"ttft_ms": ttft_ms, "tpot_ms": tpot_ms, "output_tokens": output_tokens,
             "tokens_per_chunk": tokens_per_chunk}
    cli_default = {FLAG_FIELDS[name]: value for name, value in flags.items() if value is not None}
    try:
        config = load_config(config_path, cli_default)
    except ConfigError as exc:
        raise click.ClickException(f"bad emulator config:\n{exc}") from None
    sock = _listen(host, port)
    from tollway.emulator.server import run  # aiohttp is imported only when serving

    run(host, port, config, sock)


def _listen(host: str, port: int) -> socket.socket:
    """Bind before anything is printed or started, so a busy port is one clear line and nothing else."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        hint = " (another process listens there; choose another --port)" if exc.errno == errno.EADDRINUSE else ""
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.setblocking(False)
    return sock
