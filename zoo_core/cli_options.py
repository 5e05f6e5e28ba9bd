"""The options every command shares, defined once so that they mean the same everywhere: the model (a
positional MODEL[.TAG] or ``-m``), ``--device``, ``--precision``, ``--img-size``, ``--data-dir``,
``--data-opt`` and ``--json``; choices that suggest the closest value; deprecated spellings that still work
and say so in one line."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import click

from zoo_core.devices import PRECISIONS
from zoo_core.errors import UsageError

F = Callable[..., Any]


class Choice(click.Choice):
    """``click.Choice`` whose error names the closest choice (``--precision bf61``: did you mean bf16?)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            name = param.opts[0] if param is not None and param.opts else "value"
            choices = ", ".join(map(str, self.choices))
            raise UsageError(f"{name} must be one of {choices}, got {value!r}{hint}") from None


def model_argument(f: F) -> F:
    """MODEL[.TAG], positional or ``-m/--model`` (one of the two)."""
    f = click.option("-m", "--model", "model_option", metavar="MODEL[.TAG]", help="The model (or give it first).")(f)
    return click.argument("model", required=False, metavar="MODEL[.TAG]")(f)


def the_model(model: str | None, model_option: str | None) -> str:
    """The one model given, positionally or with ``-m``."""
    if model and model_option and model != model_option:
        raise UsageError(f"two models given ({model} and -m {model_option}); give one")
    chosen = model or model_option
    if not chosen:
        raise UsageError("give a model: MODEL[.TAG] or -m MODEL[.TAG] (see `zoo list`)")
    return chosen


def device_option(f: F) -> F:
    return click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")(f)


def precision_option(f: F) -> F:
    return click.option("--precision", type=Choice(PRECISIONS), default="fp32", show_default=True,
                        help="fp32, tf32 (GPU), or bf16/fp16 autocast.")(f)  # fmt: skip


def img_size_option(help_text: str) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        return click.option("--img-size", type=int, help=help_text)(f)

    return decorate


def data_options(required_dataset: bool = True) -> Callable[[F], F]:
    """``--dataset``, ``--data-dir`` and repeatable ``--data-opt KEY=VALUE``."""

    def decorate(f: F) -> F:
        f = click.option("--data-opt", "data_opts", multiple=True, metavar="KEY=VALUE",
                         help="A dataset option, e.g. image_size=28 or channels=3 (repeatable).")(f)  # fmt: skip
        f = click.option("--data-dir", help="The dataset's folder (ImageFolder layout: train/<class>/*, "
                         "test/<class>/* or val/<class>/*).")(f)  # fmt: skip
        return click.option("--dataset", "-d", required=required_dataset, help="A dataset from `zoo datasets`.")(f)

    return decorate


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def deprecated(old: str, new: str) -> None:
    """One line on stderr for a spelling that still works but will go."""
    click.echo(f"zoo: note: {old} is deprecated; use {new}", err=True)
