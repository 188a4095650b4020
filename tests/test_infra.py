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

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
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


def test_the_wheel_the_container_installs_holds_the_app_and_its_data(tmp_path: Path) -> None:
    # What the Dockerfile's build stage copies, built apart (setuptools writes a build/ folder beside it).
    source = tmp_path / "src"
    for copied in re.findall(r"^COPY (?!--)(.+) \S+$", DOCKERFILE, re.MULTILINE):
        for name in copied.split():
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                source.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path)]
    subprocess.run([*command, str(source)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("sync_doctor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("bot/__main__.py", "bot/sandbox/sample_org.json", "bot/store/azure.py", "cards/ticket.py"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "bench/", "node_modules/"))]


def test_the_bicep_refers_only_to_what_it_declares() -> None:
    """No Bicep compiler here: at least every symbol used is declared and the brackets balance."""
    code = re.sub(r"//.*", "", BICEP)
    code = re.sub(r"'(?:[^'\\\\]|\\\\.)*'", lambda m: re.sub(r"[^${}]", "", m.group(0)), code)  # keep ${...}
    declared = set(re.findall(r"^(?:param|var|resource|output) (\w+)", BICEP, re.MULTILINE))
    used = set(re.findall(r"\b([a-z]\w*)\.(?:id|name|properties|listKeys)\b", BICEP))
    assert used <= declared, used - declared
    for opening, closing in ("{}", "[]", "()"):
        assert code.count(opening) == code.count(closing), opening + closing
