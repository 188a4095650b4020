"""The deployment, its guide and the code agree: every setting `bot/config.py` reads is set by the Bicep (or
is named here as deliberately left out), with values the config accepts and no secret among them; the
guide's commands name only what the Bicep and the CLI have, give every app registration its service
principal and use no deprecated cmdlet; the image pins its dependencies from the lock before the code,
runs the bot as a non-root user, and has the sshd App Service's SSH needs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from bot.cli_parser import build_parser
from bot.config import Settings, has_storage_key, load_settings
from bot.setup import bot_tokens_from_settings, missing_settings
from tests.support import image
from tests.support.processes import answers, bot_env, free_port, wait_until
from tests.support.repo import ROOT

BICEP = (ROOT / "infra" / "main.bicep").read_text()
DOCKERFILE = (ROOT / "infra" / "Dockerfile").read_text()
SSHD_CONFIG = (ROOT / "infra" / "sshd_config").read_text()
DEPLOY = (ROOT / "docs" / "deploy.md").read_text()
README = (ROOT / "README.md").read_text()

# Read by the config, not set by the deployment, on purpose:
LEFT_TO_THE_ADMIN = {
    "REQUESTS_CA_BUNDLE": "only behind a TLS-inspecting proxy with a private CA",
    "SSL_CERT_FILE": "the same, for other libraries",
    "OTEL_TRACES_EXPORTER": "console spans are for local runs; Azure Monitor is configured instead",
}
# Read by the config, not set by the deployment: it has no secrets (these are the fallback for local runs).
SECRETS = {
    "MicrosoftAppPassword": "the bot is the managed identity",
    "AZURE_CLIENT_SECRET": "so is the reader",
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
    assert set(deployed) - set(PLATFORM) == config_names() - set(LEFT_TO_THE_ADMIN) - set(SECRETS)


def deployed_settings() -> dict[str, str]:
    """The Bicep's app settings with each `${...}` and expression replaced by a value of its kind."""
    block = BICEP[BICEP.index("appSettings: [") : BICEP.index("]", BICEP.index("appSettings: ["))]
    stand_ins = {
        "identity.properties.clientId": "0b7e5a84-55b1-4b5c-9d0a-3c5d2f1e7a90",
        "tenant().tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "storage.properties.primaryEndpoints.table": "https://syncdoctorx.table.core.windows.net/",
        "storage.properties.primaryEndpoints.queue": "https://syncdoctorx.queue.core.windows.net/",
        "dataverseUrl": "https://contoso.crm.dynamics.com",
        "graphUrl": "https://graph.microsoft.com",
        "authorityHost": "https://login.microsoftonline.com/",
        "allowedTenants": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "helpdeskAgents": "",
        "fixRecheckAfter": "900,2400",
        "insights.properties.ConnectionString": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
    }
    settings = {}
    for name, value in re.findall(r"\{ name: '([^']+)', value: (.+?) \}$", block, re.MULTILINE):
        if value.startswith("'"):
            value = re.sub(r"\$\{([^}]+)\}", lambda m: stand_ins[m.group(1)], value.strip("'"))
        elif value.startswith("string("):
            # A parameter's value, as its type and default say (Bicep's string() of a bool is "false").
            param = value[len("string(") : -1]
            declared = re.search(rf"^param {param} (\w+) = (\S+)$", BICEP, re.MULTILINE)
            value = declared.group(2) if declared else "30"
        else:
            value = stand_ins[value]
        settings[name] = value
    return settings


def test_the_deployment_holds_no_secret_and_its_settings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secretless path: the bot, the reader and the store are the managed identity; nothing secret is
    a parameter, an output, a Key Vault reference or an account key."""
    assert "@secure()" not in BICEP and "listKeys(" not in BICEP and "Microsoft.KeyVault" not in BICEP
    assert "allowSharedKeyAccess: false" in BICEP
    settings = deployed_settings()
    assert settings["MicrosoftAppType"] == "UserAssignedMSI"
    assert settings["AZURE_USE_MANAGED_IDENTITY"] == "true"
    assert settings["MicrosoftAppId"] == settings["AZURE_CLIENT_ID"]  # one identity
    assert not has_storage_key(settings["STORE_URL"])
    for name in config_names():
        monkeypatch.delenv(name, raising=False)
    loaded = load_settings(**{k: v for k, v in settings.items() if k not in PLATFORM})
    assert missing_settings(loaded) == []  # the production clients have all they need
    assert bot_tokens_from_settings(loaded) is not None
    # The Azure Bot is the same identity, and the identity may use the store it is given.
    bot = BICEP[BICEP.index("resource bot 'Microsoft.BotService/botServices") :]
    for line in (
        "msaAppType: 'UserAssignedMSI'",
        "msaAppId: identity.properties.clientId",
        "msaAppMSIResourceId: identity.id",
        "msaAppTenantId: tenant().tenantId",
    ):
        assert line in bot, line
    roles = dict(re.findall(r"^var (\w+) = '([0-9a-f-]{36})'", BICEP, re.MULTILINE))
    assert roles["storageTableDataContributor"] == "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
    assert roles["storageQueueDataContributor"] == "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    for role in ("storageTableDataContributor", "storageQueueDataContributor"):
        assignment = re.search(
            rf"guid\(storage\.id, identity\.id, {role}\)\n  scope: storage\n(.+?)\n\}}", BICEP, re.DOTALL
        )
        assert assignment and "principalId: identity.properties.principalId" in assignment.group(1), role


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
    entrypoint = (ROOT / "infra" / "entrypoint.sh").read_text()
    # The entry point starts sshd as root, then becomes `syncdoctor` for good (exec: PID 1 is the bot).
    assert 'ENTRYPOINT ["/bin/sh", "/usr/local/bin/sync-doctor-entrypoint"]' in final_stage
    assert "COPY infra/entrypoint.sh /usr/local/bin/sync-doctor-entrypoint" in final_stage
    assert entrypoint.index("/usr/sbin/sshd") < entrypoint.index(
        "exec setpriv --reuid=syncdoctor --regid=syncdoctor"
    )
    assert "useradd --create-home --uid 10001 syncdoctor" in final_stage
    assert subprocess.run(["sh", "-n", str(ROOT / "infra" / "entrypoint.sh")]).returncode == 0
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    assert 'CMD ["python", "-m", "bot", "serve", "--host", "0.0.0.0", "--port", "3978"]' in final_stage
    assert "{ name: 'WEBSITES_PORT', value: '3978' }" in BICEP
    assert ".[dev]" not in DOCKERFILE and "requirements-dev.lock" not in DOCKERFILE  # runtime only


def test_dependencies_come_from_the_lock_before_the_code() -> None:
    """A change to the code rebuilds only the app's wheel: the dependencies' layer depends on the lock alone,
    installed with hashes checked and nothing resolved beyond it."""
    final_stage = DOCKERFILE[DOCKERFILE.rindex("FROM ") :]
    lock = final_stage.index("COPY requirements.lock ")
    install = final_stage.index(
        "pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock"
    )
    assert lock < install < final_stage.index("COPY --from=build /wheels /wheels")
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in DOCKERFILE  # the app's wheel only
    assert not re.search(r"^COPY (bot|cards|pyproject)", final_stage, re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    return {
        n.lower(): v
        for n, v in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / lock).read_text(), re.MULTILINE)
    }


def test_ci_and_the_image_install_the_same_versions() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert runtime and set(runtime) <= set(dev), set(runtime) - set(dev)
    assert {n: v for n, v in dev.items() if n in runtime} == runtime
    assert not {"pytest", "ruff", "mypy", "playwright", "hypothesis"} & set(runtime)
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes --no-deps -r requirements-dev.lock" in makefile
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        assert text.count("==") == text.count("--hash=sha256:", 0) or "--hash=sha256:" in text
        assert all("--hash=sha256:" in block for block in re.split(r"\n(?=[A-Za-z])", text) if "==" in block)
    # the floors pyproject.toml declares are met by what is locked
    declared = re.findall(
        r'^\s+"([a-z0-9-]+)>=([0-9.]+)', (ROOT / "pyproject.toml").read_text(), re.MULTILINE
    )
    for name, floor in declared:
        locked = dev[name]
        assert tuple(int(x) for x in re.findall(r"\d+", locked)[:3]) >= tuple(
            int(x) for x in floor.split(".")
        ), name


def test_the_image_has_the_ssh_app_service_needs() -> None:
    """App Service's SSH into a custom container: openssh-server, root's password "Docker!", Microsoft's
    sshd_config (port 2222) in /etc/ssh, port 2222 exposed, sshd started by the entry point."""
    final_stage = DOCKERFILE[DOCKERFILE.rindex("FROM ") :]
    assert "apt-get install -y --no-install-recommends openssh-server" in final_stage
    assert 'echo "root:Docker!" | chpasswd' in final_stage
    assert "COPY infra/sshd_config /etc/ssh/sshd_config" in final_stage
    assert re.search(r"^EXPOSE .*\b2222\b", final_stage, re.MULTILINE)
    assert "rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_*_key*" in final_stage  # no host key in the image
    config = {}
    for line in SSHD_CONFIG.splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            config[key] = value.strip()
    assert config == {
        "Port": "2222",
        "ListenAddress": "0.0.0.0",
        "LoginGraceTime": "180",
        "X11Forwarding": "no",
        "Ciphers": "aes128-cbc,3des-cbc,aes256-cbc,aes128-ctr,aes192-ctr,aes256-ctr",
        "MACs": "hmac-sha1,hmac-sha1-96",
        "StrictModes": "yes",
        "SyslogFacility": "DAEMON",
        "PasswordAuthentication": "yes",
        "PermitEmptyPasswords": "no",
        "PermitRootLogin": "yes",
        "Subsystem": "sftp internal-sftp",
    }
    entrypoint = (ROOT / "infra" / "entrypoint.sh").read_text()
    assert "ssh-keygen -A" in entrypoint and "mkdir -p /run/sshd" in entrypoint


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="OpenSSH's sshd is not installed here")
def test_openssh_accepts_the_sshd_config(tmp_path: Path) -> None:
    """Where OpenSSH is installed (Debian's, as in the image), it parses the config: a cipher it doesn't know
    would keep sshd from starting."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    done = subprocess.run(
        ["/usr/sbin/sshd", "-T", "-f", str(ROOT / "infra" / "sshd_config"), "-h", str(tmp_path / "key")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "port 2222" in done.stdout and "permitrootlogin yes" in done.stdout


def test_an_ssh_session_sees_the_apps_settings(tmp_path: Path) -> None:
    """App Service gives app settings to the container's main process only: a login shell takes them from
    it (here a file standing in for /proc/1/environ), values intact, the session's own HOME kept."""
    environ = tmp_path / "environ"
    environ.write_bytes(
        b"DATAVERSE_URL=https://contoso.crm.dynamics.com\0"
        b"IDENTITY_HEADER=a b'c\"d\0"
        b"MULTI=line one\nline two\0"
        b"HOME=/home/syncdoctor\0"
        b"WEIRD.NAME=skipped\0"
    )
    script = ROOT / "infra" / "ssh-env.sh"
    shown = subprocess.run(
        [
            "bash",
            "-c",
            f'. "{script}"; printf "%s|%s|%s|%s" "$DATAVERSE_URL" "$IDENTITY_HEADER" "$MULTI" "$HOME"',
        ],
        env={"SYNC_DOCTOR_ENV_FROM": str(environ), "HOME": "/root", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == "https://contoso.crm.dynamics.com|a b'c\"d|line one\nline two|/root"
    assert "COPY infra/ssh-env.sh /etc/profile.d/sync-doctor-env.sh" in DOCKERFILE
    # sh (not a login bash) sources it harmlessly
    assert (
        subprocess.run(["sh", "-c", f'. "{script}"'], env={"SYNC_DOCTOR_ENV_FROM": str(environ)}).returncode
        == 0
    )


wheel = image.wheel  # the fixture: the wheel the image installs
WITH_THE_WHEEL = image.WITH_THE_WHEEL


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
    """What the image installs (requirements.lock, then the wheel without resolving anything more) starts
    `serve`, answers /healthz and /readyz, and has no test tools in it."""
    # An empty venv (no pip of its own: ensurepip takes seconds), filled by this pip, as the image's pip
    # fills its Python: the lock with hashes checked, then the wheel alone. Without byte compiling them
    # (half the install's time): Python compiles what `serve` imports when it imports it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python]
    lock = [*pip, "install", "--quiet", "--no-compile", "--require-hashes", "--no-deps"]
    install = subprocess.run([*lock, "-r", str(ROOT / "requirements.lock")], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    install = subprocess.run(
        [*pip, "install", "--quiet", "--no-compile", "--no-deps", str(wheel)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-2000:]
    check = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
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
    # Comments and strings in one pass, whichever starts first (a URL's // is not a comment, a comment's
    # apostrophe not a string); strings keep their ${...}.
    code = re.sub(
        r"//.*|'(?:[^'\\]|\\.)*'",
        lambda m: "" if m.group(0).startswith("//") else re.sub(r"[^${}]", "", m.group(0)),
        BICEP,
    )
    declared = set(re.findall(r"^(?:param|var|resource|output) (\w+)", BICEP, re.MULTILINE))
    used = set(re.findall(r"\b([a-z]\w*)\.(?:id|name|properties|listKeys)\b", BICEP))
    assert used <= declared, used - declared
    for opening, closing in ("{}", "[]", "()"):
        assert code.count(opening) == code.count(closing), opening + closing


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```(?:sh|powershell)\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)


def commands(markdown: str) -> list[str]:
    """Each command of the guide's sh and PowerShell blocks, continuation lines joined, comments dropped."""
    joined = "\n".join(code_blocks(markdown))
    joined = re.sub(r"[\\`]\n\s*", " ", joined)
    return [
        line.split(" #")[0].strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


DEPRECATED = (
    "New-ApplicationAccessPolicy",
    "Test-ApplicationAccessPolicy",
    "Set-ApplicationAccessPolicy",
    "Get-ApplicationAccessPolicy",
)


def test_the_guide_walks_against_the_bicep_the_settings_and_the_cli() -> None:
    walked = commands(DEPLOY)
    assert len(walked) > 20
    # Every app registration the guide creates gets its service principal, right after it (AADSTS7000229).
    for i, command in enumerate(walked):
        if command.startswith("az ad app create"):
            assert walked[i + 1].startswith("az ad sp create --id"), command
    assert sum(c.startswith("az ad app create") for c in walked) == sum(
        c.startswith("az ad sp create") for c in walked
    )
    # No deprecated cmdlet, and Exchange's RBAC for Applications instead, for the identity.
    assert not [c for c in walked if c.split()[0] in DEPRECATED]
    for needed in (
        "New-ServicePrincipal -AppId <managedIdentityClientId> -ObjectId <managedIdentityPrincipalId>",
        "New-ManagementScope -Name",
        'New-ManagementRoleAssignment -App <managedIdentityClientId> -Role "Application Calendars.Read"',
        "Test-ServicePrincipalAuthorization -Identity <managedIdentityClientId>",
    ):
        assert any(c.startswith(needed) for c in walked), needed
    # The deployment it runs: the Bicep, parameters the Bicep has, outputs it declares.
    params = set(re.findall(r"^param (\w+)", BICEP, re.MULTILINE))
    outputs = set(re.findall(r"^output (\w+)", BICEP, re.MULTILINE))
    deploys = [c for c in walked if c.startswith("az deployment group create")]
    assert deploys and all("-f infra/main.bicep" in c for c in deploys)
    for command in deploys:
        for name in re.findall(r"-p (\w+)=", command):
            assert name in params, name
    for placeholder in set(re.findall(r"<(\w+)>", DEPLOY)):
        if placeholder.startswith(("managedIdentity", "webApp", "messaging")):
            assert placeholder in outputs, placeholder
    table = DEPLOY[DEPLOY.index("| parameter | default | what |") :].split("\n\n")[0]
    documented = set(re.findall(r"`(\w+)`", table.split("\n", 2)[2]))
    assert params <= documented | {"location"}, params - documented
    # No Container Apps job, no Key Vault reference: what the guide runs is what the Bicep makes.
    assert "containerapp" not in DEPLOY and "@Microsoft.KeyVault" not in DEPLOY
    # `python -m bot ...` commands exist, with the options they are given.
    parser = build_parser()
    for command in walked:
        if command.startswith("python -m bot "):
            argv = [re.sub(r"<\w+>", "x", a) for a in command.removeprefix("python -m bot ").split()]
            parser.parse_args(argv)  # exits (SystemExit) on an unknown command or option
    # Every setting the deployment sets is in the guide's settings table, and every one the app reads in
    # the README's.
    settings_table = DEPLOY[DEPLOY.index("| setting | value |") :].split("\n\n")[0]
    assert set(bicep_app_settings()) - set(PLATFORM) <= set(re.findall(r"`(\w+)`", settings_table))
    assert {n for n in config_names() if f"`{n}`" not in README} == set()


def test_the_dataverse_role_is_listed_as_the_role_editor_shows_it() -> None:
    role = DEPLOY[DEPLOY.index("| in the role editor | tab (legacy editor) | privilege |") :].split("\n\n")[0]
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [c.strip().strip("`") for c in line.strip("|").split("|")] for line in role.splitlines()[2:]
        )
    }
    assert rows["Activity"][:2] == [
        "Core Records",
        "prvReadActivity",
    ]  # appointments and tasks are activities
    assert rows["Contact"][:2] == ["Core Records", "prvReadContact"]
    assert rows["Saved View"][:2] == ["Core Records", "prvReadUserQuery"]
    assert rows["View"][:2] == ["Customization", "prvReadQuery"]
    assert rows["User"][:2] == ["Business Management", "prvReadUser"]
    assert rows["Mailbox"][:2] == ["Business Management", "prvReadMailbox"]
    assert rows["Organization"][:2] == ["Business Management", "prvReadOrganization"]
    assert rows["Act on Behalf of Another User"][:2] == [
        "Miscellaneous privileges",
        "prvActOnBehalfOfAnotherUser",
    ]
    assert rows["Manage User Synchronization Filters"][:2] == ["Miscellaneous privileges", "prvAdminFilter"]
    assert not {"Appointment", "Task", "Appointment, Contact, Task"} & set(rows)
    fixes = DEPLOY[DEPLOY.index("| fix | privileges to add |") :].split("\n\n")[0]
    for privilege in (
        "prvCreateUserQuery",
        "prvWriteUserQuery",
        "prvWriteMailbox",
        "prvApproveRejectEmailAddress",
    ):
        assert f"`{privilege}`" in fixes, privilege
