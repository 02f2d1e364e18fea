"""What a set of Okta credentials may do, probed without changing anything (`oktasync check`).

Each resource type probes its own capabilities (worker.connector.types, `probes`); how a probe
request reads is in worker.connector.probes. Limits: a 404 only proves the permission where Okta
authorises before it looks the object up, which is how its admin-role checks work for role-wide
permissions; a group admin scoped to some groups may be told 404 for an id outside its scope.
Nothing is ever created, changed or deleted.
"""

from __future__ import annotations

from typing import Any

from worker.connector.probes import Capability, CredentialsRejected, ProbeFailed, capability
from worker.connector.system_log import LOG_PERMISSION, LOGS_PATH
from worker.connector.types import TYPES, user

# The product documentation's table, in its order.
CAPABILITIES = (
    "review group membership",
    "provision group membership",
    "review app assignment",
    "provision app assignment",
    "review admin roles",
    "review service-app admin roles",
    "create group",
    "modify group",
    "delete group",
    "create account",
    "update user",
    "sync secrets",
    "incremental sync (System Log)",
)

__all__ = ["CAPABILITIES", "Capability", "CredentialsRejected", "ProbeFailed", "probe"]


def probe(client: Any) -> tuple[list[Capability], list[str]]:
    """Probe every capability of the product documentation's table: (capabilities, notes).

    Raises CredentialsRejected when the credentials do not work at all."""
    notes: list[str] = []
    # Credentials at all: the users list (an org always has a user). 401 -> CredentialsRejected.
    users_ok, users_detail = user.users_readable(client)
    if users_ok is not True:
        notes.append(f"users: {users_detail}")
    found: dict[str, Capability] = {}
    for t in TYPES.values():
        found.update(t.probes(client))
    # Incremental sync reads the System Log (okta.logs.read); without it every run is full.
    name = CAPABILITIES[-1]
    found[name] = capability(name, f"GET {LOGS_PATH}?limit=1 (needs {LOG_PERMISSION})",
                             lambda: client.get(f"{LOGS_PATH}?limit=1"))
    return [found[name] for name in CAPABILITIES], notes
