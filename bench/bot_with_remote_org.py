"""Sync Doctor's real app, pointed at a sandbox org running in another process (as Dataverse would be).

python bench/bot_with_remote_org.py BOT_PORT SANDBOX_URL TOKEN
"""

from __future__ import annotations

import sys

from aiohttp import web

from bot.app import create_app
from bot.clients.auth import StaticTokenProvider
from bot.clients.factory import clients_for
from bot.config import Settings

port, url, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
clients = clients_for(url, url, StaticTokenProvider(token))
web.run_app(create_app(Settings(), clients=clients), host="127.0.0.1", port=port, print=None, access_log=None)
