"""Azurite, Microsoft's Azure Storage emulator (npm `azurite`), on loopback ports, in memory: Azure Tables and
Queues for tests and benchmarks of the Azure store, without an Azure account. Not Azure's performance."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AZURITE_ACCOUNT", "Azurite", "start_azurite"]

# Azurite's fixed development account and key, published in its documentation: not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
_AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_BINARY = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "azurite"
_LISTENING = re.compile(
    r"Azurite (Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)"
)


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    queue_port: int
    table_port: int
    _log: Path

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={_AZURITE_KEY};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{AZURITE_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/{AZURITE_ACCOUNT};"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self._log.parent, ignore_errors=True)  # its working folder (in memory: just the log)

    def __enter__(self) -> Azurite:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_azurite(*, timeout: float = 60.0) -> Azurite:
    """Start Azurite on free loopback ports (in memory) and wait until its queue and table services listen.

    Raises:
        RuntimeError: when `npm ci` has not installed it, or it does not come up within `timeout`.
    """
    if not _BINARY.exists():
        raise RuntimeError(f"Azurite is not installed at {_BINARY}: run `npm ci` (or `make setup`) first")
    folder = Path(tempfile.mkdtemp(prefix="azurite-"))
    log = folder / "azurite.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own node_modules binary, fixed arguments
            [
                str(_BINARY),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",  # no access log line per request: a tenth of the emulator's CPU under load
                *("--blobHost", "127.0.0.1", "--blobPort", "0"),
                *("--queueHost", "127.0.0.1", "--queuePort", "0"),
                *("--tableHost", "127.0.0.1", "--tablePort", "0"),
            ],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        ports = {kind: int(port) for kind, port in _LISTENING.findall(log.read_text(errors="replace"))}
        if len(ports) == 2:
            return Azurite(process, ports["Queue"], ports["Table"], log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"Azurite did not start: {log.read_text(errors='replace')[-2000:]}")
