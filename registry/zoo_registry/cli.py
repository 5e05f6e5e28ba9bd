"""``zoo registry list|show|remove|default|verify`` and ``zoo doctor``: the local registry of published weights
(``history|alias|rollback|lineage|diff|gc``: ``zoo_registry.versions_cli``)."""

from __future__ import annotations

from typing import Any

import click

from zoo_core.plugin_api import UsageError, echo_json
from zoo_registry.versions_cli import VERSION_COMMANDS


@click.group("registry")
def registry() -> None:
    """Weights published to the local registry ($ZOO_HOME/registry); each tag keeps numbered versions."""


@registry.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json: bool) -> None:
    """List every published tag with its current version (`zoo registry history MODEL.TAG` shows the others)."""
    from zoo_registry.layout import read_aliases, read_tag
    from zoo_registry.store import list_entries, registry_root

    entries = list_entries()
    counts = {e.tag_path: len(read_tag(e.tag_path).versions) for e in entries}
    aliases = {d: read_aliases(d) for d in {e.tag_path.parent for e in entries}}

    def aliases_of(e: Any) -> list[str]:
        return sorted(a for a, target in aliases[e.tag_path.parent].items() if target == (e.tag, e.version))

    if as_json:
        echo_json([{**e.to_dict(), "versions": counts[e.tag_path], "aliases": aliases_of(e)} for e in entries])
        return
    from zoo_core.plugin_api import format_table
    from zoo_registry.store import model_ref

    rows = []
    for e in entries:
        m = e.metrics
        top1 = f"{m['top1']:.2f}" if isinstance(m.get("top1"), (int, float)) else ""
        dataset = str(m.get("dataset") or (e.config.get("training") or {}).get("dataset") or "")
        size_mb = f"{(e.config.get('size_bytes') or 0) / 1e6:.1f}"
        created = str(e.config.get("created", ""))[:10]
        ref = f"{model_ref(e.model_name)}.{e.tag}"
        version = f"@{e.version} of {counts[e.tag_path]}" + "".join(f", {a}" for a in aliases_of(e))
        rows.append((ref, dataset, top1, e.config.get("num_classes"), size_mb, created, version))
    click.echo(format_table(["model.tag", "dataset", "test top-1 %", "classes", "MB", "created", "version"], rows))
    click.echo(f"{len(rows)} entries in {registry_root()}.")


@registry.command("show")
@click.argument("ref", metavar="MODEL[.TAG][@N]")
@click.option("--verify", is_flag=True,
              help="Also re-hash the weights and check their shapes against the model (slower).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show_cmd(ctx: click.Context, ref: str, verify: bool, as_json: bool) -> None:
    """Show an entry's config, metrics and files, and whether its files are whole (exit 1 when not)."""
    from zoo_core.plugin_api import Preprocessing, describe
    from zoo_registry.doctor import check_entry
    from zoo_registry.store import get, split_ref

    plugin, model, tag = split_ref(ref, default=True)
    entry = get(f"{plugin}:{model}", tag)
    problems = check_entry(entry.path, rehash=verify, shapes=verify)
    from zoo_registry.exports import list_for

    stored_exports = list_for(entry.sha256)  # verified exports of these very weights (zoo export)
    if as_json:
        echo_json({**entry.to_dict(full=True), "problems": [p.what for p in problems],
                   "exports": [e.to_dict() for e in stored_exports]})  # fmt: skip
    else:
        c = entry.config
        click.echo(f"{entry.ref}  ({c.get('num_classes')} classes, {c.get('num_params', 0):,} parameters)")
        click.echo(f"  path           {entry.path}")
        click.echo(f"  weights        {c.get('weights_file')}  {c.get('size_bytes', 0):,} bytes")
        click.echo(f"  sha256         {entry.sha256}{'  (verified)' if verify and not problems else ''}")
        kwargs = ", ".join(f"{k}={v}" for k, v in sorted(c.get("model_kwargs", {}).items()))
        click.echo(f"  built with     {kwargs or 'the defaults'}")
        labels = c.get("labels") or []
        more = f" ... (+{len(labels) - 10})" if len(labels) > 10 else ""
        click.echo(f"  labels         {', '.join(labels[:10])}{more}")
        pre = c.get("preprocessing") or {}
        if pre.get("input_size") and pre.get("mean") and pre.get("std"):
            shown = describe(Preprocessing(**{**pre, "input_size": tuple(pre["input_size"]),
                                              "mean": tuple(pre["mean"]), "std": tuple(pre["std"])}))  # fmt: skip
            click.echo(f"  preprocessing  {shown}")
        metrics = entry.metrics
        figures = [f"{k} {v}" for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        click.echo(f"  metrics        {', '.join(figures[:8]) or 'none yet'}"
                   f"{' (on ' + str(metrics['dataset']) + ')' if metrics.get('dataset') else ''}")  # fmt: skip
        training = c.get("training") or {}
        click.echo(f"  created        {c.get('created')} by zoo {c.get('zoo_version')}")
        from zoo_registry.layout import read_tag
        from zoo_registry.lineage import of_entry, source_of

        count = len(read_tag(entry.tag_path).versions)
        state = "the current one" if entry.current else f"{entry.model_name}.{entry.tag} means another"
        click.echo(f"  version        {entry.version} of {count} ({state}); from {source_of(entry)}")
        parent = of_entry(entry).get("parent") or {}
        if parent.get("name"):
            click.echo(f"  parent         {parent['name']}  (`zoo registry lineage {entry.version_ref}`)")
        if c.get("origin"):
            click.echo(f"  origin         {c['origin']} at commit {c.get('revision')}")
        for push in c.get("pushed") or []:
            click.echo(f"  pushed         {push.get('repo')}@{str(push.get('commit'))[:12]} ({push.get('revision')}) "
                       f"{push.get('date', '')}")  # fmt: skip
        if training.get("command"):
            click.echo(f"  trained with   {training['command']}")
        for e in stored_exports:
            r = e.record
            parity = r.get("parity") or {}
            checked = (f"parity on {parity.get('images')} {parity.get('source')} images" if parity else
                       "top-1 drop {:.2f} points".format(((r.get("quantization") or {}).get("evaluation") or {})
                                                         .get("drop", 0.0)))  # fmt: skip
            click.echo(f"  export         {e.variant}  {r['size_bytes']:,} bytes, {r.get('exporter')}, {checked}: "
                       f"{e.file}")  # fmt: skip
        for p in problems:
            click.echo(f"  PROBLEM        {p.what}; `zoo doctor --fix` would {p.fix}")
    if problems:
        ctx.exit(1)


@registry.command("remove")
@click.argument("ref", metavar="MODEL.TAG[@N]")
@click.option("-y", "--yes", is_flag=True, help="Confirm the deletion (required).")
def remove_cmd(ref: str, yes: bool) -> None:
    """Delete one version (MODEL.TAG@N), or a tag with all its versions (MODEL.TAG); a broken one too."""
    from zoo_core.plugin_api import WeightsError
    from zoo_registry.layout import read_tag, split_version_tag, tag_dir
    from zoo_registry.store import get, locate, split_ref
    from zoo_registry.versions import remove

    plugin, model, name = split_ref(ref)
    tag, version = locate(plugin, model, name)
    if version is not None and split_version_tag(name) is None:
        raise UsageError(f"{plugin}:{model}.{name} is an alias of {plugin}:{model}.{tag}@{version}; delete the alias "
                         f"with `zoo registry alias {plugin}:{model}.{name} --delete`")  # fmt: skip
    try:
        entry = get(f"{plugin}:{model}", name)  # an unknown entry is an error even without --yes
        path = entry.path if version is not None else entry.tag_path
    except WeightsError:  # broken: it exists, and removing it is the way out
        path = tag_dir(plugin, model, tag)
    if version is not None:
        what, shown = f"version {version} of {plugin}:{model}.{tag}", f"{plugin}:{model}.{tag}@{version}"
    else:
        count = len(read_tag(tag_dir(plugin, model, tag)).versions)
        what, shown = f"{count} version(s) of {plugin}:{model}.{tag}", f"{plugin}:{model}.{tag}"
    if not yes:
        raise UsageError(f"`zoo registry remove {ref}` deletes {what} ({path}); add --yes to confirm")
    remove(f"{plugin}:{model}", name)
    click.echo(f"removed {shown} ({path})")


registry.add_command(click.Command("rm", callback=remove_cmd.callback, params=remove_cmd.params,
                                   help=remove_cmd.help, short_help="The same as `zoo registry remove`."))


@registry.command("default")
@click.argument("model")
@click.argument("tag", required=False)
@click.option("--clear", is_flag=True, help="Remove the default: MODEL then has none.")
def default_cmd(model: str, tag: str | None, clear: bool) -> None:
    """Set the weights MODEL means with pretrained=True (and in `zoo eval MODEL`): a published TAG."""
    from zoo_core import parse
    from zoo_registry.store import get_default, set_default

    ref = parse(model)
    if ref.tag is not None and tag is None and not clear:
        model, tag = ref.model, ref.tag  # MODEL.TAG, the way weights are named everywhere else
    if clear:
        set_default(model, None)
        click.echo(f"{model} has no default weights now")
        return
    if tag is None:
        current = get_default(model)
        click.echo(f"{model}: default {current}" if current else f"{model} has no default weights (set one: "
                   f"zoo registry default {model} TAG)")  # fmt: skip
        return
    set_default(model, tag)
    click.echo(f"{model} means {model}.{tag} now (pretrained=True, `zoo eval {model}`)")


@click.command("doctor")
@click.option("--fix", is_flag=True, help="Repair what can be repaired (damaged entries are quarantined).")
@click.option("--no-hash", is_flag=True, help="Skip re-hashing the weights (faster; sizes are still checked).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor_cmd(ctx: click.Context, fix: bool, no_hash: bool, as_json: bool) -> None:
    """Check every registry entry (sha256, config against weights, card) and what killed publishes left
    behind; --fix repairs. Exit 1 when something is (still) wrong."""
    from zoo_registry.doctor import examine
    from zoo_registry.store import registry_root

    problems = examine(fix=fix, rehash=not no_hash)
    if as_json:
        echo_json([p.to_dict() for p in problems])
    elif not problems:
        click.echo(f"the registry is healthy ({registry_root()})")
    else:
        from zoo_core.plugin_api import format_table

        root = registry_root()
        rows = [(str(p.path.relative_to(root)) if p.path.is_relative_to(root) else str(p.path), p.what,
                 ("fixed: " if p.fixed else "fix: ") + (p.fix or "none; remove it yourself"))
                for p in problems]  # fmt: skip
        click.echo(format_table(["where", "problem", "repair"], rows))
        left = sum(not p.fixed for p in problems)
        hint = "" if fix or not left else "; `zoo doctor --fix` repairs them"
        click.echo(f"{len(problems)} problem(s), {left} left{hint}")
    if any(not p.fixed for p in problems):
        ctx.exit(1)


verify_cmd = click.Command("verify", callback=doctor_cmd.callback, params=doctor_cmd.params,
                           help=doctor_cmd.help, short_help="The same as `zoo doctor`.")  # fmt: skip
registry.add_command(verify_cmd)
for command in VERSION_COMMANDS:
    registry.add_command(command)
