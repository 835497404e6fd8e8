"""A 200 MB upload streams from disk: the client's peak memory stays bounded (measured)."""

# ruff: noqa: F811  (pytest fixtures imported from rest_server are redefined as arguments)
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rest_server import API_KEY, RestTestServer, rest_server, rest_server_module  # noqa: F401

from realtime.rest.multipart import MultipartBody, audio_upload

SIZE = 200 * 1024 * 1024
REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter so that the peak RSS (ru_maxrss) belongs to the client alone.
CLIENT = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    from realtime.rest import AsyncAudioClient

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def main(url, key, path):
        async with AsyncAudioClient(key, url) as client:
            await client.transcribe(b"RIFF0000WAVE", filename="warmup.wav")  # load everything
            before = peak_mb()
            result = await client.transcribe(path)
            after = peak_mb()
        print(json.dumps({"before": before, "after": after, "extra": result.model_extra}))

    asyncio.run(main(*sys.argv[1:]))
    """
)


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes created instantly (sparse: a WAV-ish head, then zeros)."""
    with path.open("wb") as f:
        f.write(b"RIFF\xff\xff\xff\xffWAVE")
        f.truncate(size)
    return path


def test_multipart_length_matches_stream(tmp_path: Path) -> None:
    """The announced Content-Length equals the bytes streamed (checked on a 3 MB file)."""
    path = sparse_file(tmp_path / "a.wav", 3 * 1024 * 1024 + 7)
    body = MultipartBody([("model", "m")], audio_upload(path))

    async def collect() -> list[bytes]:
        return [piece async for piece in body.stream()]

    import asyncio

    pieces = asyncio.run(collect())
    assert sum(map(len, pieces)) == body.content_length
    assert max(map(len, pieces)) <= 1024 * 1024
    assert sum(map(len, asyncio.run(collect()))) == body.content_length  # replayable


@pytest.mark.slow
def test_200mb_upload_keeps_memory_bounded(rest_server: RestTestServer, tmp_path: Path) -> None:
    """Uploading 200 MB raises the client's peak RSS by less than 50 MB; the server gets it all."""
    path = sparse_file(tmp_path / "big.wav", SIZE)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT, rest_server.base_url, API_KEY, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = report["after"] - report["before"]
    print(
        f"client peak RSS {report['before']:.1f} -> {report['after']:.1f} MB "
        f"(+{growth:.1f} MB) for a {SIZE / 2**20:.0f} MB upload"
    )
    assert growth < 50, report
    h = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(1 << 20):
            h.update(piece)
    assert report["extra"]["x_bytes"] == SIZE
    assert report["extra"]["x_sha256"] == h.hexdigest()
    assert rest_server.state.requests[-1].file is not None
