"""The wheel the image installs, built as infra/Dockerfile's build stage builds it: for tests that run the
installed app outside the checkout (tests/test_infra.py, tests/test_manifest.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.repo import ROOT

__all__ = ["WITH_THE_WHEEL", "wheel"]

DOCKERFILE = (ROOT / "infra" / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel the Dockerfile's build stage makes, from a copy of exactly what it copies (setuptools
    writes a build/ folder beside the sources)."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "src"
    build_stage = DOCKERFILE[: DOCKERFILE.rindex("FROM ")]
    for copied in re.findall(r"^COPY (?!--)(.+) \S+$", build_stage, re.MULTILINE):
        for name in copied.split():
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                source.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder)]
    subprocess.run([*command, str(source)], check=True, capture_output=True)
    [built] = folder.glob("sync_doctor-*.whl")
    return built


WITH_THE_WHEEL = pytest.mark.xdist_group("wheel")  # one worker builds it, once (the fixture is per module)
