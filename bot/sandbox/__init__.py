"""A local Dynamics 365 org: Dataverse Web API, Graph and Entra token endpoint over loopback HTTP."""

from bot.sandbox.local import LocalOrg, local_org
from bot.sandbox.org import SAMPLE_ORG, Org, load_fixture
from bot.sandbox.server import Fault, RunningSandbox, Sandbox, SandboxConfig, start_sandbox

__all__ = [
    "SAMPLE_ORG",
    "Fault",
    "LocalOrg",
    "Org",
    "RunningSandbox",
    "Sandbox",
    "SandboxConfig",
    "load_fixture",
    "local_org",
    "start_sandbox",
]
