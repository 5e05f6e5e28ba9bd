"""Push registry entries to the Hugging Face Hub and pull them back, through huggingface_hub.

``push`` sends an entry as one commit (``zoo_registry.hub_files`` describes the repository); ``pull``
downloads through huggingface_hub's cache, checks every weights file's sha256 against config.json and
publishes the weights, byte for byte, as a pretrained tag of their model in the local registry: tag
``hub-OWNER-NAME`` (``hub-OWNER-NAME-REV`` for an explicit revision), with ``source: hub``, ``origin:
hf-hub:OWNER/NAME`` and ``revision: <commit sha>`` in its metadata. ``zoo.create_model("hf-hub:OWNER/NAME")``
reaches ``pull`` through the registry plugin's ``zoo_resolve_model`` hook.

A push sends one version (``MODEL.TAG@N``, or the one a tag means): its version number and lineage go into
config.json, the model card and the safetensors header of each weights file (the tensors' bytes unchanged). A pull
of a new commit is the next version of the local tag, and its lineage names the repository and commit and keeps
the lineage the version was pushed with (``zoo_registry.lineage``).

Settings come from the environment when the call is made (huggingface_hub reads its own when it is
imported): ``HF_ENDPOINT``, ``HF_TOKEN`` (or the token ``hf auth login`` saved), ``HF_HUB_OFFLINE``,
``HF_HUB_CACHE`` / ``HF_HOME``. Offline, a pulled or cached repository loads with no network call and
anything else fails at once. Transfers are retried by huggingface_hub (uploads, and downloads resumed
with a byte range); a commit is not retried blindly, but running the command again is cheap: the Hub
already has the uploaded files. No call waits for ever (``zoo_registry.hub_timeouts``): each metadata call
ends ``--timeout`` / ``ZOO_HUB_TIMEOUT`` seconds (default 30) after it began, retries included, and a transfer
when no byte has moved for that long. Every failure is one ZooError line, and the local entry is never changed
by a push or a pull that fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from zoo_core.plugin_api import UnknownNameError, UsageError, WeightsError, ZooError, first_line, utc_now
from zoo_registry import hub_files
from zoo_registry.hub_files import CARD, CONFIG, INDEX, WEIGHTS

REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
NETWORK_ERRORS = {"ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "RemoteProtocolError",
                  "ReadError", "WriteError", "ReadTimeout", "WriteTimeout", "ConnectionError", "Timeout"}


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubSettings:
    """Where the Hub is and how to talk to it, read from the environment when a command runs."""

    endpoint: str
    token: str | None
    offline: bool  # only the local cache is used: HF_HUB_OFFLINE, or the Hub is unreachable
    cache_dir: str
    unreachable: str = ""  # why the Hub is taken as unreachable ("no connection"), if it is
    timeout: float = 30.0  # seconds: see zoo_registry.hub_timeouts
    timeout_hint: str = "set --timeout or ZOO_HUB_TIMEOUT"  # how the user changes it, for the error line

    @classmethod
    def from_env(cls, timeout: float | None = None) -> HubSettings:
        """The settings now; ``timeout`` (``--timeout``) overrides ``ZOO_HUB_TIMEOUT``."""
        from huggingface_hub import constants, get_token

        from zoo_registry.hub_timeouts import timeout_seconds

        endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
        offline = constants.HF_HUB_OFFLINE
        if "HF_HUB_OFFLINE" in os.environ:  # set or unset since huggingface_hub was imported
            offline = _true(os.environ["HF_HUB_OFFLINE"])
        if os.environ.get("HF_HUB_CACHE"):
            cache = os.environ["HF_HUB_CACHE"]
        elif os.environ.get("HF_HOME"):
            cache = os.path.join(os.environ["HF_HOME"], "hub")
        else:
            cache = constants.HF_HUB_CACHE
        return cls(endpoint, get_token(), offline, os.path.expanduser(cache), timeout=timeout_seconds(timeout))

    def reachable(self, timeout: float = 3.0) -> bool:
        """Whether the endpoint accepts a connection, known in at most ``timeout`` seconds (or the Hub timeout,
        if shorter). A server that accepts and never answers passes; the bounded calls catch it."""
        if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                                           "all_proxy")):  # fmt: skip
            return True  # behind a proxy only the proxy can tell
        url = urlsplit(self.endpoint)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            with socket.create_connection((url.hostname or "", port), timeout=min(timeout, self.timeout)):
                return True
        except OSError:
            return False

    def api(self) -> Any:
        from huggingface_hub import HfApi

        from zoo_core import __version__

        return HfApi(endpoint=self.endpoint, token=self.token, library_name="zoo", library_version=__version__)


# -- names -------------------------------------------------------------------------------------------------


def parse_repo_spec(spec: str) -> tuple[str, str | None]:
    """``OWNER/NAME[@REV]`` -> (repo id, revision or None)."""
    repo_id, at, revision = spec.partition("@")
    if not REPO_ID_RE.match(repo_id) or ".." in repo_id or repo_id.endswith((".git", ".")) or (at and not revision):
        raise UsageError(f"invalid Hub repository {spec!r}: expected OWNER/NAME or OWNER/NAME@REVISION")
    return repo_id, revision or None


def hub_tag(repo_id: str, revision: str | None = None) -> str:
    """The local tag of a pulled repository: ``hub-OWNER-NAME``, plus ``-REV`` for an explicit revision
    (a commit sha shortened to 12 digits)."""
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        revision = revision[:12]
    text = f"hub-{repo_id}" + (f"-{revision}" if revision else "")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def origin_of(repo_id: str) -> str:
    return f"hf-hub:{repo_id}"


# -- errors --------------------------------------------------------------------------------------------------


def _chain(e: BaseException) -> list[BaseException]:
    """``e`` and the exceptions it was raised from (huggingface_hub wraps transfer failures)."""
    out: list[BaseException] = []
    current: BaseException | None = e
    while current is not None and all(current is not x for x in out):
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def _network_error(e: BaseException) -> BaseException | None:
    """The network failure (connection refused, dropped, timed out) behind ``e``, if there is one. Matched by
    class name: huggingface_hub's HTTP library has changed (requests, httpx) and may again."""
    return next((x for x in _chain(e) if any(c.__name__ in NETWORK_ERRORS for c in type(x).__mro__)), None)


def _status(e: BaseException) -> int | None:
    response = getattr(e, "response", None)
    return getattr(response, "status_code", None)


@contextmanager
def hub_errors(settings: HubSettings, repo_id: str, doing: str, after: str = "", *,
               transfer: bool = False) -> Iterator[Any]:  # fmt: skip
    """One bounded Hub call (``transfer``: bounded by progress, not in total; yields its
    ``hub_timeouts.Wait``): whatever huggingface_hub raises while ``doing`` something with ``repo_id`` becomes
    one ZooError line; ``after`` is appended to failures that running the command again may fix."""
    from zoo_registry.hub_timeouts import bounded

    try:
        with bounded(settings.timeout, transfer=transfer) as wait:
            yield wait
    except ZooError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the transfer raises becomes one line
        _end_progress_bars()
        raise _translate(e, settings, repo_id, doing, after) from None


def _end_progress_bars() -> None:
    """Close the progress bars a failed transfer left open (huggingface_hub does not close an upload's bar
    when the upload fails), so that the error line starts a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _translate(e: BaseException, settings: HubSettings, repo_id: str, doing: str, after: str) -> ZooError:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from zoo_registry.hub_timeouts import HubTimeoutError

    chain = _chain(e)
    timeout = next((x for x in chain if isinstance(x, HubTimeoutError)), None)
    if timeout is not None:
        waited = "moved no data for" if timeout.transfer else "did not answer within"
        return WeightsError(f"the Hub at {settings.endpoint} {waited} {settings.timeout:g} s while {doing} "
                            f"({settings.timeout_hint})")  # fmt: skip
    http = next((x for x in chain if isinstance(x, HfHubHTTPError)), None)
    status = _status(http) if http is not None else None
    network = _network_error(e)
    if isinstance(http, RevisionNotFoundError):
        return UsageError(f"{repo_id} has no such revision (while {doing})")
    if isinstance(http, RepositoryNotFoundError) and status != 401:
        reader = "the token cannot read it" if settings.token else "no token is set"
        return UsageError(f"repository {repo_id} not found at {settings.endpoint} (or it is private and {reader})")
    if status == 401:
        return WeightsError(f"{settings.endpoint} rejected the token (401 Unauthorized) while {doing}: set HF_TOKEN "
                            "to a valid token or run `hf auth login`")  # fmt: skip
    if status == 403:
        return WeightsError(f"no permission for {doing} (403 Forbidden): the token needs write access to "
                            f"'{repo_id.split('/')[0]}'")  # fmt: skip
    if any(type(x).__name__ == "OfflineModeIsEnabled" for x in chain):
        return WeightsError(f"huggingface_hub is in offline mode (HF_HUB_OFFLINE was set when it was imported) while "
                            f"{doing}")  # fmt: skip
    if isinstance(e, LocalEntryNotFoundError) and settings.unreachable:
        return WeightsError(f"cannot reach the Hub at {settings.endpoint} ({settings.unreachable}), and {repo_id} is "
                            "not in the Hugging Face cache; check the network or HF_ENDPOINT")  # fmt: skip
    if isinstance(e, LocalEntryNotFoundError) and settings.offline:
        return WeightsError(f"{repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading "
                            f"it; pull it once with the network (`zoo pull {repo_id}`)")  # fmt: skip
    if isinstance(e, EntryNotFoundError) and not isinstance(e, LocalEntryNotFoundError):
        return UsageError(f"{doing}: the file is not in {repo_id} (is it a repository zoo pushed?)")
    cached = ", and it is not in the Hugging Face cache" if isinstance(e, LocalEntryNotFoundError) else ""
    if status == 412:
        return WeightsError(f"{repo_id} changed on the Hub while {doing} (412 Precondition Failed){after}")
    if status is not None:
        reason = getattr(getattr(http, "response", None), "reason_phrase", "") or ""
        return WeightsError(f"the Hub answered {status} {reason} while {doing}{cached}{after}".replace("  ", " "))
    if network is not None:
        failed = "cannot reach" if "Connect" in type(network).__name__ else "lost the connection to"
        return WeightsError(f"{failed} the Hub at {settings.endpoint} while {doing} "
                            f"({first_line(network, typed=True, limit=200, whole=True)}){cached}{after}")  # fmt: skip
    if isinstance(e, LocalEntryNotFoundError):
        return WeightsError(f"cannot reach the Hub at {settings.endpoint} while {doing}{cached}; check the network "
                            "or HF_ENDPOINT")  # fmt: skip
    if isinstance(e, ValueError):
        return UsageError(f"{doing}: {first_line(e, limit=160, whole=True)}")
    return WeightsError(f"{doing} failed ({first_line(e, typed=True, limit=200, whole=True)}){after}")


# -- push --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResult:
    ref: str
    repo_id: str
    revision: str
    commit: str
    url: str
    pr_url: str | None
    files: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "repo": self.repo_id, "revision": self.revision, "commit": self.commit,
                "url": self.url, "pr_url": self.pr_url, "files": self.files}  # fmt: skip


def _base_model(config: dict[str, Any]) -> str | None:
    """The Hub id of the weights this entry was fine-tuned from, when they have one."""
    if config.get("base_model"):
        return str(config["base_model"])
    pretrained = (config.get("training") or {}).get("pretrained")
    if not pretrained:
        return None
    try:
        from zoo_core import weights_info

        return weights_info(config["architecture"], pretrained).hf_hub_id
    except ZooError:
        return None


def _pushed_metadata(entry: Any) -> dict[str, str]:
    """What a pushed weights file says of itself in its safetensors header: the version it is and its lineage."""
    from zoo_registry.lineage import of_entry

    return {"zoo_model": entry.model_name, "zoo_tag": entry.tag, "zoo_tag_version": str(entry.version),
            "zoo_pushed_from": entry.version_ref,
            "zoo_lineage": json.dumps(of_entry(entry), sort_keys=True, separators=(",", ":"))}  # fmt: skip


def _with_metadata(source: Path, target: Path, metadata: dict[str, str]) -> Path:
    """``source`` with ``metadata`` added to its safetensors header, written to ``target``; the tensors' bytes are
    copied as they are (nothing is re-serialised)."""
    import struct

    from zoo_registry.weights_file import read_header

    header = dict(read_header(source))  # checked: bounded, offsets inside the file
    with open(source, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + length)
        header["__metadata__"] = {**(header.get("__metadata__") or {}), **metadata}
        raw = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
        raw += b" " * (-len(raw) % 8)  # safetensors keeps the tensor data 8-byte aligned
        with open(target, "wb") as out:
            out.write(struct.pack("<Q", len(raw)) + raw)
            shutil.copyfileobj(f, out, 1 << 20)
    return target


def _check_repo_content(settings: HubSettings, api: Any, repo_id: str, revision: str,
                        architecture: str) -> tuple[str, list[str]]:  # fmt: skip
    """The head commit of ``revision`` and its files, after making sure the repository holds nothing but
    zoo's files of the same architecture (a fresh repository holds only .gitattributes)."""
    with hub_errors(settings, repo_id, f"reading {repo_id}"):
        info = api.model_info(repo_id, revision=revision)
    if not (isinstance(info.sha, str) and re.fullmatch(r"[0-9a-f]{40}", info.sha)):
        raise WeightsError(f"the Hub at {settings.endpoint} described {repo_id} without a commit id; is HF_ENDPOINT a "
                           "Hugging Face Hub?")  # fmt: skip
    names = sorted(str(s.rfilename) for s in info.siblings or [])
    foreign = [n for n in names if not hub_files.is_zoo_file(n)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" (+{len(foreign) - 3} more)" if len(foreign) > 3 else "")
        raise UsageError(f"{repo_id} already holds other content ({shown}); zoo pushes only to a new repository "
                         "or one it pushed the same model to: choose another --repo")  # fmt: skip
    if CONFIG in names:
        with hub_errors(settings, repo_id, f"reading {repo_id}/{CONFIG}"):
            path = _download(settings, repo_id, CONFIG, info.sha)
        try:
            pushed = hub_files.pushed_architecture(hub_files.load_json(path, f"{repo_id}@{info.sha[:12]}"))
        except WeightsError:
            pushed = None
        if pushed != architecture:
            what = f"weights of {pushed}" if pushed else "a config.json zoo did not write"
            raise UsageError(f"{repo_id} already holds {what}, not {architecture}; choose another --repo")
    return str(info.sha), names


def push(
    ref: str,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    license: str | None = None,
    create_pr: bool = False,
    max_shard_size: str | int = hub_files.DEFAULT_MAX_SHARD,
    timeout: float | None = None,
) -> PushResult:
    """Push the registry entry ``ref`` (``MODEL.TAG``) to the Hub repository ``repo_id`` in one commit.

    ``timeout``: seconds each call to the Hub may wait for an answer (default ``$ZOO_HUB_TIMEOUT``, else 30);
    the upload of the weights only fails when nothing moves for that long."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    from zoo_registry import store
    from zoo_registry.model_card import HubCard, render
    from zoo_registry.weights_file import sha256_file

    repo_id, at_revision = parse_repo_spec(repo_id)
    if at_revision:
        raise UsageError(f"--repo takes OWNER/NAME; give the branch with --revision {at_revision}")
    max_bytes = hub_files.parse_size(max_shard_size)
    plugin, model, tag = store.split_ref(ref, default=True)
    entry = store.get(f"{plugin}:{model}", tag)
    settings = HubSettings.from_env(timeout)
    if settings.offline:
        raise WeightsError("HF_HUB_OFFLINE=1 is set: pushing to the Hub needs the network")
    if not settings.token:
        raise WeightsError("no Hugging Face token: set HF_TOKEN to a token with write access, or run "
                           "`hf auth login`")  # fmt: skip
    branch = revision or "main"
    api = settings.api()
    with hub_errors(settings, repo_id, "checking the token"):
        api.whoami()
    with hub_errors(settings, repo_id, f"creating {repo_id}"):
        api.create_repo(repo_id, private=private or None, exist_ok=True)
    if branch != "main" and not create_pr:
        with hub_errors(settings, repo_id, f"creating the branch {branch} of {repo_id}"):
            if branch not in {b.name for b in api.list_repo_refs(repo_id).branches}:
                api.create_branch(repo_id, branch=branch)
    parent, remote = _check_repo_content(settings, api, repo_id, branch, entry.model_name)

    root = store.registry_root() / ".staging"
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix="push-"))
    try:
        # A hard link keeps these exact bytes even if the entry is replaced while the upload runs.
        weights = work / "source.safetensors"
        try:
            try:
                os.link(entry.weights_path, weights)
            except OSError:
                shutil.copyfile(entry.weights_path, weights)
            checksum = sha256_file(weights)
        except OSError as e:
            raise WeightsError(f"{entry.weights_path}: cannot read the weights ({e.strerror or e}); run zoo doctor"
                               ) from None  # fmt: skip
        if checksum != entry.sha256:
            raise WeightsError(f"{entry.weights_path}: checksum mismatch (file is corrupted or was changed); "
                               "publish it again before pushing")  # fmt: skip
        files = hub_files.write_weights(weights, work, max_bytes)
        files = {name: _with_metadata(path, work / f"described-{name}", _pushed_metadata(entry))
                 if name.endswith(".safetensors") else path for name, path in files.items()}  # fmt: skip
        hashes = {name: sha256_file(path) for name, path in files.items()}
        timm = entry.model_name.startswith("timm:")
        license_id = license or entry.config.get("license")
        base_model = _base_model(entry.config)
        config = hub_files.hub_config(entry.config, entry.metrics, hashes, license=license_id, base_model=base_model,
                                      timm=timm)  # fmt: skip
        card = render(entry.config, entry.metrics, store.model_ref(entry.model_name),
                      HubCard(repo_id, license_id, base_model, config.get("architecture") if timm else None,
                              sharded=INDEX in files))  # fmt: skip
        operations: list[Any] = [CommitOperationAdd(name, str(path)) for name, path in files.items()]
        operations.append(CommitOperationAdd(CONFIG, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()))
        operations.append(CommitOperationAdd(CARD, card.encode()))
        # weights of an earlier push that this one does not replace (shards become one file, or fewer shards)
        operations += [CommitOperationDelete(name) for name in sorted(remote)
                       if hub_files.is_weights_file(name) and name not in files]  # fmt: skip
        again = "; the local entry is unchanged: run the same command again (files the Hub has are not re-sent)"
        with hub_errors(settings, repo_id, f"uploading to {repo_id}", after=again, transfer=True):
            api.preupload_lfs_files(repo_id, additions=[op for op in operations if isinstance(op, CommitOperationAdd)],
                                    revision=branch, create_pr=create_pr)  # fmt: skip
        with hub_errors(settings, repo_id, f"committing to {repo_id}", after=again):
            commit = api.create_commit(
                repo_id, operations, commit_message=message or f"Upload {entry.ref} with zoo", revision=branch,
                create_pr=create_pr, parent_commit=parent,
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if not (isinstance(commit.oid, str) and re.fullmatch(r"[0-9a-f]{40}", commit.oid)) or not isinstance(
            commit.pr_url, (str, type(None))):  # fmt: skip
        raise WeightsError(f"the Hub at {settings.endpoint} answered the commit to {repo_id} without a commit id; "
                           "check the repository on the Hub")  # fmt: skip
    pushed_to = branch
    if commit.pr_url:
        pushed_to = f"refs/pr/{commit.pr_url.rstrip('/').rsplit('/', 1)[-1]}"
    record = {"repo": repo_id, "revision": pushed_to, "commit": commit.oid, "url": commit.commit_url,
              "pr_url": commit.pr_url, "endpoint": settings.endpoint, "date": utc_now()}  # fmt: skip
    store.record_push(entry.model_name, tag, {k: v for k, v in record.items() if v is not None})
    return PushResult(entry.ref, repo_id, pushed_to, commit.oid, commit.commit_url, commit.pr_url, sorted(files))


# -- pull ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    entry: Any  # zoo_registry.store.PublishedEntry
    repo_id: str
    commit: str
    updated: bool  # False: the local entry was already at this commit

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo_id, "commit": self.commit, "updated": self.updated, "ref": self.entry.ref,
                "sha256": self.entry.sha256, "path": str(self.entry.path), "version": self.entry.version}  # fmt: skip


def find_pulled(repo_id: str, tag: str) -> Any | None:
    """The local entry a pull of ``repo_id`` made under ``tag``, if any (reads JSON only)."""
    from zoo_registry.store import scan

    for entry in scan(on_error=None):
        if entry.tag == tag and entry.config.get("origin") == origin_of(repo_id):
            return entry
    return None


def _download(settings: HubSettings, repo_id: str, filename: str, revision: str) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id, filename, revision=revision, endpoint=settings.endpoint,
                                token=settings.token or None, cache_dir=settings.cache_dir,
                                local_files_only=settings.offline))  # fmt: skip


def _drop_from_cache(path: Path) -> None:
    """Delete a cached file and the blob it points to, so the next attempt downloads it again."""
    blob = path.resolve()
    for p in {path, blob}:
        try:
            p.unlink()
        except OSError:
            pass


def _fetch_weights(settings: HubSettings, repo_id: str, commit: str, hub: hub_files.HubEntry) -> dict[str, Path]:
    """Download (or find in the cache) every weights file at ``commit`` and check its sha256."""
    from zoo_registry.weights_file import sha256_file

    where = f"{repo_id}@{commit[:12]}"
    paths = {}
    for name, expected in sorted(hub.files.items()):
        with hub_errors(settings, repo_id, f"downloading {name} from {repo_id}", transfer=True):
            path = _download(settings, repo_id, name, commit)
        actual = sha256_file(path)
        if actual != expected:
            _drop_from_cache(path)
            raise WeightsError(f"{where}: {name} has sha256 {actual[:16]}..., config.json says {expected[:16]}...; "
                               "the download was corrupt and is removed from the cache: run the command again")
        paths[name] = path
    return paths


def pull(spec: str, *, fallback_to_local: bool = False, timeout: float | None = None) -> PullResult:
    """Fetch ``OWNER/NAME[@REV]`` into the local registry (or find it there) and return its entry.

    ``fallback_to_local``: when the Hub cannot be reached or fails, use what an earlier pull left in the
    registry (with a warning) instead of failing, as ``create_model("hf-hub:...")`` does. ``timeout``: seconds
    each call to the Hub may wait for an answer (default ``$ZOO_HUB_TIMEOUT``, else 30); a download of weights
    only fails when nothing moves for that long.
    """
    return _pull(spec, HubSettings.from_env(timeout), fallback_to_local)


def _pull(spec: str, settings: HubSettings, fallback_to_local: bool) -> PullResult:
    from zoo_registry import store

    repo_id, revision = parse_repo_spec(spec)
    tag = hub_tag(repo_id, revision)
    local = find_pulled(repo_id, tag)

    def use_local(why: str | None = None) -> PullResult:
        """The copy pulled before (``why``: the warning that says why it is used)."""
        assert local is not None
        pulled_at = str(local.config.get("revision"))
        if why:
            print(f"zoo: warning: {why}; using {local.ref} pulled at {pulled_at[:12]}", file=sys.stderr)
        return PullResult(local, repo_id, pulled_at, updated=False)

    if settings.offline and local is not None:
        return use_local()
    if not settings.offline and not settings.reachable():
        if fallback_to_local and local is not None:
            return use_local(f"cannot reach the Hub at {settings.endpoint}")
        settings = replace(settings, offline=True, unreachable="no connection")  # what the cache holds, if anything
    try:
        with hub_errors(settings, repo_id, f"reading {repo_id}/{CONFIG}") as wait:
            config_path = _download(settings, repo_id, CONFIG, revision or "main")
    except WeightsError as e:
        if fallback_to_local and local is not None and not settings.offline:
            return use_local(str(e))
        raise
    if wait.timed_out:  # huggingface_hub answered from its cache; the weights come from there too, at once
        settings = replace(settings, offline=True, unreachable=f"no answer within {settings.timeout:g} s")
    commit = config_path.parent.name  # huggingface_hub's cache keeps each commit in snapshots/<sha>/
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise WeightsError(f"the Hub at {settings.endpoint} gave {repo_id}/{CONFIG} no commit id; is HF_ENDPOINT a "
                           "Hugging Face Hub?")  # fmt: skip
    if settings.unreachable:
        print(f"zoo: warning: cannot reach the Hub at {settings.endpoint} ({settings.unreachable}); using the cached "
              f"{repo_id}@{commit[:12]}", file=sys.stderr)  # fmt: skip
    if local is not None and local.config.get("revision") == commit:
        return PullResult(local, repo_id, commit, updated=False)
    where = f"{repo_id}@{commit[:12]}"
    raw = hub_files.load_json(config_path, where)
    hub = hub_files.read_hub_config(raw, where)
    try:
        from zoo_core import parse, resolve

        if parse(hub.architecture).is_source:  # a repository naming another repository: never followed
            raise UsageError(f"{where}: config.json names {hub.architecture!r} as its architecture, not a model")
        resolve(hub.architecture)
    except UnknownNameError:
        raise UsageError(f"{where} holds weights of {hub.architecture}, which no installed plugin provides; install "
                         "the plugin that does (see `zoo plugins`)") from None  # fmt: skip
    existing = _entry_or_none(hub.architecture, tag)
    if existing is not None and existing.config.get("origin") != origin_of(repo_id):
        raise UsageError(f"{existing.ref} exists and did not come from {repo_id}; remove it first "
                         f"(`zoo registry remove {existing.ref} --yes`)")  # fmt: skip
    paths = _fetch_weights(settings, repo_id, commit, hub)
    provenance = {"source": "hub", "origin": origin_of(repo_id), "revision": commit, "hf_hub_id": repo_id,
                  "license": hub.license, "base_model": hub.base_model}  # fmt: skip
    options = dict(model_name=hub.architecture, tag=tag, model_kwargs=hub.model_kwargs, labels=hub.labels,
                   preprocessing=hub.preprocessing, metrics=hub.metrics, training=hub.training,
                   num_params=hub.num_params, provenance=provenance,
                   lineage=_pulled_lineage(raw, hub, repo_id, commit))  # fmt: skip
    if not hub.sharded:
        entry = store.publish_file(paths[WEIGHTS], **options)
    else:
        entry = _publish_shards(repo_id, commit, hub, paths, options)
    return PullResult(entry, repo_id, commit, updated=True)


def _pulled_lineage(raw: dict[str, Any], hub: hub_files.HubEntry, repo_id: str, commit: str) -> dict[str, Any]:
    """A pulled version's lineage: the repository at its commit, with the version and lineage it was pushed with
    (read from an untrusted file: kept only when it is an object of bounded size)."""
    zoo = raw.get("zoo") if isinstance(raw.get("zoo"), dict) else {}
    upstream = zoo.get("lineage")
    if not isinstance(upstream, dict) or len(json.dumps(upstream)) > hub_files.MAX_FIELD_BYTES:
        upstream = None
    version = zoo.get("version")
    pushed_as = f"{hub.architecture}.{hub.tag}@{version}" if isinstance(version, int) and version > 0 else None
    parent = {"kind": "hub", "name": origin_of(repo_id), "repo": repo_id, "commit": commit, "pushed_as": pushed_as,
              "lineage": upstream}  # fmt: skip
    return {"made_by": "pull", "parent": {k: v for k, v in parent.items() if v is not None}}


def _publish_shards(repo_id: str, commit: str, hub: hub_files.HubEntry, by_name: dict[str, Path],
                    options: dict[str, Any]) -> Any:  # fmt: skip
    """Join the verified shards into one file and publish that (the local registry keeps one file)."""
    from zoo_registry import store
    from zoo_registry.weights_file import tensor_shapes

    shards = [by_name[n] for n in sorted(by_name) if n != INDEX]
    where = f"{repo_id}@{commit[:12]}"
    index = hub_files.load_json(by_name[INDEX], where, INDEX)
    hub_files.check_index(index, [p.name for p in shards], where)
    root = store.registry_root() / ".staging"
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix="pull-"))
    try:
        merged = work / WEIGHTS
        from zoo_registry.weights_file import read_header

        # what the pusher wrote of the version and its lineage goes on in the one file
        pushed = {k: v for k, v in (read_header(shards[0]).get("__metadata__") or {}).items() if k != "format"}
        hub_files.merge_shards(shards, merged, pushed or {"zoo_model": hub.architecture})
        if set(tensor_shapes(merged)) != set(index["weight_map"]):
            raise WeightsError(f"{where}: the shards do not hold the tensors {INDEX} lists")
        return store.publish_file(merged, **options)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _entry_or_none(model_name: str, tag: str) -> Any | None:
    from zoo_registry import store

    try:
        return store.get(model_name, tag)
    except (UnknownNameError, WeightsError):
        return None


def resolve_hub_name(spec: str) -> str:
    """``OWNER/NAME[@REV]`` of an ``hf-hub:`` name -> the catalogue name of its pulled weights
    (``plugin:model.tag``), pulling them first when needed."""
    settings = replace(HubSettings.from_env(), timeout_hint="set ZOO_HUB_TIMEOUT")  # no --timeout to give here
    return str(_pull(spec, settings, fallback_to_local=True).entry.ref)
