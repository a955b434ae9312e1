"""posdoctor.host: the CUP-style ISO 8583 acquiring host.

`HostServer(store, hsm, config)` listens (`await start()` -> (host, port)) and runs
every message through a pipeline of small steps chosen by the route table
(`routes.ROUTES`); `provision_terminal` / `provision_card` set up what it serves.
"""

from posdoctor.host.config import HostConfig
from posdoctor.host.context import Context, Session
from posdoctor.host.provision import CardSheet, KeyRoomSheet, provision_card, provision_terminal, rekey_terminal
from posdoctor.host.results import Result, response_code
from posdoctor.host.routes import ROUTES
from posdoctor.host.server import HostServer

__all__ = [
    "CardSheet", "Context", "HostConfig", "HostServer", "KeyRoomSheet", "ROUTES", "Result", "Session",
    "provision_card", "provision_terminal", "rekey_terminal", "response_code",
]
