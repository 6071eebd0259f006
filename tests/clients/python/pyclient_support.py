"""What the Python client's tests share besides fixtures: paths, and helpers for subprocesses and
server statistics. Importing it puts tests/support and clients/python on sys.path."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CLIENT = REPO / "clients" / "python"
for path in (HERE, CLIENT, REPO / "tests" / "support"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def client_env():
    """The environment of a subprocess that imports redis_shield from clients/python."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(CLIENT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def command_calls(client, command):
    """How many times the server ran `command` since its last CONFIG RESETSTAT (INFO commandstats;
    the entry's name keeps the case the module registered it with)."""
    for name, stats in client.info("commandstats").items():
        if name.lower() == f"cmdstat_{command.lower()}":
            return int(stats["calls"])
    return 0
