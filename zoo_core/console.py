"""What commands print and record, shared by the core's commands and every plugin's: JSON output, and the
command line that reproduces a run (recorded with results and weights)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Collection
from typing import Any

import click
from click.core import ParameterSource


def echo_json(obj: Any) -> None:
    """Print ``obj`` as JSON; a list prints one object a line (readable, and json's C encoder keeps it fast)."""
    if isinstance(obj, list):
        click.echo("[\n" + ",\n".join(json.dumps(o, default=str) for o in obj) + "\n]")
    else:
        click.echo(json.dumps(obj, indent=2, default=str))


def given(ctx: click.Context, name: str) -> bool:
    """Whether the parameter ``name`` was given on the command line (or by an environment variable)."""
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def command_line(ctx: click.Context) -> str:
    """The command as typed, rebuilt from the arguments and options given (not from their defaults)."""
    return shlex.join([*ctx.command_path.split(), *command_args(ctx)])


def command_args(ctx: click.Context, exclude: Collection[str] = ()) -> list[str]:
    """The command's arguments and options as given, less the parameters named in ``exclude``."""
    words: list[str] = []
    for param in ctx.command.params:
        if not param.name or param.name in exclude or not given(ctx, param.name):
            continue
        value = ctx.params[param.name]
        if isinstance(param, click.Argument):
            words += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
            continue
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if getattr(param, "is_flag", False):
            if value:
                words.append(flag)
            elif param.secondary_opts:
                words.append(param.secondary_opts[0])
        elif getattr(param, "multiple", False):
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return words
