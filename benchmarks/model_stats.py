"""Write what zoo ships for its built-in cnn, torchvision and timm plugins (``zoo_core.shipped``): their models'
parameters and GMACs (zoo_core/data/model_stats.json), so that a first ``zoo list --sort params`` counts
nothing, and their catalogue (zoo_core/data/catalogue.json.gz), so that a first ``zoo list`` imports no timm.

    python benchmarks/model_stats.py              # count what changed (a plugin whose fingerprint differs)
    python benchmarks/model_stats.py --force      # count everything again
    python benchmarks/model_stats.py --jobs 2     # in two processes

Each plugin's section records its fingerprint: the releases of torch and of the plugin's library, and a digest
of the plugin's code. zoo uses a section only where that fingerprint is this installation's; so run this after
upgrading torch, torchvision or timm, or after editing a built-in plugin, and commit both files. Every count is
what ``zoo_core.stats_cache.count`` gives for the query, exactly as a live count would: one line per query key;
the catalogue is what the plugins' hooks register here, loaded live (no cache, nothing shipped used).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from zoo_core.shipped import LIBRARIES


def queries(plugin: str) -> dict[str, tuple[Any, list[str]]]:
    """Every query ``zoo list`` / ``zoo info`` can make of the plugin's models (each model, each tag), by key,
    with the fields its metadata leaves to counting."""
    from zoo_core.plugins import get_catalogue
    from zoo_core.stats_cache import FIELDS, model_query, tag_query

    found: dict[str, tuple[Any, list[str]]] = {}
    for entry in get_catalogue().find("model", plugin=plugin):
        if entry.plugin != plugin:
            continue
        for q in (model_query(entry), *(tag_query(entry, tag) for tag in entry.pretrained)):
            missing = [f for f in FIELDS if f not in q.known]
            if missing and q.key not in found:
                found[q.key] = (q, missing)
    return found


def count_keys(plugin: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Count the given query keys of the plugin (in this process)."""
    from zoo_core.stats_cache import count

    todo = queries(plugin)
    return {key: count(*todo[key]) for key in keys}


def _count_chunk(args: tuple[str, list[str]]) -> dict[str, dict[str, Any]]:
    return count_keys(*args)


def section_lines(name: str, section: dict[str, Any], last: bool) -> list[str]:
    """One plugin's section as JSON lines: its fingerprint on one line, then one line per query key."""
    head = {k: v for k, v in section.items() if k != "stats"}
    lines = [f'  {json.dumps(name)}: {json.dumps(head, sort_keys=True)[:-1]}, "stats": {{']
    stats = sorted(section["stats"].items())
    for i, (key, values) in enumerate(stats):
        comma = "," if i < len(stats) - 1 else ""
        lines.append(f"    {json.dumps(key)}: {json.dumps(values, sort_keys=True)}{comma}")
    lines.append("  }}" + ("" if last else ","))
    return lines


def write(path: Path, plugins: dict[str, dict[str, Any]]) -> None:
    from zoo_core.atomic_io import atomic_write_text
    from zoo_core.stats_cache import SHIPPED_SCHEMA

    about = "Parameters and GMACs of the built-in plugins' models, by query key; written by benchmarks/model_stats.py"
    lines = ["{", f'  "schema": {SHIPPED_SCHEMA},', f'  "about": {json.dumps(about)},', '  "plugins": {']
    names = sorted(plugins)
    for i, name in enumerate(names):
        lines += ["  " + line for line in section_lines(name, plugins[name], i == len(names) - 1)]
    lines += ["  }", "}", ""]
    text = "\n".join(lines)
    json.loads(text)  # never write a file zoo cannot read
    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: zoo's package data)")
    parser.add_argument("--plugins", default=",".join(LIBRARIES), help="built-in plugins to count (comma-separated)")
    parser.add_argument("--catalogue-out", type=Path, default=None, help="where to write the catalogue "
                        "(default: beside the counts)")
    parser.add_argument("--jobs", type=int, default=1, help="processes to count in")
    parser.add_argument("--force", action="store_true", help="count again what the file has for this fingerprint")
    args = parser.parse_args(argv)

    from zoo_core import shipped, stats_cache
    from zoo_core.plugins import get_host

    # every plugin loads live: a fresh cache, and no shipped catalogue to start from
    os.environ["ZOO_CACHE"] = tempfile.mkdtemp(prefix="zoo-ship-")
    shipped.CATALOGUE_PATH = Path(os.devnull)

    out = args.out or stats_cache.SHIPPED_PATH
    try:
        old = json.loads(out.read_text(encoding="utf-8")).get("plugins", {})
    except (OSError, ValueError):
        old = {}
    plugins = dict(old)
    host = get_host()
    for name in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        if name not in LIBRARIES:
            parser.error(f"{name} is not a built-in plugin with shipped counts ({', '.join(LIBRARIES)})")
        info = host.infos.get(name)
        if info is None or not info.builtin or info.status != "ok":
            parser.error(f"the built-in plugin {name} is not loaded here (ZOO_PLUGINS?)")
        finger = shipped.fingerprint(info.module, LIBRARIES[name])
        todo = queries(name)
        previous = old.get(name, {})
        reuse = not args.force and previous.get("versions") == finger["versions"] and \
            previous.get("source") == finger["source"]  # fmt: skip
        stats = {k: v for k, v in previous.get("stats", {}).items() if k in todo} if reuse else {}
        keys = [k for k in todo if k not in stats]
        began = time.monotonic()
        print(f"{name}: {len(todo)} queries, {len(keys)} to count ({finger['versions']}, code {finger['source']})",
              file=sys.stderr)  # fmt: skip
        if keys and args.jobs > 1:
            import multiprocessing

            chunks = [(name, keys[i :: args.jobs * 8]) for i in range(args.jobs * 8)]
            with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
                for counted in pool.imap_unordered(_count_chunk, chunks):
                    stats.update(counted)
        elif keys:
            stats.update(count_keys(name, keys))
        unknown = sum(any(v is None for v in values.values()) for values in stats.values())
        took = time.monotonic() - began
        print(f"{name}: counted {len(keys)} in {took:.0f} s; {unknown} with an unknown value", file=sys.stderr)
        if stats:
            plugins[name] = {"module": info.module, **finger, "stats": stats}
        else:
            plugins.pop(name, None)  # its metadata gives everything
    write(out, plugins)
    print(f"wrote {os.path.relpath(out)}", file=sys.stderr)
    catalogue_out = args.catalogue_out or out.with_name("catalogue.json.gz")
    sections = {}
    for name in LIBRARIES:
        info = host.infos.get(name)
        if info is None or not info.builtin or info.status != "ok":
            parser.error(f"the built-in plugin {name} is not loaded here (ZOO_PLUGINS?)")
        parts = {part: host.cached(name, part) for part in ("entries", "summary")}
        if None in parts.values():
            parser.error(f"the catalogue cache of {name} was not written under {os.environ['ZOO_CACHE']}")
        sections[name] = {"module": info.module, **shipped.fingerprint(info.module, LIBRARIES[name]), **parts}
    shipped.write_catalogue(catalogue_out, sections)
    print(f"wrote {os.path.relpath(catalogue_out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
