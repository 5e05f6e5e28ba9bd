"""``zoo registry history|alias|rollback|lineage|diff|gc``: a tag's versions, its aliases and where they came from
(``zoo_registry.versions``, ``lineage``, ``diff``)."""

from __future__ import annotations

from typing import Any

import click

from zoo_core.plugin_api import UsageError, echo_json


def _entry(name: str) -> Any:
    """The version any name of published weights means (``MODEL.TAG``, ``@N``, an alias, ``hf-hub:``)."""
    from zoo_registry.store import get, split_ref

    plugin, model, tag = split_ref(name, default=True)
    return get(f"{plugin}:{model}", tag)


def _tag_of(name: str) -> tuple[str, str, int | None]:
    """``MODEL.TAG[@N]`` -> (plugin:model, tag, N or None), refusing an alias where a tag is meant."""
    from zoo_core import parse
    from zoo_registry.store import locate, qualified_parts

    ref = parse(name)
    if ref.is_source or not ref.tag:
        raise UsageError(f"expected MODEL.TAG (for example simplecnn.mytag), got {name!r}")
    plugin, model = qualified_parts(ref)
    tag, aliased = locate(plugin, model, ref.tag)
    if aliased is not None:
        raise UsageError(f"{ref.model}.{ref.tag} names {ref.model}.{tag}@{aliased}; give the tag itself: "
                         f"{ref.model}.{tag}")  # fmt: skip
    return f"{plugin}:{model}", tag, ref.version


def _shown(qualified: str, tag: str, version: int | None = None) -> str:
    from zoo_registry.store import model_ref

    return f"{model_ref(qualified)}.{tag}" + (f"@{version}" if version is not None else "")


@click.command("history")
@click.argument("ref", metavar="MODEL.TAG")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history_cmd(ref: str, as_json: bool) -> None:
    """Every version of a tag: number, date, source, top-1 and its dataset, size, sha256, aliases."""
    from zoo_registry.versions import history

    model, tag, _ = _tag_of(ref)
    versions = history(model, tag)
    if as_json:
        echo_json([v.to_dict() for v in versions])
        return
    from zoo_core.plugin_api import format_table

    rows = []
    for v in versions:
        d = v.to_dict()
        m = d["metrics"]
        top1 = f"{m['top1']:.2f}" if isinstance(m.get("top1"), (int, float)) else ""
        measured = " ".join(str(m[k]) for k in ("dataset", "split") if m.get(k))
        size = f"{(d['size_bytes'] or 0) / 1e6:.1f}"
        names = ", ".join(v.aliases) + (" (current)" if d["current"] else "")
        rows.append((d["version"], str(d["created"] or "")[:16].replace("T", " "), d["source"], top1, measured, size,
                     d["sha256"][:12], names.strip()))  # fmt: skip
    click.echo(format_table(["version", "created", "source", "top-1 %", "measured on", "MB", "sha256", "names"], rows,
                            right=(0,)))  # fmt: skip


@click.command("alias")
@click.argument("alias", metavar="MODEL.ALIAS")
@click.argument("target", metavar="MODEL.TAG[@N]", required=False)
@click.option("--delete", is_flag=True, help="Delete the alias (the version it names stays).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def alias_cmd(alias: str, target: str | None, delete: bool, as_json: bool) -> None:
    """Make MODEL.ALIAS a name for one version of a tag (MODEL.TAG@N; MODEL.TAG: its current version). Run it
    again to move the alias; without TARGET, show what it names."""
    from zoo_core import parse
    from zoo_registry.store import qualified_parts
    from zoo_registry.versions import aliases_of, delete_alias, set_alias

    ref = parse(alias)
    if ref.is_source or not ref.tag or ref.version is not None:
        raise UsageError(f"expected MODEL.ALIAS (for example simplecnn.champion), got {alias!r}")
    plugin, model = qualified_parts(ref)
    qualified = f"{plugin}:{model}"
    if delete:
        if target:
            raise UsageError("--delete takes the alias alone")
        tag, version = delete_alias(qualified, ref.tag)
        result = {"alias": f"{qualified}.{ref.tag}", "deleted": True, "named": f"{qualified}.{tag}@{version}"}
        message = f"deleted the alias {_shown(qualified, ref.tag)} (it named {_shown(qualified, tag, version)})"
    elif target is None:
        named = aliases_of(qualified).get(ref.tag)
        if named is None:
            from zoo_core.plugin_api import UnknownNameError

            raise UnknownNameError(f"alias of {qualified}", ref.tag, sorted(aliases_of(qualified))[:4])
        result = {"alias": f"{qualified}.{ref.tag}", "names": f"{qualified}.{named[0]}@{named[1]}"}
        message = f"{_shown(qualified, ref.tag)} -> {_shown(qualified, *named)}"
    else:
        to = parse(target)
        if to.is_source or not to.tag or qualified_parts(to) != (plugin, model):
            raise UsageError(f"the target must be a tag of the same model: {ref.model}.TAG[@N], got {target!r}")
        before, (tag, version) = set_alias(qualified, ref.tag, to.tag, to.version)
        result = {"alias": f"{qualified}.{ref.tag}", "names": f"{qualified}.{tag}@{version}",
                  "before": f"{qualified}.{before[0]}@{before[1]}" if before else None}  # fmt: skip
        moved = f" (moved from {_shown(qualified, *before)})" if before and before != (tag, version) else ""
        message = f"{_shown(qualified, ref.tag)} -> {_shown(qualified, tag, version)}{moved}"
    if as_json:
        echo_json(result)
    else:
        click.echo(message)


@click.command("rollback")
@click.argument("ref", metavar="MODEL.TAG")
@click.argument("version", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rollback_cmd(ref: str, version: int | None, as_json: bool) -> None:
    """Make version N the one MODEL.TAG means again (also: MODEL.TAG@N). No version is removed."""
    from zoo_registry.versions import rollback

    model, tag, at = _tag_of(ref)
    if (version is None) == (at is None):
        raise UsageError(f"name the version once: zoo registry rollback {ref.split('@')[0]} N")
    number = version if version is not None else at
    assert number is not None
    before, now = rollback(model, tag, number)
    if as_json:
        echo_json({"tag": f"{model}.{tag}", "current": now, "before": before})
        return
    was = f" (was @{before}; every version is kept)" if before != now else " (it already did)"
    click.echo(f"{_shown(model, tag)} means {_shown(model, tag, now)} now{was}")


@click.command("lineage")
@click.argument("ref", metavar="MODEL.TAG[@N]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def lineage_cmd(ref: str, as_json: bool) -> None:
    """Where a version came from, as a tree: parent weights (followed through the registry), dataset and its
    fingerprint, recipe, run, software and exports."""
    from zoo_registry.ancestry import chain
    from zoo_registry.lineage import render

    tree = chain(_entry(ref))
    if as_json:
        echo_json(tree)
        return
    import sys

    try:
        "├└│─".encode(sys.stdout.encoding or "ascii")
        plain = False
    except (UnicodeEncodeError, LookupError):
        plain = True
    for line in render(tree, plain):
        click.echo(line)


@click.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True,
              help="How many of the most changed classes and tensors to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def diff_cmd(a: str, b: str, top: int, as_json: bool) -> None:
    """Compare two versions or tags (MODEL.TAG, MODEL.TAG@N, an alias): metrics, per-class top-1, settings and
    the relative L2 change of each weight tensor."""
    from zoo_registry.diff import diff, render

    result = diff(_entry(a), _entry(b), top)
    if as_json:
        echo_json(result)
        return
    for line in render(result, top):
        click.echo(line)


@click.command("gc")
@click.argument("scope", metavar="[MODEL[.TAG]]", required=False)
@click.option("--keep", type=click.IntRange(0), required=True, metavar="N",
              help="Keep each tag's N newest versions (its current one and aliased ones are always kept).")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Confirm the deletion (required unless --dry-run).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def gc_cmd(scope: str | None, keep: int, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Remove old versions: all but each tag's N newest, its current one and those an alias names; then the
    weights no version uses any more. Of every tag, or of one model or tag."""
    from zoo_core import parse
    from zoo_registry.versions import collect, gc

    model = tag = None
    if scope:
        ref = parse(scope)
        if ref.is_source or ref.version is not None:
            raise UsageError(f"gc takes MODEL or MODEL.TAG, got {scope!r}")
        model, tag = ref.model, ref.tag
    doomed = collect(keep, model, tag)
    size = sum(d.entry.config.get("size_bytes") or 0 for d in doomed)
    if not dry_run and doomed and not yes:
        names = ", ".join(d.entry.version_ref for d in doomed[:4]) + (" ..." if len(doomed) > 4 else "")
        raise UsageError(f"gc would remove {len(doomed)} version(s) ({names}); add --yes to remove them, or "
                         "--dry-run to list them")  # fmt: skip
    if dry_run:
        removed, freed = doomed, 0
    else:
        removed, freed = gc(doomed)
    if as_json:
        echo_json({"dry_run": dry_run, "keep": keep, "removed": [d.to_dict() for d in removed],
                   "freed_bytes": freed if not dry_run else None})  # fmt: skip
        return
    verb = "would remove" if dry_run else "removed"
    for d in removed:
        e = d.entry
        click.echo(f"{verb} {_shown(e.model_name, e.tag, e.version)}  {str(e.config.get('created', ''))[:10]}  "
                   f"sha256 {e.sha256[:12]}")  # fmt: skip
    if dry_run:
        click.echo(f"{len(removed)} version(s), {size / 1e6:.1f} MB of weights files (less what other versions "
                   "share); nothing was removed")  # fmt: skip
    else:
        click.echo(f"{len(removed)} version(s) removed, {freed / 1e6:.1f} MB freed")


VERSION_COMMANDS = (history_cmd, alias_cmd, rollback_cmd, lineage_cmd, diff_cmd, gc_cmd)
