"""Run the bundled local model: llama.cpp's llama-server serving SmolLM2-135M-Instruct.

This is the one real model tollway can always reach on the user's own machine: the quickstart, the
integration tests and `tollway bench` talk to it over the same OpenAI-compatible wire as any provider.
Where the binary comes from is build.py and prebuilt.py, the model model_file.py, and the process
llama_process.py; this module puts them together.

    with start_llama_server() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from tollway.selfhost.build import LlamaBuildError, ensure_llama_server
from tollway.selfhost.llama_process import (
    DEFAULT_CTX_SIZE,
    DEFAULT_PARALLEL,
    MODEL_ALIAS,
    STARTUP_TIMEOUT,
    LlamaServer,
    LlamaServerError,
    check_slot_layout,
    launch_llama_server,
    llama_server_command,
    llama_server_env,
)
from tollway.selfhost.local_cache import Progress, cache_root, llama_server_path, model_path
from tollway.selfhost.model_file import ModelFileError, ensure_model

__all__ = [
    "DEFAULT_CTX_SIZE", "DEFAULT_PARALLEL", "MODEL_ALIAS", "LlamaBuildError", "LlamaServer", "LlamaServerError",
    "ModelFileError", "cache_root", "ensure_llama_server", "ensure_model", "llama_server_command",
    "llama_server_env", "llama_server_path", "model_path", "start_llama_server",
]


def start_llama_server(port: int | None = None, host: str = "127.0.0.1", parallel: int = DEFAULT_PARALLEL,
                       ctx_size: int = DEFAULT_CTX_SIZE, extra_args: Sequence[str] = (), *,
                       log_path: Path | None = None, inherit_output: bool = False,
                       startup_timeout: float = STARTUP_TIMEOUT, die_with_parent: bool = True,
                       progress: Progress | None = None) -> LlamaServer:
    """Start llama-server with the cached model (building/fetching first if needed) and wait until healthy.

    `port=None` picks a free port. Output goes to `log_path`, to a temp file removed on a clean stop, or
    to this process's terminal with `inherit_output=True`. `die_with_parent` (Linux) makes the kernel
    stop the server if the *thread* that started it dies, so a killed test run leaves no server behind;
    turn it off when starting from a short-lived thread.
    """
    check_slot_layout(parallel, ctx_size)
    binary = ensure_llama_server(progress)
    model = ensure_model(progress)
    return launch_llama_server(binary, model, port, host, parallel, ctx_size, extra_args, log_path=log_path,
                               inherit_output=inherit_output, startup_timeout=startup_timeout,
                               die_with_parent=die_with_parent)
