"""The one resolver: a model name in any form -> its catalogue entry, its tag and that tag's weights.

Every command and every function of the Python API that takes a model calls ``resolve`` (or
``resolve_weights`` where weights are required), so every name form works everywhere: ``simplecnn``,
``cnn:simplecnn``, ``simplecnn.mine``, ``timm:resnet50.a1_in1k``, ``hf-hub:OWNER/REPO``. Names are parsed by
``zoo_core.names``; a source name (a prefix that is no plugin's) and a numbered version go to the plugins'
``zoo_resolve_model`` hook, which answers with a catalogue name. Nothing else reads a tag's metadata: the
``weights`` of a ``Resolved`` is the one ``WeightsInfo`` of that tag.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from zoo_core.catalogue import ModelEntry
from zoo_core.errors import UnknownNameError, UsageError, ZooError
from zoo_core.names import ModelRef, parse, source_ref
from zoo_core.plugins import get_catalogue, get_host
from zoo_core.weights import WeightsInfo, from_dict


@dataclass(frozen=True)
class Resolved:
    """What a name means: the catalogue entry, the tag (None for the bare architecture) and its weights."""

    given: str  # the name as the user wrote it
    entry: ModelEntry
    tag: str | None
    weights: WeightsInfo | None

    @property
    def ref(self) -> ModelRef:
        """The canonical catalogue name: plugin, model and tag (a source name followed to its tag)."""
        return self.entry.ref(self.tag)

    @property
    def qualified(self) -> str:
        """``plugin:model[.tag]``: the name that always means these weights."""
        return str(self.ref)

    @property
    def display(self) -> str:
        """The shortest name meaning the same: bare where the bare name means this model."""
        return get_catalogue().display_ref(self.entry.qualified, self.tag)


def resolve(name: str | ModelRef | Resolved, pretrained: bool | str | None = False) -> Resolved:
    """``name`` in any form, with timm's ``pretrained`` argument: False (the tag the name gives, if any),
    True (that tag or the model's default) or a tag. A ``Resolved`` is taken as its catalogue name (no source
    is asked twice)."""
    if isinstance(name, Resolved):
        name = name.ref
    ref = parse(name) if isinstance(name, str) else name
    given = name if isinstance(name, str) else str(name)
    ref = _follow(ref, given)
    entry = _model(ref)
    tag = ref.tag
    if isinstance(pretrained, str) and pretrained:
        tag = pretrained  # timm's create_model(name, pretrained=TAG): the argument names the tag
    elif pretrained is True and tag is None:
        tag = entry.default_tag
        if tag is None:
            raise no_default_error(entry)
    return Resolved(given, entry, tag, weights_of(entry, tag) if tag else None)


def resolve_weights(name: str | ModelRef | Resolved, tag: str | None = None) -> Resolved:
    """Like ``resolve`` where weights are required: the tag named (or ``tag``), else the model's default."""
    return resolve(name, tag or True)


def weights_info(name: str | ModelRef | Resolved, pretrained: bool | str | None = True) -> WeightsInfo:
    """The weights ``name`` means (its tag, ``pretrained``'s tag or the default tag) as a WeightsInfo."""
    found = resolve(name, pretrained or True)
    assert found.weights is not None
    return found.weights


def weights_of(entry: ModelEntry, tag: str) -> WeightsInfo:
    """A tag of a model as the one weights schema; an unknown tag says which are close."""
    if tag not in entry.pretrained:
        close = difflib.get_close_matches(tag, list(entry.pretrained), n=3, cutoff=0.5)
        raise UnknownNameError(f"tag of {entry.qualified}", tag, close)
    return from_dict(entry.qualified, tag, entry.pretrained[tag])


def no_default_error(entry: ModelEntry) -> ZooError:
    """The error for ``pretrained=True`` (or a bare name where weights are needed) without a default tag."""
    shown = get_catalogue().display_name("model", entry)
    if not entry.pretrained:
        return UsageError(f"{shown} has no trained weights (and no pretrained ones): train some with `zoo train "
                          f"{shown} --dataset NAME`, or see `zoo list --pretrained`")  # fmt: skip
    tags = ", ".join(f"{shown}.{t}" for t in list(entry.pretrained)[:5]) + (" ..." if len(entry.pretrained) > 5 else "")
    return UsageError(f"{shown} has no default weights; name a tag ({tags}) or set a default: "
                      f"zoo registry default {shown} TAG")  # fmt: skip


def _follow(ref: ModelRef, given: str) -> ModelRef:
    """A catalogue name for ``ref``: source names and versions are answered by the plugins' resolve hook."""
    host = get_host()
    if ref.plugin is not None and not ref.is_source and not host.knows_plugin(ref.plugin):
        ref = source_ref(ref)  # ``prefix:name`` where the prefix is no plugin's: a source such as hf-hub
    if not ref.is_source and ref.version is None:
        return ref
    answer = host.resolve_name(str(ref), ref)
    if answer is None:
        if ref.is_source:  # '<source>:' is neither a plugin nor a source that a plugin's resolve hook knows
            plugins = get_catalogue().plugin_order
            raise UnknownNameError("model", given, [f"{p}:{ref.location}" for p in
                                                    difflib.get_close_matches(ref.source or "", plugins, n=2)])
        raise UsageError(f"{given}: no version {ref.version} of {ref.model}.{ref.tag} (see `zoo registry list`)")
    followed = parse(answer)
    if followed.is_source or followed.version is not None or followed.plugin is None:
        raise UsageError(f"{given!r} resolved to {answer!r}, which is not a qualified catalogue name")
    return followed


def _model(ref: ModelRef) -> ModelEntry:
    entry = get_catalogue().get("model", ref.model)
    assert isinstance(entry, ModelEntry)
    return entry
