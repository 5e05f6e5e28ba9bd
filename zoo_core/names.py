"""The one name grammar: what a model name given by a user means, parsed once into a ``ModelRef``.

    ref      := catalogue | source
    catalogue:= [PLUGIN ":"] MODEL ["." TAG] ["@" VERSION]
    source   := SOURCE ":" ID                     (SOURCE names no plugin; e.g. hf-hub:OWNER/REPO[@REV])

PLUGIN, MODEL and TAG are letters, digits, ``_`` and ``-`` (not first), TAG at most ``TAG_MAX`` characters;
VERSION is a number (``simplecnn.mine@2``). A ``prefix:rest`` whose rest does not fit the catalogue form is a
source name (``hf-hub:bob/spine``), handed to the plugins' ``zoo_resolve_model`` hook. The resolver
(``zoo_core.resolve``) also treats a well-formed ``prefix:name`` as a source when the prefix is no plugin's.

Listing also takes wildcard patterns (``resnet*.a1_*``): ``split_pattern`` is their grammar.

This module is a leaf: it imports nothing of zoo but its errors, so the weights schema and the catalogue can
share the syntax without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from zoo_core.errors import UsageError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
TAG_RE = NAME_RE
PLUGIN_RE = NAME_RE
SOURCE_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")
NAME_MAX = 64  # plugin and model names: folder names in the registry and parts of a run id
TAG_MAX = 96  # tags and aliases: folder and file names; a run id joins plugin, model and tag (< 255 bytes)
_CATALOGUE_RE = re.compile(
    r"^(?:(?P<plugin>[^:.@]+):)?(?P<name>[^:.@]+)(?:\.(?P<tag>[^:.@]*))?(?:@(?P<version>[^:.@]*))?$"
)
_ID_CHARS = re.compile(r"[^A-Za-z0-9_\-.@]")  # in what follows a prefix: a character no catalogue name has


@dataclass(frozen=True)
class ModelRef:
    """A parsed model name: a catalogue model (with plugin, tag and version where given) or a source's ID."""

    name: str = ""  # the model's name in the catalogue; empty for a source name
    plugin: str | None = None
    tag: str | None = None
    version: int | None = None
    source: str | None = None  # a prefix that is no plugin's, such as "hf-hub"
    location: str | None = None  # what follows the source's prefix, e.g. "OWNER/REPO@REV"

    @property
    def is_source(self) -> bool:
        return self.source is not None

    @property
    def model(self) -> str:
        """``[plugin:]name`` without tag or version."""
        return f"{self.plugin}:{self.name}" if self.plugin else self.name

    def with_tag(self, tag: str | None) -> ModelRef:
        return replace(self, tag=tag, version=None if tag != self.tag else self.version)

    def __str__(self) -> str:
        if self.is_source:
            return f"{self.source}:{self.location}"
        text = self.model
        if self.tag:
            text += f".{self.tag}"
        if self.version is not None:
            text += f"@{self.version}"
        return text


def check_name(name: str, what: str = "model name") -> str:
    """``name`` if it is a valid model (or plugin) name, else a one-line UsageError saying the rule."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UsageError(f"invalid {what} {name!r}: use letters, digits, '_' and '-' (not first)")
    if len(name) > NAME_MAX:
        raise UsageError(f"invalid {what} {_shown(name)}: at most {NAME_MAX} characters")
    return name


def check_tag(tag: str, what: str = "tag") -> str:
    """``tag`` if it is a valid tag (or alias), else a one-line UsageError saying the rule."""
    if not isinstance(tag, str) or not TAG_RE.match(tag):
        raise UsageError(f"invalid {what} {_shown(tag)}: use letters, digits, '_' and '-' (not first)")
    if len(tag) > TAG_MAX:
        raise UsageError(f"invalid {what} {_shown(tag)}: at most {TAG_MAX} characters (this one has {len(tag)})")
    return tag


def parse(text: str) -> ModelRef:
    """Parse a model name in any form; a malformed one is a one-line UsageError that says the grammar."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError("expected a model name such as simplecnn, timm:resnet50.a1_in1k or hf-hub:OWNER/REPO")
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep and SOURCE_RE.match(prefix) and rest and (_ID_CHARS.search(rest) or ":" in rest):
        return ModelRef(source=prefix, location=rest)
    m = _CATALOGUE_RE.match(text)
    if m is None:
        raise UsageError(f"invalid model name {_shown(text)}: expected [PLUGIN:]MODEL[.TAG][@VERSION] "
                         "or SOURCE:ID (e.g. hf-hub:OWNER/REPO)")  # fmt: skip
    plugin, name, tag, version = m.group("plugin", "name", "tag", "version")
    if plugin is not None:
        check_name(plugin, "plugin name")
    check_name(name)
    if tag is not None:
        check_tag(tag)
    number = None
    if version is not None:
        if not version.isdigit() or int(version) < 1:
            raise UsageError(f"invalid version {_shown(version)} in {_shown(text)}: expected a number from 1, "
                             "as in MODEL.TAG@2")  # fmt: skip
        if tag is None:
            raise UsageError(f"a version needs a tag: MODEL.TAG@{version}, got {_shown(text)}")
        number = int(version)
    return ModelRef(name=name, plugin=plugin, tag=tag or None, version=number)


def split_qualified(text: str) -> tuple[str | None, str]:
    """``[plugin:]name`` of any kind of entry (model, dataset, trainer, command) -> (plugin or None, name)."""
    plugin, sep, name = text.partition(":")
    return (plugin, name) if sep else (None, text)


def is_pattern(text: str) -> bool:
    """Whether ``text`` is a wildcard pattern (``resnet*``, ``timm:efficientnet_b?``) rather than a name."""
    return text.endswith(".") or any(c in text for c in "*?[")


def split_pattern(pattern: str) -> tuple[str, str | None]:
    """A listing pattern ``[plugin:]model[.tag]`` with timm-style wildcards -> (model part, tag part or None);
    ``resnet50.`` and ``resnet50.*`` both mean every tag."""
    model, dot, tag = pattern.partition(".")
    return model, (tag or "*") if dot else None


def source_ref(ref: ModelRef) -> ModelRef:
    """A catalogue-shaped ``prefix:rest`` whose prefix turned out to be no plugin's, as a source name."""
    assert ref.plugin is not None
    return ModelRef(source=ref.plugin, location=str(replace(ref, plugin=None)))


def _shown(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"
