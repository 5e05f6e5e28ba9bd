"""The ``zoo`` command line. The core's own commands are about the catalogue (``list``, ``info``,
``plugins``, ``cache``) and its plugins (``install``, ``uninstall``, ``plugin new``: these load no plugin, so
a broken one cannot block them); every other command comes from a plugin's ``zoo_register_commands`` hook.

Plugin command names and their help come from the metadata cache, so ``zoo --help`` imports no plugin and
no torch; a command's plugin is imported when the command runs. Every ZooError becomes one line on stderr
and its exit code, through ``main``.
"""

from __future__ import annotations

import errno
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
        """The command list, with plugin commands' help from the cache (no plugin is imported). Each summary is
        its help's whole first sentence, wrapped under the command rather than cut short with '...'."""
        rows = [(name, cmd.get_short_help_str(limit=sys.maxsize)) for name, cmd in self.commands.items()]
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


def bound_options(fn: Any) -> Any:
    from zoo_core.listing import BOUNDS

    for name, what in reversed(BOUNDS):
        fn = click.option(f"--max-{name}", metavar="N", help=f"At most N {what}.")(fn)
        fn = click.option(f"--min-{name}", metavar="N", help=f"At least N {what}.")(fn)
    return fn


@cli.command("list")
@click.argument("patterns", nargs=-1)
@click.option("--plugin", help="Only models from this plugin.")
@click.option("--pretrained", is_flag=True, help="Only models with pretrained weights.")
@click.option("--tags", "show_tags", is_flag=True,
              help="A row per pretrained tag (MODEL.TAG); a pattern with a tag part ('resnet50.*') implies it.")
@click.option("--sort", default="name", metavar="KEY",
              help="name, params, gmacs or top1 (best first; a model's is its default tag's); unknown last.")
@bound_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(patterns: tuple[str, ...], plugin: str | None, pretrained: bool, show_tags: bool, sort: str,
             as_json: bool, **bounds: str | None) -> None:  # fmt: skip
    """List models, or their tags; PATTERNS are wildcards such as 'resnet*', 'timm:efficientnet_*' or
    'resnet50.*'. Parameters and GMACs come from the weights' metadata or are counted once (cached)."""
    from zoo_core import listing
    from zoo_core.names import is_pattern, split_pattern
    from zoo_core.plugins import get_catalogue

    catalogue = get_catalogue()
    if plugin is not None and plugin not in catalogue.plugin_order:
        raise UnknownNameError("plugin", plugin, catalogue.plugin_order)
    limits = listing.parse_bounds(bounds)
    patterns = tuple(p if is_pattern(p) else listing.exact_pattern(p) for p in patterns)
    model_patterns = [split_pattern(p)[0] for p in patterns]
    show_tags = show_tags or any(tag is not None for _, tag in map(split_pattern, patterns))
    entries = [e for e in catalogue.find("model", model_patterns, plugin) if not pretrained or e.pretrained]
    if show_tags:
        rows = listing.tag_rows(catalogue, entries, patterns)  # type: ignore[arg-type]
    else:
        rows = listing.model_rows(catalogue, entries)  # type: ignore[arg-type]
    if not pretrained and plugin is None:
        listing.check_exact(patterns, rows)
    rows, notes = listing.select(rows, limits, sort, lambda line: click.echo(f"zoo: {line}", err=True))
    if as_json:
        for note in notes:
            click.echo(f"zoo: {note}", err=True)
        echo_json([r.to_dict(catalogue) for r in rows])
        return
    from zoo_core.table import format_table, terminal_width

    headers, cells, whole, right = listing.list_table(rows, show_tags, limits, sort)
    click.echo(format_table(headers, cells, width=terminal_width(), keep=whole, right=right))
    if show_tags:
        models = len({r.entry.qualified for r in rows})
        click.echo(f"{len(rows)} tag{'' if len(rows) == 1 else 's'} of {models} model{'' if models == 1 else 's'}.")
    else:
        click.echo(f"{len(rows)} models. A bare name means the first plugin's model; others: plugin:name.")
    for note in notes:
        click.echo(f"({note})")


@cli.command("info")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-stats", is_flag=True, help="Leave out parameters and GMACs (counted once where no metadata says).")
def info_cmd(model: str, as_json: bool, no_stats: bool) -> None:
    """Show a model's plugin, size, cost, preprocessing and pretrained tags (MODEL.TAG: that tag's)."""
    from zoo_core import listing
    from zoo_core.models import model_info
    from zoo_core.plugins import get_catalogue
    from zoo_core.resolve import resolve

    found = resolve(model)  # once: an hf-hub: name asks the Hub
    entry, tag = found.entry, found.tag
    info = model_info(entry.qualified, stats=False)
    if not no_stats:
        from zoo_core.stats_cache import lookup, model_query, tag_query

        counted = lookup([tag_query(entry, tag) if tag else model_query(entry)], ["num_params", "gmacs"])[0]
        info.update(counted)  # None where it cannot be counted: null in JSON, "unknown" below
    if as_json:
        echo_json(info)
        return
    from zoo_core.table import format_table, terminal_width

    width = terminal_width()
    _echo_wrapped(f"{info['qualified']}  ({info['family']})  ", info["description"], width)
    if info["also_in"]:
        means = "means this one" if info["default"] else "is another plugin's"
        click.echo(f"  also in       {', '.join(info['also_in'])} -- the bare name '{info['name']}' {means}")
    size = "x".join(map(str, info["input_size"]))
    counted_at = found.weights.preprocessing.input_size if found.weights else info["input_size"]
    at = "x".join(map(str, counted_at[1:]))  # where parameters and GMACs were counted
    least = info.get("min_input_size")
    click.echo(f"  input         {size}" + (f" (at least {'x'.join(map(str, least[1:]))})" if least else ""))
    click.echo(f"  mean          {' '.join(f'{v:g}' for v in info['mean'])}")
    click.echo(f"  std           {' '.join(f'{v:g}' for v in info['std'])}")
    click.echo(f"  classes       {info['num_classes']}")
    if not no_stats:
        params = f"{info['num_params']:,}" if info.get("num_params") is not None else "unknown"
        gmacs = f"{listing.fmt_gmacs(info['gmacs'])} at {at}" if info.get("gmacs") is not None else "unknown"
        click.echo(f"  parameters    {params}")
        click.echo(f"  GMACs         {gmacs}")
    if not info["pretrained"]:
        click.echo("  pretrained    none")
        return
    count = len(info["pretrained"])
    default = f"default {info['default_tag']}" if info["default_tag"] else "no default"
    click.echo(f"  pretrained    {count} tag{'s' if count != 1 else ''}, {default}")
    rows = listing.tag_rows(get_catalogue(), [entry], [f"{entry.qualified}.{tag}"] if tag else [])
    shared, headers, table, right = listing.tags_table(rows)
    if shared:
        click.echo(f"  every tag     {', '.join(f'{k} {v}' for k, v in shared)}")
    if all(r.top1 is None for r in rows):
        click.echo("  accuracy      unknown: no metrics in the weights' metadata")
    if not tag:
        click.echo()
        words = {"source", "dataset", "interpolation", "licence"}
        whole = {i for i, h in enumerate(headers) if h not in words}
        click.echo(format_table(headers, table, width=width, keep=whole, right=right))
    else:  # one tag: a line per field reads better than a one-row table
        assert found.weights is not None
        weights = found.weights.to_dict()
        for header, value in zip(headers, table[0], strict=True):
            _echo_wrapped(f"  {header:<13} ", value, width)
        for key, label in (("description", "about"), ("recipe", "recipe"), ("url", "url"), ("hf_hub_id", "hub id"),
                           ("path", "path")):  # fmt: skip
            if weights.get(key):
                _echo_wrapped(f"  {label:<13} ", str(weights[key]), width)


def _echo_wrapped(label: str, text: str, width: int | None) -> None:
    import textwrap

    if width is None or len(label) + len(text) <= width:
        click.echo(label + text)
        return
    indent = " " * len(label)
    click.echo(textwrap.fill(text, width=max(width, len(label) + 20), initial_indent=label, subsequent_indent=indent,
                             break_on_hyphens=False, break_long_words=False))  # fmt: skip


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Look for broken plugins, failing hooks, unmet requirements and shared "
              "names; exit 1 on a problem.")  # fmt: skip
def plugins_cmd(as_json: bool, check: bool) -> int | None:
    """Show every plugin: version, hooks, status, load time (its import and hooks here) and error."""
    if check:
        return plugins_check(as_json)
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

    def load_time(d: dict[str, Any]) -> str:
        return f"{d['load_seconds']:.2f} s" if d["load_seconds"] is not None else "cached" if d["cached"] else ""

    rows = [
        (d["name"], d["dist"], d["version"], d["status"], load_time(d), d["models"],
         ",".join(h.removeprefix("zoo_register_") for h in d["hooks"]), d["error"] or "")
        for d in infos
    ]  # fmt: skip
    headers = ["plugin", "distribution", "version", "status", "load", "models", "hooks", "error"]
    click.echo(format_table(headers, rows, right={4}))


def plugins_check(as_json: bool) -> int:
    from zoo_core.plugin_check import check_plugins, report_lines

    report = check_plugins()
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo("\n".join(report_lines(report)))
    return 1 if report.problems else 0


# -- plugin distributions: these commands load no plugin and read no catalogue cache -------------------------


@cli.command("install")
@click.argument("specs", nargs=-1, metavar="[SPEC]...")
@click.option("-e", "--editable", multiple=True, metavar="PATH", help="Install the project at PATH in place "
              "(edits show at once); repeatable.")  # fmt: skip
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade what is already installed.")
@click.option("--no-deps", is_flag=True, help="Do not install the plugins' requirements.")
@click.option("--build-isolation/--no-build-isolation", default=None, help="Build in pip's isolated environment  "
              "[default: not for local projects whose build requirements are installed]")  # fmt: skip
def install_cmd(specs: tuple[str, ...], editable: tuple[str, ...], upgrade: bool, no_deps: bool,
                build_isolation: bool | None) -> None:  # fmt: skip
    """Install plugins with pip into zoo's Python; SPEC is a name, a path or a URL.

    \b
    zoo install NAME==1.0                # a distribution from the package index
    zoo install ./zoo-mynet              # a project folder (or a wheel, an sdist, a URL)
    zoo install -e ./zoo-mynet           # editable: your edits show without reinstalling
    """
    from zoo_core.installer import describe, install

    changes = install(specs, editable, upgrade=upgrade, no_deps=no_deps, build_isolation=build_isolation)
    click.echo("\n".join(describe(changes, "installed")))


@cli.command("uninstall")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before removing.")
def uninstall_cmd(names: tuple[str, ...], yes: bool) -> None:
    """Remove plugin distributions with pip; NAME is a distribution or a plugin name."""
    from zoo_core.installer import describe, uninstall

    click.echo("\n".join(describe(uninstall(names, yes=yes), "removed")))


@cli.group("plugin")
def plugin_group() -> None:
    """Write a plugin of your own (see docs/plugins.md)."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--dir", "parent", default=".", show_default=True, help="The folder to create the project in.")
def plugin_new(name: str, parent: str) -> None:
    """Create the plugin project zoo-NAME: pyproject, hooks registering the model NAME, a test."""
    from zoo_core.scaffold import new_plugin, plugin_name

    folder = new_plugin(name, parent)
    click.echo(f"created {folder}/: pyproject.toml, README.md, {folder.name.replace('-', '_')}/__init__.py, tests/")
    click.echo(f"next: zoo install -e {folder} && zoo list {plugin_name(name)}")


@cli.group("cache")
def cache_group() -> None:
    """zoo's rebuildable caches under ZOO_HOME."""


@cache_group.command("clear")
def cache_clear() -> None:
    """Delete the catalogue cache and the counted parameters and GMACs (rebuilt when next needed)."""
    import shutil

    from zoo_core.paths import cache_dir

    removed = []
    for path in (cache_dir() / "catalogue", cache_dir() / "stats"):
        if not path.exists():
            continue
        try:
            shutil.rmtree(path)
        except OSError as e:
            raise ZooError(f"cannot remove {path}: {e.strerror or e}") from None
        removed.append(str(path))
    click.echo(f"removed {', '.join(removed)}" if removed else f"nothing to remove in {cache_dir()}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI; every way a command ends becomes its exit code here."""
    try:
        rv = cli.main(args=argv, prog_name="zoo", standalone_mode=False)
    except ZooError as e:
        if e.report:
            click.echo(f"zoo: {e.label}: {e}", err=True)
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
    except OSError as e:  # a full disk or a folder zoo may not write, wherever it struck: the machine's, not a bug
        hint = _DISK_HINTS.get(e.errno or 0)
        if hint is None:
            raise
        where = f" ({e.filename})" if e.filename else ""
        click.echo(f"zoo: error: {e.strerror or e}{where}; {hint}, then run the command again", err=True)
        return 1
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


# What to do about the OSErrors a command cannot help (zoo's writes are atomic: what was saved before is whole).
_DISK_HINTS = {
    errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space (a quota is full)",
    errno.EACCES: "make its folder writable", errno.EPERM: "make its folder writable",
    errno.EROFS: "it is on a read-only file system: set ZOO_HOME to a writable folder",
}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
