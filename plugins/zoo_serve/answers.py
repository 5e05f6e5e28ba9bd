"""What the app shows of the catalogue, the registry and the runs: the CLI's own ``--json`` answers, asked in this
process (``zoo list``, ``zoo info``, ``zoo registry list|show``, ``zoo runs``).

The commands build their JSON inside themselves, so the app runs them rather than rebuilding their output: the
API's shapes are the CLI's by construction, and a field a command gains shows here too. A command writes to
stdout, which is the process's own, so one command runs at a time (``CATALOGUE_LOCK``, which also guards the
in-process catalogue while the registry's tags are refreshed). Names from a request are checked by the spine
(``zoo_core.resolve``) before they reach a command, and always follow ``--``, so no request text is read as an
option.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from typing import Any

from zoo_core import Resolved, parse, resolve
from zoo_core.plugin_api import UnknownNameError, UsageError, ZooError, cli_main, get_catalogue, refresh_weights
from zoo_serve.errors import NotFound

CATALOGUE_LOCK = threading.RLock()
ERROR_PREFIX = "zoo: error: "
SORTS = ("name", "params", "gmacs", "top1")
BOUNDS = ("min_params", "max_params", "min_gmacs", "max_gmacs", "min_top1", "max_top1")
WILDCARDS = "*?["


def cli_json(*args: str) -> Any:
    """``zoo ARGS`` (which must ask for JSON) run in this process: its JSON, or its one-line error raised."""
    out, err = io.StringIO(), io.StringIO()
    with CATALOGUE_LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(list(args))
    lines = err.getvalue().splitlines()
    errors = [line.removeprefix(ERROR_PREFIX) for line in lines if line.startswith(ERROR_PREFIX)]
    for line in lines:  # warnings (a skipped registry entry, ...) belong on the server's stderr
        if not line.startswith(ERROR_PREFIX):
            print(line, file=sys.stderr)
    text = out.getvalue()
    if code in (0, 1) and text.strip():  # `registry show` exits 1 with its JSON when an entry has problems
        return json.loads(text)
    message = errors[-1] if errors else f"`zoo {args[0]}` failed (exit code {code})"
    if code == 2:
        raise NotFound(message) if message.startswith("unknown ") else UsageError(message)
    raise ZooError(message)


def checked(name: str, weights: bool = False) -> Resolved:
    """``name`` through the spine, refusing what would change this machine: a source name (``hf-hub:...``) is
    pulled into the registry, so the app names only what is here. ``weights``: a tag is required. A tag
    published since the app started is found too (the registry's tags are read again once)."""
    ref = parse(name)
    known = get_catalogue().plugin_order
    if ref.is_source or (ref.plugin is not None and ref.plugin not in known):
        raise UsageError(f"{name}: the web app shows what is on this machine; fetch it first with "
                         f"`zoo pull {name}`")  # fmt: skip
    with CATALOGUE_LOCK:
        try:
            found = resolve(ref)
        except UnknownNameError:
            refresh_weights()
            found = resolve(ref)
    if weights and found.tag is None:
        raise NotFound(f"{name} names no weights: give MODEL.TAG")
    return found


def refreshed_registry() -> None:
    """Read the registry's tags again: another process may have published or removed weights."""
    with CATALOGUE_LOCK:
        refresh_weights()


# -- the catalogue ------------------------------------------------------------------------------------


def patterns(query: str) -> list[str]:
    """A search box's text as ``zoo list`` patterns: each word is a wildcard (``res*50``) or matches anywhere
    in a name; a model matching any word is listed."""
    found: list[str] = []
    for word in query.split():
        for form in dict.fromkeys((word, word.lower())):
            found.append(form if any(c in form for c in WILDCARDS) else f"*{form}*")
    return found


def list_models(
    query: str = "", plugin: str | None = None, pretrained: bool = False, sort: str = "name",
    bounds: dict[str, str] | None = None, family: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """``zoo list --json`` for a search: its rows, then only those of ``family`` (a filter zoo list has not)."""
    if sort not in SORTS:
        raise UsageError(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")
    args = ["list", "--json", f"--sort={sort}"]
    if plugin:
        args.append(f"--plugin={plugin}")
    if pretrained:
        args.append("--pretrained")
    for key, value in (bounds or {}).items():
        if key not in BOUNDS:
            raise UsageError(f"unknown filter {key!r}; the filters are {', '.join(BOUNDS)}")
        if value and value.strip():
            args.append(f"--{key.replace('_', '-')}={value.strip()}")
    rows = cli_json(*args, "--", *patterns(query))
    return [r for r in rows if not family or r.get("family") == family]


def model_info(found: Resolved) -> dict[str, Any]:
    """``zoo info NAME --json``."""
    return cli_json("info", "--json", "--", found.qualified)


def model_tags(found: Resolved) -> list[dict[str, Any]]:
    """``zoo list MODEL --tags --json``: a row per pretrained tag, with its preprocessing, top-1 and licence."""
    if not found.entry.pretrained:
        return []
    return cli_json("list", "--tags", "--json", "--", found.entry.qualified)


def facets() -> dict[str, list[str]]:
    """The plugins and families of the whole catalogue, for the search form's choices."""
    rows = cli_json("list", "--json")
    return {"plugins": sorted({r["plugin"] for r in rows}), "families": sorted({r["family"] for r in rows})}


# -- the registry and the runs -------------------------------------------------------------------------


def registry_entries() -> list[dict[str, Any]]:
    """``zoo registry list --json``."""
    return cli_json("registry", "list", "--json")


def registry_entry(name: str) -> dict[str, Any]:
    """``zoo registry show MODEL.TAG --json`` of published weights (a tag of another source is no entry)."""
    checked(name, weights=True)
    return cli_json("registry", "show", "--json", "--", str(parse(name)))


def runs() -> list[dict[str, Any]]:
    """``zoo runs --json``."""
    return cli_json("runs", "--json")
