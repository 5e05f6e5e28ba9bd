"""``zoo recipes`` and ``zoo recipes show NAME``: parse, call zoo_train.recipes, print."""

from __future__ import annotations

import click

from zoo_core.plugin_api import echo_json, format_table, json_option


def _top1(recipe: dict) -> str:
    top1 = (recipe.get("expected") or {}).get("top1")
    return f"{top1}%" if top1 is not None else ""


def _time(recipe: dict) -> str:
    seconds = (recipe.get("expected") or {}).get("time_s")
    if seconds is None:
        return ""
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:g} s"


@click.group("recipes", invoke_without_command=True)
@json_option
@click.pass_context
def recipes_cmd(ctx: click.Context, as_json: bool) -> None:
    """Training recipes: model, dataset, epochs, the top-1 each reaches and how long it took here.

    \b
    zoo recipes
    zoo recipes show cifar10-fast
    zoo train --recipe cifar10-fast --data-dir DIR --tag fast
    """
    if ctx.invoked_subcommand is not None:
        return
    from zoo_train.recipes import list_recipes

    rows = list_recipes()
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no recipes: no plugin registers one")
        return
    click.echo(format_table(
        ["name", "model", "dataset", "epochs", "expected top-1", "time measured here"],
        [(r["name"], r["model"], r["dataset"], r["train"].get("epochs", ""), _top1(r), _time(r)) for r in rows],
    ))  # fmt: skip
    click.echo("see one: zoo recipes show NAME; train it: zoo train --recipe NAME [options that override it]")


@recipes_cmd.command("show")
@click.argument("name")
@json_option
def recipes_show(name: str, as_json: bool) -> None:
    """Everything recipe NAME sets, what it is expected to reach, and the command that trains it."""
    from zoo_train.recipes import describe, get_recipe

    entry = get_recipe(name)
    recipe = entry.metadata
    if as_json:
        echo_json({"name": entry.name, "qualified": entry.qualified, "plugin": entry.plugin, **recipe})
        return
    click.echo(f"{entry.qualified}: {recipe['description']}" if recipe.get("description") else entry.qualified)
    click.echo(format_table(["setting", "value"], describe(recipe)))
    if recipe.get("reference"):
        click.echo(f"reference: {recipe['reference']}")
    click.echo(f"train it: zoo train --recipe {name} [--data-dir DIR] [--tag TAG] (any other option overrides it)")
