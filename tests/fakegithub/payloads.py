"""Vendored webhook payloads (real examples from ``@octokit/webhooks-examples``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

PAYLOAD_DIR = Path(__file__).with_name("payloads")


def available_payloads() -> list[str]:
    return sorted(p.stem for p in PAYLOAD_DIR.glob("*.json") if not p.name.startswith("_"))


@cache
def _read(name: str) -> dict[str, Any]:
    path = PAYLOAD_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no vendored payload {name!r}; have {available_payloads()}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into ``base`` in place: dicts merge recursively, the rest replaces.

    A value of ``DELETE`` removes the key (e.g. to drop ``installation`` from a payload).
    """
    for key, value in overrides.items():
        if value is DELETE:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Any = _Delete()


def load_payload(name: str, **overrides: Any) -> dict[str, Any]:
    """A fresh copy of payload ``name`` (``"<event>.<action>"`` or ``"ping"``).

    Keyword overrides are deep-merged, e.g.
    ``load_payload("pull_request.opened", pull_request={"draft": True})``.
    """
    return deep_merge(copy.deepcopy(_read(name)), overrides)


def event_of(name: str) -> str:
    """The ``X-GitHub-Event`` header for payload ``name``."""
    return name.split(".", 1)[0]
