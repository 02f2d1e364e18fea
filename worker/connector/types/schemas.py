"""The actions and their argument schemas as users read them (baton's --list-action-schemas):
built from the same Arg schemas intake validates against, so the listing cannot drift."""

from __future__ import annotations

from typing import Any

from worker.connector.types import TYPES
from worker.connector.types.base import Arg

# Arg.type -> the name a user reads
TYPE_NAMES = {"str": "string", "bool": "boolean", "list": "list of strings", "dict": "object"}


def arg_schema(name: str, arg: Arg) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": TYPE_NAMES[arg.type], "required": arg.required}
    if arg.choices is not None:
        out["choices"] = list(arg.choices)
    if arg.max_len is not None:
        out["max_length"] = arg.max_len
    return out


def action_schemas() -> list[dict[str, Any]]:
    """Every action, in registry order, with its resource type and arguments (required first)."""
    out = []
    for rtype in TYPES.values():
        for action in rtype.actions:
            args = sorted(action.args.items(), key=lambda kv: not kv[1].required)
            schema = {"name": action.name, "resource_type": rtype.name, "args": [arg_schema(n, a) for n, a in args]}
            if action.note:
                schema["note"] = action.note
            out.append(schema)
    return out


def describe(schema: dict[str, Any]) -> str:
    """The action and its resource type, its note, then one line per argument: name, type, (required)."""
    lines = [f"{schema['name']}  ({schema['resource_type']})"]
    if "note" in schema:
        lines.append(f"    -- {schema['note']}")
    for a in schema["args"]:
        kind = a["type"] + (f", one of {'|'.join(a['choices'])}" if "choices" in a else "")
        kind += f", 1-{a['max_length']} characters" if "max_length" in a else ""
        lines.append(f"    {a['name']:<36} {kind}{'  (required)' if a['required'] else ''}")
    return "\n".join(lines)
