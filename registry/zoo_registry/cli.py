"""``zoo registry list|show|remove``: the local registry of published weights."""

from __future__ import annotations

import json

import click

from zoo_core.console import echo_json
from zoo_core.errors import UsageError


def _metrics_summary(metrics: dict) -> str:
    """The first few numeric metrics, for a table cell."""
    shown = [f"{k}={v}" for k, v in metrics.items() if type(v) in (int, float)]
    return " ".join(shown[:3])


@click.group("registry")
def registry() -> None:
    """Weights published to the local registry ($ZOO_HOME/registry); each is a pretrained tag."""


@registry.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json: bool) -> None:
    """List every published entry."""
    from zoo_registry.store import list_entries, registry_root

    entries = list_entries()
    if as_json:
        echo_json([e.to_dict() for e in entries])
        return
    from zoo_core.table import format_table

    rows = [
        (e.ref, e.config.get("num_classes"), f"{(e.config.get('size_bytes') or 0) / 1e6:.1f}",
         e.config.get("created", ""), _metrics_summary(e.metrics))
        for e in entries
    ]  # fmt: skip
    click.echo(format_table(["model.tag", "classes", "MB", "created", "metrics"], rows))
    click.echo(f"{len(rows)} entries in {registry_root()}.")


@registry.command("show")
@click.argument("ref", metavar="MODEL.TAG")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_cmd(ref: str, as_json: bool) -> None:
    """Show an entry's config, metrics and files; MODEL may be bare (simplecnn) or qualified."""
    from zoo_registry.store import get, split_ref

    plugin, model, tag = split_ref(ref)
    entry = get(f"{plugin}:{model}", tag)
    if as_json:
        echo_json(entry.to_dict(full=True))
        return
    c = entry.config
    click.echo(f"{entry.ref}  ({c.get('num_classes')} classes, {c.get('num_params', 0):,} parameters)")
    click.echo(f"  path           {entry.path}")
    click.echo(f"  weights        {c.get('weights_file')}  {c.get('size_bytes', 0):,} bytes")
    click.echo(f"  sha256         {entry.sha256}")
    click.echo(f"  model_kwargs   {json.dumps(c.get('model_kwargs', {}), sort_keys=True)}")
    labels = c.get("labels") or []
    more = f" ... (+{len(labels) - 10})" if len(labels) > 10 else ""
    click.echo(f"  labels         {', '.join(labels[:10])}{more}")
    click.echo(f"  preprocessing  {json.dumps(c.get('preprocessing', {}), sort_keys=True)}")
    click.echo(f"  metrics        {json.dumps(entry.metrics, sort_keys=True)}")
    click.echo(f"  created        {c.get('created')} by zoo {c.get('zoo_version')}")
    if c.get("origin"):
        click.echo(f"  origin         {c['origin']} at commit {c.get('revision')}")
    for push in c.get("pushed") or []:
        click.echo(f"  pushed         {push.get('repo')}@{str(push.get('commit'))[:12]} ({push.get('revision')}) "
                   f"{push.get('date', '')}")  # fmt: skip
    if c.get("training"):
        click.echo(f"  training       {json.dumps(c['training'], sort_keys=True)}")


@registry.command("remove")
@click.argument("ref", metavar="MODEL.TAG")
@click.option("--yes", is_flag=True, help="Confirm the deletion (required).")
def remove_cmd(ref: str, yes: bool) -> None:
    """Delete a published entry and its files."""
    from zoo_registry.store import get, remove, split_ref

    plugin, model, tag = split_ref(ref)
    entry = get(f"{plugin}:{model}", tag)  # an unknown entry is an error even without --yes
    if not yes:
        raise UsageError(f"`zoo registry remove {ref}` deletes {entry.path}; add --yes to confirm")
    remove(entry.model_name, tag)
    click.echo(f"removed {entry.ref} ({entry.path})")
