"""Unit tests of how llama-server is launched: its argv and its environment (no server started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollway.selfhost.llamacpp import MODEL_ALIAS, llama_server_command, llama_server_env, start_llama_server


def _flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_command_names_model_alias_address_slots_and_context() -> None:
    cmd = llama_server_command(Path("/c/llama-server"), Path("/c/m.gguf"), "127.0.0.1", 8123, 4, 8192,
                               ["--threads", "1"])
    assert cmd[0] == "/c/llama-server"
    assert _flag(cmd, "--model") == "/c/m.gguf"
    assert _flag(cmd, "--alias") == MODEL_ALIAS == "smollm2-135m"
    assert (_flag(cmd, "--host"), _flag(cmd, "--port")) == ("127.0.0.1", "8123")
    assert (_flag(cmd, "--parallel"), _flag(cmd, "--ctx-size")) == ("4", "8192")
    assert "--metrics" in cmd
    assert cmd[-2:] == ["--threads", "1"]  # extra args last, so they can override


def test_openmp_waits_passively_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("TOLLWAY_PROBE", "kept")
    env = llama_server_env()
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["TOLLWAY_PROBE"] == "kept"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert llama_server_env()["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.parametrize("parallel, ctx_size", [(0, 8192), (4, 3)])
def test_impossible_slot_layout_is_refused_before_building(parallel: int, ctx_size: int) -> None:
    with pytest.raises(ValueError, match=f"parallel={parallel}, ctx_size={ctx_size}"):
        start_llama_server(parallel=parallel, ctx_size=ctx_size)
