"""The recipe schema: what a plugin's ``zoo_register_recipes`` hook may register, checked field by field.

A recipe is data, never code: the model and dataset it trains, the ``zoo train`` settings it trains them with,
and what it is expected to reach on stated hardware. The host validates each one when the plugin loads (a
wrong field fails that plugin with a message naming it) and caches it with the plugin's other entries.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from zoo_core.errors import ZooError
from zoo_core.names import NAME_MAX, NAME_RE, parse

# field -> what it holds (docs/plugins.md has the table)
FIELDS = ("model", "dataset", "train", "expected", "description", "reference")
EXPECTED_NUMBERS = {"top1": (0.0, 100.0), "time_s": (0.0, math.inf)}
OPTION_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
MAX_TEXT = 2000


def validate_recipe(name: str, recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe as the catalogue keeps it; ValueError naming the field that is wrong."""
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > NAME_MAX:
        raise ValueError(f"invalid recipe name {name!r}: use letters, digits, '_' and '-', at most {NAME_MAX} "
                         "characters")  # fmt: skip
    unknown = sorted(set(recipe) - set(FIELDS))
    if unknown:
        raise ValueError(f"recipe {name!r}: unknown field(s) {', '.join(unknown)} (it may have {', '.join(FIELDS)})")
    out: dict[str, Any] = {}
    for key in ("model", "dataset"):
        value = recipe.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"recipe {name!r}: {key} must name a {key}, got {value!r}")
        out[key] = value
    try:
        parse(out["model"])  # the grammar only: the model's plugin may load after this one
    except ZooError as e:
        raise ValueError(f"recipe {name!r}: model: {e}") from None
    for key in ("description", "reference"):
        value = recipe.get(key, "")
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ValueError(f"recipe {name!r}: {key} must be text of at most {MAX_TEXT} characters")
        out[key] = value
    train = recipe.get("train", {})
    if not isinstance(train, dict) or not all(isinstance(k, str) and OPTION_RE.match(k) for k in train):
        raise ValueError(f"recipe {name!r}: train must map option names (such as 'epochs', 'batch_size') to values")
    out["train"] = _json(name, "train", train)
    expected = recipe.get("expected", {})
    if not isinstance(expected, dict):
        raise ValueError(f"recipe {name!r}: expected must be an object such as {{'top1': 91.0, 'hardware': '...'}}")
    for key, (low, high) in EXPECTED_NUMBERS.items():
        value = expected.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not low <= value <= high):  # fmt: skip
            raise ValueError(f"recipe {name!r}: expected.{key} must be a number in [{low:g}, {high:g}], got {value!r}")
    if not isinstance(expected.get("hardware", ""), str):
        raise ValueError(f"recipe {name!r}: expected.hardware must be text")
    out["expected"] = _json(name, "expected", expected)
    return out


def _json(name: str, key: str, value: Any) -> Any:
    """A deep copy through JSON: nothing the plugin keeps can change the catalogue's copy afterwards."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"recipe {name!r}: {key} is not JSON ({e})") from None
