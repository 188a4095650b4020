"""The deployment and the code agree: every setting `bot/config.py` reads is set by the Bicep (or is named
here as deliberately left to the admin), the Bicep sets nothing the config doesn't know, the parameters are
documented, and the container runs the same entry point as a non-root user."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from tests.support.processes import answers, bot_env, free_port, wait_until
from tests.support.repo import ROOT

BICEP = (ROOT / "infra" / "main.bicep").read_text()
DOCKERFILE = (ROOT / "infra" / "Dockerfile").read_text()

# Read by the config, not set by the deployment, on purpose:
LEFT_TO_THE_ADMIN = {
    "REQUESTS_CA_BUNDLE": "only behind a TLS-inspecting proxy with a private CA",
    "SSL_CERT_FILE": "the same, for other libraries",
    "OTEL_TRACES_EXPORTER": "console spans are for local runs; Azure Monitor is configured instead",
}
# Set by the deployment for the platform, not read by the config:
PLATFORM = {"WEBSITES_PORT": "App Service: the port the container listens on"}


def bicep_app_settings() -> list[str]:
    block = BICEP[BICEP.index("appSettings: [") : BICEP.index("]", BICEP.index("appSettings: ["))]
    return re.findall(r"\{ name: '([^']+)'", block)


def config_names() -> set[str]:
    return {field.alias or name for name, field in Settings.model_fields.items()}


def test_no_drift_between_config_and_bicep() -> None:
    deployed = bicep_app_settings()
    assert len(deployed) == len(set(deployed)), "a setting is set twice"
    assert set(deployed) - set(PLATFORM) == config_names() - set(LEFT_TO_THE_ADMIN)


def test_secrets_come_from_key_vault() -> None:
    secret_fields = {
        field.alias or name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
        and (field.alias or name) != "APPLICATIONINSIGHTS_CONNECTION_STRING"
    }
    assert secret_fields == {"MicrosoftAppPassword", "AZURE_CLIENT_SECRET", "STORE_URL"}
    for name in secret_fields:
        assert re.search(rf"name: '{name}', value: '@Microsoft\.KeyVault\(SecretUri=", BICEP), name
    for secure in ("botAppPassword", "dataverseClientSecret"):
        assert re.search(rf"@secure\(\)\nparam {secure} string", BICEP), secure


def test_parameters_are_documented_and_the_example_file_matches() -> None:
    lines = BICEP.splitlines()
    params = []
    for i, line in enumerate(lines):
        if line.startswith("param "):
            params.append(line.split()[1])
            above = "\n".join(lines[max(0, i - 4) : i])
            assert "@description(" in above, f"param {params[-1]} has no description"
    example = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    assert set(example) <= set(params)
    required = {p for p in params if re.search(rf"^param {p} \w+$", BICEP, re.MULTILINE)}
    assert required <= set(example), f"the example leaves out required {required - set(example)}"
    assert (
        "output messagingEndpoint string = 'https://${site.properties.defaultHostName}/api/messages'" in BICEP
    )


def test_the_container_runs_serve_as_a_non_root_user_with_a_health_check() -> None:
    final_stage = DOCKERFILE[DOCKERFILE.rindex("FROM ") :]
    assert re.search(r"^USER (?!root)\w+", final_stage, re.MULTILINE)
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    assert 'CMD ["python", "-m", "bot", "serve", "--host", "0.0.0.0", "--port", "3978"]' in final_stage
    assert "EXPOSE 3978" in final_stage and "{ name: 'WEBSITES_PORT', value: '3978' }" in BICEP
    assert ".[dev]" not in DOCKERFILE  # runtime dependencies only


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel the Dockerfile's build stage makes, from a copy of exactly what it copies (setuptools
    writes a build/ folder beside the sources)."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "src"
    for copied in re.findall(r"^COPY (?!--)(.+) \S+$", DOCKERFILE, re.MULTILINE):
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


@WITH_THE_WHEEL
def test_the_wheel_the_container_installs_holds_the_app_and_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("bot/__main__.py", "bot/sandbox/sample_org.json", "cards/ticket.py"):
        assert needed in names, needed
    assert {"bot/store/azure.py", "bot/store/azure/__init__.py"} & set(names), (
        "the Azure store (loaded lazily)"
    )
    assert not [n for n in names if n.startswith(("tests/", "bench/", "node_modules/"))]


@WITH_THE_WHEEL
def test_the_runtime_dependencies_alone_serve_the_bot(wheel: Path, tmp_path: Path) -> None:
    """What the image installs (the wheel and its declared dependencies, no dev extras) starts `serve`,
    answers /healthz and /readyz, and has no test tools in it."""
    # An empty venv (no pip of its own: ensurepip takes seconds), filled by this pip, as the image's pip
    # fills its Python: the wheel, then its dependencies resolved from their declarations. Without byte
    # compiling them (half the install's time): Python compiles what `serve` imports when it imports it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python]
    install = subprocess.run(
        [*pip, "install", "--quiet", "--no-compile", str(wheel)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-2000:]
    assert subprocess.run([python, "-c", "import pytest"], capture_output=True).returncode != 0
    elsewhere = tmp_path / "run"  # not the checkout: the installed package must be what runs
    elsewhere.mkdir()
    port = free_port()
    env = {**bot_env(elsewhere / "store.sqlite3"), "PYTHONPATH": ""}
    with (elsewhere / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [python, "-m", "bot", "serve", "--sandbox", "--port", str(port)],
            cwd=elsewhere,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), "the installed bot", process)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert (
        str(tmp_path / "venv") in (elsewhere / "serve.log").read_text()
    )  # the sample org came from the wheel


def test_the_bicep_refers_only_to_what_it_declares() -> None:
    """No Bicep compiler here: at least every symbol used is declared and the brackets balance."""
    code = re.sub(r"//.*", "", BICEP)
    code = re.sub(r"'(?:[^'\\\\]|\\\\.)*'", lambda m: re.sub(r"[^${}]", "", m.group(0)), code)  # keep ${...}
    declared = set(re.findall(r"^(?:param|var|resource|output) (\w+)", BICEP, re.MULTILINE))
    used = set(re.findall(r"\b([a-z]\w*)\.(?:id|name|properties|listKeys)\b", BICEP))
    assert used <= declared, used - declared
    for opening, closing in ("{}", "[]", "()"):
        assert code.count(opening) == code.count(closing), opening + closing
