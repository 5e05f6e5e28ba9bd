"""A tag's versions and a model's aliases: history, rollback, aliases, removing one version, and ``gc``.

A version is never changed by any of these but ``remove_version``, and that one refuses the current version and
one an alias names: ``rollback`` and ``alias`` only move pointers. The catalogue name of a version that is not
current is ``TAG--vN`` (``MODEL.TAG@N`` resolves to it, through ``resolve_version``); the current one is the tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoo_core.plugin_api import (
    ModelRef,
    UnknownNameError,
    UsageError,
    file_lock,
    get_catalogue,
    refresh_weights,
)
from zoo_registry.layout import (
    aliases_lock,
    check_new_name,
    lock_path,
    read_aliases,
    read_tag,
    recover,
    registry_root,
    split_version_tag,
    subdirs,
    tag_dir,
    version_tag,
    write_aliases,
    write_pointer,
)
from zoo_registry.store import (
    PublishedEntry,
    check_tag_name,
    discard,
    get,
    get_version,
    locate,
    qualified_parts,
    qualify,
    read_entry,
    remove_tag,
    versions_of,
)


def resolve_version(ref: ModelRef) -> str | None:
    """``MODEL.TAG@N`` -> the catalogue name of that version (``plugin:model.tag`` when it is current, else
    ``plugin:model.tag--vN``); None when the tag is no registry tag (then the name means nothing)."""
    assert ref.tag is not None and ref.version is not None
    try:
        plugin, model = qualified_parts(ref)
    except UnknownNameError:
        return None
    path = tag_dir(plugin, model, ref.tag)
    state = read_tag(path)
    if not state.versions:
        aliased = read_aliases(path.parent).get(ref.tag)
        if aliased is not None:
            raise UsageError(f"{ref.model}.{ref.tag} is an alias (of {ref.model}.{aliased[0]}@{aliased[1]}); a "
                             f"version belongs to a tag: {ref.model}.{aliased[0]}@{ref.version}")  # fmt: skip
        return None
    if ref.version not in state.versions:
        shown = ", ".join(str(n) for n in state.versions)
        raise UsageError(f"{ref.model}.{ref.tag} has no version {ref.version} (it has {shown}; see `zoo registry "
                         f"history {ref.model}.{ref.tag}`)")  # fmt: skip
    name = ref.tag if ref.version == state.current else version_tag(ref.tag, ref.version)
    _make_current_in_catalogue(plugin, model, name, str(state.versions[ref.version]))
    return f"{plugin}:{model}.{name}"


def _make_current_in_catalogue(plugin: str, model: str, name: str, path: str) -> None:
    """Register the registry's tags again when this process's catalogue predates the version asked for (another
    process published it since)."""
    try:
        registered = get_catalogue().get("model", f"{plugin}:{model}").pretrained.get(name) or {}
    except UnknownNameError:
        return
    if registered.get("path") != path:
        refresh_weights()


# -- history --------------------------------------------------------------------------------------------------


@dataclass
class Version:
    """One version of a tag as ``zoo registry history`` shows it."""

    entry: PublishedEntry
    aliases: list[str]

    def to_dict(self) -> dict[str, Any]:
        from zoo_registry.lineage import source_of

        e = self.entry
        return {"version": e.version, "ref": e.version_ref, "current": e.current, "created": e.config.get("created"),
                "source": source_of(e), "metrics": e.metrics, "sha256": e.sha256,
                "size_bytes": e.config.get("size_bytes"), "aliases": self.aliases, "path": str(e.path)}  # fmt: skip


def history(model_name: str, tag: str) -> list[Version]:
    """Every version of ``model_name``.``tag`` that reads, oldest first, with the aliases naming each."""
    plugin, model = qualify(model_name)
    _, entries = versions_of(f"{plugin}:{model}", tag)
    aliases = read_aliases(registry_root() / plugin / model)
    return [Version(e, sorted(a for a, (t, v) in aliases.items() if (t, v) == (tag, e.version))) for e in entries]


def aliases_of(model_name: str) -> dict[str, tuple[str, int]]:
    """alias -> (tag, version) of a model."""
    plugin, model = qualify(model_name)
    return read_aliases(registry_root() / plugin / model)


# -- pointers: rollback and aliases ---------------------------------------------------------------------------


def rollback(model_name: str, tag: str, version: int) -> tuple[int, int]:
    """Make version ``version`` the one ``model_name``.``tag`` means -> (the version it meant, ``version``).
    No version is removed or changed."""
    plugin, model = qualify(model_name)
    path = tag_dir(plugin, model, tag)
    get_version(f"{plugin}:{model}", tag, version)  # unknown tag or version: one line with the close ones
    with file_lock(lock_path(path)):
        recover(path)
        state = read_tag(path)
        if version not in state.versions:  # removed while we waited
            get_version(f"{plugin}:{model}", tag, version)
        before = state.current or version
        if state.legacy:  # one version, and it is current already
            return before, version
        write_pointer(path, version, state.next_version - 1)
    refresh_weights()
    return before, version


def set_alias(model_name: str, alias: str, tag: str,
              version: int | None = None) -> tuple[tuple[str, int] | None, tuple[str, int]]:
    """Make ``model_name``.``alias`` name version ``version`` of ``tag`` (None: the version the tag means now)
    -> (what the alias named before or None, what it names now). An alias may not shadow a tag of the registry
    or a plugin's own pretrained tag."""
    plugin, model = qualify(model_name)
    qualified = f"{plugin}:{model}"
    check_new_name(alias, "alias")
    model_dir = registry_root() / plugin / model
    if (model_dir / alias).is_dir():
        raise UsageError(f"{qualified}.{alias} is a tag; an alias cannot take a tag's name (it would hide its "
                         "versions): choose another name")  # fmt: skip
    try:
        entry = get_catalogue().get("model", qualified)
        if alias in entry.pretrained and alias not in entry.loaders:
            raise UsageError(f"{qualified} has its own pretrained tag {alias!r} (from plugin {plugin}); an alias "
                             "cannot shadow it: choose another name")  # fmt: skip
    except UnknownNameError:
        pass  # the model's plugin is gone: its registry folders are all there is
    # ``tag`` may itself be an alias or a version's name: the alias names the version it means now
    target = get(qualified, tag) if version is None else get_version(qualified, tag, version)
    tag, number = target.tag, target.version
    path = tag_dir(plugin, model, tag)
    with file_lock(lock_path(path)):
        recover(path)
        if number not in read_tag(path).versions:  # removed while we waited
            get_version(qualified, tag, number)
        with file_lock(aliases_lock(model_dir)):
            aliases = read_aliases(model_dir)
            before = aliases.get(alias)
            aliases[alias] = (tag, number)
            write_aliases(model_dir, aliases)
    refresh_weights()
    return before, (tag, number)


def delete_alias(model_name: str, alias: str) -> tuple[str, int]:
    """Delete an alias -> the version it named (its weights stay)."""
    plugin, model = qualify(model_name)
    model_dir = registry_root() / plugin / model
    with file_lock(aliases_lock(model_dir)):
        aliases = read_aliases(model_dir)
        if alias not in aliases:
            raise UnknownNameError(f"alias of {plugin}:{model}", alias, sorted(aliases)[:4])
        before = aliases.pop(alias)
        write_aliases(model_dir, aliases)
    refresh_weights()
    return before


# -- removing versions ----------------------------------------------------------------------------------------


def remove(model_name: str, tag: str) -> None:
    """Delete what ``model_name``.``tag`` names: a tag with every version and the aliases naming them, or, for a
    version's ``TAG--vN``, that version only (``remove_version``); an alias is refused with the command that
    deletes it. UnknownNameError when there is none."""
    plugin, name = qualify(model_name)
    check_tag_name(tag)
    found, version = locate(plugin, name, tag)
    if version is None:
        remove_tag(f"{plugin}:{name}", tag)
        return
    if found != tag and split_version_tag(tag) is None:
        raise UsageError(f"{plugin}:{name}.{tag} is an alias of {plugin}:{name}.{found}@{version}; delete it "
                         f"with `zoo registry alias {plugin}:{name}.{tag} --delete`")  # fmt: skip
    remove_version(f"{plugin}:{name}", found, version)


def remove_version(model_name: str, tag: str, version: int) -> int:
    """Delete version ``version`` of a tag -> the bytes of weights that no longer exist anywhere. The current
    version and versions an alias names are refused with what to do instead."""
    from zoo_registry.blobs import prune

    plugin, model = qualify(model_name)
    qualified = f"{plugin}:{model}"
    path = tag_dir(plugin, model, tag)
    get_version(qualified, tag, version)  # unknown: one line with the close ones, before any lock file exists
    freed = 0
    with file_lock(lock_path(path)):
        recover(path)
        state = read_tag(path)
        if version not in state.versions:  # removed while we waited
            get_version(qualified, tag, version)
        if version == state.current:
            others = [n for n in state.versions if n != version]
            how = (f"roll back first (`zoo registry rollback {qualified}.{tag} {others[-1]}`) or remove the whole tag"
                   if others else "remove the whole tag instead")  # fmt: skip
            raise UsageError(f"{qualified}.{tag}@{version} is the version {qualified}.{tag} means; {how} "
                             f"(`zoo registry remove {qualified}.{tag} --yes`)")  # fmt: skip
        with file_lock(aliases_lock(path.parent)):
            naming = sorted(a for a, target in read_aliases(path.parent).items() if target == (tag, version))
            if naming:
                raise UsageError(f"{qualified}.{tag}@{version} is named by the alias {', '.join(naming)}; move it "
                                 f"first (`zoo registry alias {qualified}.{naming[0]} {qualified}.{tag}@N`) or delete "
                                 f"it (`--delete`)")  # fmt: skip
            folder = state.versions[version]
            weights = folder / "model.safetensors"
            try:
                if weights.stat().st_nlink <= 1:  # not shared with the content store or another version
                    freed += weights.stat().st_size
            except OSError:
                pass
            discard(folder)
            write_pointer(path, state.current or max(state.versions), state.next_version - 1)  # numbers never return
    freed += sum(_size(p) for p in prune())
    refresh_weights()
    return freed


def _size(path: Any) -> int:
    try:
        return int(path.stat().st_size)
    except OSError:
        return 0


@dataclass
class Doomed:
    """A version ``gc`` removes (or would, in a dry run)."""

    entry: PublishedEntry

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        return {"ref": e.version_ref, "version": e.version, "created": e.config.get("created"), "sha256": e.sha256,
                "size_bytes": e.config.get("size_bytes"), "path": str(e.path)}  # fmt: skip


def collect(keep: int, model_name: str | None = None, tag: str | None = None) -> list[Doomed]:
    """The versions ``gc --keep keep`` removes: all but each tag's ``keep`` newest, its current one and those
    an alias names (of one model, or one tag of it, when given)."""
    if keep < 0:
        raise UsageError(f"--keep must be 0 or more, got {keep}")
    found: list[Doomed] = []
    for path in _tag_folders(model_name, tag):
        state = read_tag(path)
        named = {v for t, v in read_aliases(path.parent).values() if t == path.name}
        kept = {state.current, *named, *list(state.versions)[len(state.versions) - keep:]}
        for number, folder in state.versions.items():
            if number in kept:
                continue
            try:
                entry = read_entry(folder)
            except (OSError, ValueError):  # broken: zoo doctor's to report, not gc's to delete unseen
                continue
            entry.current = False
            found.append(Doomed(entry))
    return found


def _tag_folders(model_name: str | None, tag: str | None) -> list[Any]:
    if model_name is None:
        return [t for p in subdirs(registry_root()) for m in subdirs(p) for t in subdirs(m)]
    plugin, model = qualify(model_name)
    if tag is not None:
        get(f"{plugin}:{model}", tag)  # unknown: one line with the close tags
        return [tag_dir(plugin, model, tag)]
    return subdirs(registry_root() / plugin / model)


def gc(doomed: list[Doomed]) -> tuple[list[Doomed], int]:
    """Remove the versions ``collect`` chose -> (those removed, bytes freed). One that became current or was
    given an alias since is kept."""
    removed, freed = [], 0
    for d in doomed:
        try:
            freed += remove_version(d.entry.model_name, d.entry.tag, d.entry.version)
            removed.append(d)
        except UsageError:  # current or aliased by now, or already gone
            continue
    return removed, freed
