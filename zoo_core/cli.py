"""The ``zoo`` command line. The core's own commands are about the catalogue (``list``, ``info``,
``plugins``, ``cache``); every other command comes from a plugin's ``zoo_register_commands`` hook.

Plugin command names and their help come from the metadata cache, so ``zoo --help`` imports no plugin and
no torch; a command's plugin is imported when the command runs. Every ZooError becomes one line on stderr
and its exit code, through ``main``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from zoo_core.console import echo_json
from zoo_core.errors import UnknownNameError, UsageError, ZooError


class ZooGroup(click.Group):
    """A click group whose commands beyond its own come from the plugins."""

    def _plugin_commands(self) -> dict[str, Any]:
        from zoo_core.plugins import get_host

        return dict(get_host(entries=False).catalogue.bare("command"))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        own = super().get_command(ctx, name)
        if own is not None:
            return own
        entry = self._plugin_commands().get(name)
        if entry is not None:
            return entry.builder  # imports the plugin now; a plugin that fails is a one-line PluginError
        from zoo_core.plugins import get_host

        owner = get_host(entries=False).disabled_owner(name)
        if owner is not None:
            raise UsageError(f"`zoo {name}` comes from the plugin '{owner}', which ZOO_PLUGINS switches off; add it: "
                             f"ZOO_PLUGINS={os.environ.get('ZOO_PLUGINS', '')},{owner}")  # fmt: skip
        import difflib

        raise UnknownNameError("command", name, difflib.get_close_matches(name, self.list_commands(ctx), n=3))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, with plugin commands' help from the cache (no plugin is imported)."""
        rows = [(name, cmd.get_short_help_str(limit=formatter.width)) for name, cmd in self.commands.items()]
        rows += [(n, e.metadata.get("help", "")) for n, e in self._plugin_commands().items() if n not in self.commands]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `zoo list | head -1`: the reader has what it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo", prog_name="zoo")
def cli() -> None:
    """zoo: one catalogue of CNNs -- list, train, evaluate, benchmark and publish them."""


@cli.command("list")
@click.argument("patterns", nargs=-1)
@click.option("--plugin", help="Only models from this plugin.")
@click.option("--pretrained", is_flag=True, help="Only models with pretrained weights.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(patterns: tuple[str, ...], plugin: str | None, pretrained: bool, as_json: bool) -> None:
    """List models; PATTERNS are wildcards such as 'resnet*' or 'timm:efficientnet_*'."""
    from zoo_core.plugins import get_catalogue

    catalogue = get_catalogue()
    if plugin is not None and plugin not in catalogue.plugin_order:
        raise UnknownNameError("plugin", plugin, catalogue.plugin_order)
    entries = [e for e in catalogue.find("model", patterns, plugin) if not pretrained or e.pretrained]
    for pattern in patterns:
        if not any(c in pattern for c in "*?[") and not catalogue.find("model", [pattern], plugin):
            catalogue.get("model", pattern)  # an exact name that does not exist: say what is close
    if as_json:
        echo_json([
            {
                "name": e.name,
                "qualified": e.qualified,
                "plugin": e.plugin,
                "default": catalogue.is_default("model", e),
                "family": e.family,
                "input_size": e.input_size,
                "num_classes": e.num_classes,
                "pretrained": list(e.pretrained),
                "default_tag": e.default_tag,
            }
            for e in entries
        ])  # fmt: skip
        return
    rows = []
    for e in entries:
        tags = f"{len(e.pretrained)} ({e.default_tag})" if e.pretrained else ""
        size = "x".join(map(str, e.input_size[1:]))
        rows.append((catalogue.display_name("model", e), e.plugin, e.family, size, tags))
    from zoo_core.table import format_table

    click.echo(format_table(["name", "plugin", "family", "input", "pretrained (default)"], rows))
    click.echo(f"{len(rows)} models. A bare name means the first plugin's model; others: plugin:name.")


@cli.command("info")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-stats", is_flag=True, help="Skip building the model to count parameters and GMACs.")
def info_cmd(model: str, as_json: bool, no_stats: bool) -> None:
    """Show a model's plugin, size, cost, preprocessing and pretrained tags."""
    from zoo_core.models import model_info

    info = model_info(model, stats=not no_stats)
    if as_json:
        echo_json(info)
        return
    click.echo(f"{info['qualified']}  ({info['family']})  {info['description']}")
    if info["also_in"]:
        means = "means this one" if info["default"] else "is another plugin's"
        click.echo(f"  also in: {', '.join(info['also_in'])} -- the bare name '{info['name']}' {means}")
    click.echo(f"  input size    {info['input_size']}   mean {info['mean']}  std {info['std']}")
    click.echo(f"  classes       {info['num_classes']}")
    if "num_params" in info:
        click.echo(f"  parameters    {info['num_params']:,}")
        click.echo(f"  GMACs         {info['gmacs']} at {'x'.join(map(str, info['input_size'][1:]))}")
    if info["pretrained"]:
        click.echo(f"  pretrained    {len(info['pretrained'])} tags, default {info['default_tag']}")
        for tag, meta in info["pretrained"].items():
            metrics = {k: v for k, v in (meta.get("metrics") or {}).items() if isinstance(v, (int, float))}
            shown = "  ".join(f"{k}={v}" for k, v in list(metrics.items())[:4])
            click.echo(f"    {info['name']}.{tag:<24} {meta.get('source', '')}  {shown}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_cmd(as_json: bool) -> None:
    """Show every plugin: version, hooks, status and error."""
    from zoo_core.plugins import get_host

    host = get_host()
    order = host.catalogue.plugin_order
    infos = [i.to_dict() for i in sorted(host.plugin_list, key=lambda i: (i.name not in order, order.index(i.name)
                                                                          if i.name in order else 0, i.name))]
    for d in infos:
        d["models"] = sum(1 for e in host.catalogue.entries["model"].values() if e.plugin == d["name"])
        d["commands"] = sorted(e.name for e in host.catalogue.entries["command"].values() if e.plugin == d["name"])
    if as_json:
        echo_json(infos)
        return
    from zoo_core.table import format_table

    rows = [
        (d["name"], d["dist"], d["version"], d["status"], d["models"], ",".join(h.removeprefix("zoo_register_")
         for h in d["hooks"]), d["error"] or "")
        for d in infos
    ]  # fmt: skip
    click.echo(format_table(["plugin", "distribution", "version", "status", "models", "hooks", "error"], rows))


@cli.group("cache")
def cache_group() -> None:
    """zoo's rebuildable caches under ZOO_HOME."""


@cache_group.command("clear")
def cache_clear() -> None:
    """Delete the catalogue cache (rebuilt on the next command)."""
    import shutil

    from zoo_core.paths import cache_dir

    path = cache_dir() / "catalogue"
    shutil.rmtree(path, ignore_errors=True)
    click.echo(f"removed {path}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI; every way a command ends becomes its exit code here."""
    try:
        rv = cli.main(args=argv, prog_name="zoo", standalone_mode=False)
    except ZooError as e:
        if e.report:
            click.echo(f"zoo: error: {e}", err=True)
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.Abort:
        click.echo("zoo: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("zoo: interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


if __name__ == "__main__":
    sys.exit(main())
