"""A small Hugging Face Hub-protocol server for the tests and the transfer benchmark.

It speaks the part of the Hub's HTTP API that huggingface_hub's client uses to publish and fetch a model
repository: ``whoami-v2``, repo creation, ``validate-yaml``, ``preupload``, the git-LFS batch API with
"basic" transfers (a pre-signed PUT, then a verify call), the ndjson ``commit`` endpoint (branches,
``parentCommit``, pull requests), model info, refs, branches, tree and paths-info listings, and
``resolve`` (HEAD and GET, byte ranges, and the ``X-Repo-Commit`` / ``ETag`` / ``X-Linked-*`` headers the
client's cache is keyed on). Errors carry the ``X-Error-Code`` header the client maps to its exception
types. It offers no xet storage, so clients must run with ``HF_HUB_DISABLE_XET=1``.

Everything lives in memory. ``HubState.faults`` injects failures, each a count that goes down as it fires:
``commit_500`` (the commit endpoint answers 500), ``lfs_drop`` (the connection is closed half-way through
an LFS upload), ``download_drop`` (closed three quarters through the download of an LFS file),
``download_corrupt`` (an LFS file's last byte flipped) and ``download_stall`` (half an LFS file sent, then
nothing more until the server stops).

Two more ways to be slow: ``with server.hanging(): ...`` makes the server accept connections and read
requests but never answer them (``hanging("/commit/")``: only requests whose path holds that), each logged
with status 0 and dropped unanswered, nothing of it done, when the block ends; and ``HubState.pace`` sends LFS
downloads in eighths that many seconds apart.

    server = HubServer(users={"tok": ("alice", "write")}); server.start(); ...; server.stop()
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

# The accounts of the `hub_server` fixture (tests/conftest.py): token -> (user, role), and organisations.
USERS = {"hf_alice_write": ("alice", "write"), "hf_alice_read": ("alice", "read"), "hf_bob_write": ("bob", "write")}
ORGS = {"zoo-org": {"alice"}}
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files this large in LFS whatever .gitattributes says
GITATTRIBUTES = "*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
PR_RE = re.compile(r"^refs/pr/(\d+)$")


def git_blob_oid(data: bytes) -> str:
    """The id git gives a blob: sha1 of ``blob <size>\\0`` and the content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FileRecord:
    """One file of a commit: its content is ``HubState.blobs[sha256]``."""

    sha256: str
    size: int
    lfs: bool

    def git_oid(self, data: bytes) -> str:
        return git_blob_oid(lfs_pointer(self.sha256, self.size) if self.lfs else data)


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    date: str
    files: dict[str, FileRecord]


@dataclass
class Repo:
    repo_id: str
    private: bool
    created: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name (or refs/pr/N) -> commit oid
    next_pr: int = 1


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None,
                 **extra: Any) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.code, self.commit, self.extra = status, message, code, commit, extra


class HubState:
    """Users, repositories, stored content, injected faults and a log of every request."""

    def __init__(self, users: dict[str, tuple[str, str]], orgs: dict[str, set[str]] | None = None) -> None:
        self.users = dict(users)  # token -> (user name, "read" | "write")
        self.orgs = {k: set(v) for k, v in (orgs or {}).items()}
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> content, for LFS objects and regular files alike
        self.lfs_objects: dict[str, set[str]] = {}  # repo -> the LFS objects uploaded to it (git LFS is per repo)
        self.upload_urls: dict[str, tuple[str, str, int]] = {}  # signature -> (repo, oid, size)
        self.faults: dict[str, int] = {}
        self.pace = 0.0  # seconds between the eighths of an LFS download
        self.hang_on: str | None = None  # requests whose path holds this are never answered
        self.released = threading.Event()  # set when the hanging ends
        self.stopped = threading.Event()
        self.log: list[tuple[str, str, int]] = []  # (method, path, status); 0: never answered
        self.lock = threading.RLock()
        self._counter = itertools.count()

    def fault(self, name: str) -> bool:
        """Whether the fault ``name`` fires now (and count it down)."""
        with self.lock:
            left = self.faults.get(name, 0)
            if left > 0:
                self.faults[name] = left - 1
                return True
            return False

    def requests(self, method: str | None = None, contains: str = "") -> list[tuple[str, str, int]]:
        with self.lock:
            return [r for r in self.log if (method is None or r[0] == method) and contains in r[1]]

    # -- repositories and commits ---------------------------------------------------------------------

    def store(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.blobs.setdefault(sha, data)
        return sha

    def new_oid(self, *parts: str) -> str:
        return hashlib.sha1("\0".join([*parts, str(next(self._counter))]).encode()).hexdigest()

    def create_repo(self, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_id, private, now_iso())
        data = GITATTRIBUTES.encode()
        first = Commit(self.new_oid(repo_id, "initial"), None, "initial commit", now_iso(),
                       {".gitattributes": FileRecord(self.store(data), len(data), False)})  # fmt: skip
        repo.commits[first.oid] = first
        repo.branches["main"] = first.oid
        self.repos[repo_id] = repo
        return repo

    def resolve(self, repo: Repo, revision: str) -> Commit:
        oid = repo.branches.get(revision)
        if oid is None and revision in repo.commits:
            oid = revision
        if oid is None:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def is_lfs(self, commit: Commit, path: str, size: int) -> bool:
        if size >= LFS_THRESHOLD:
            return True
        record = commit.files.get(".gitattributes")
        text = self.blobs[record.sha256].decode() if record else ""
        patterns = [line.split()[0] for line in text.splitlines() if "filter=lfs" in line]
        return any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in patterns)


# -- the request handler ------------------------------------------------------------------------------------


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    server: HubHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    # -- plumbing -------------------------------------------------------------------------------------------

    @property
    def state(self) -> HubState:
        return self.server.state

    @property
    def base(self) -> str:
        return self.server.base_url

    def _read_body(self, limit: int | None = None) -> bytes:
        """The request body (Content-Length or chunked); with ``limit``, only that many bytes of it."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while limit is None or len(out) < limit:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                out += self.rfile.read(size)
                self.rfile.readline()
            return bytes(out)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def _drop(self) -> None:
        """Close the connection at once, with no response (what a network failure looks like)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        with self.state.lock:
            self.state.log.append((self.command, self.path, status))

    def _send_head(self, status: int, headers: dict[str, str], length: int) -> None:
        """The status line and headers of a download whose body the caller writes itself."""
        self.send_response(status)
        fields = {**headers, "Content-Type": "application/octet-stream", "Content-Length": str(length)}
        for key, value in fields.items():
            self.send_header(key, value)
        self.end_headers()

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, e: HttpError) -> None:
        headers = {"X-Error-Message": e.message}
        if e.code:
            headers["X-Error-Code"] = e.code
        if e.commit:
            headers["X-Repo-Commit"] = e.commit
        self._json(e.status, {"error": e.message, **e.extra}, headers)

    def _user(self, required: bool) -> tuple[str, str] | None:
        auth = self.headers.get("Authorization", "")
        if not auth:
            if required:
                raise HttpError(401, "Invalid credentials in Authorization header")
            return None
        token = auth.removeprefix("Bearer ").strip()
        user = self.state.users.get(token)
        if user is None:
            raise HttpError(401, "Invalid credentials in Authorization header")
        return user

    def _can_write(self, user: tuple[str, str] | None, namespace: str) -> bool:
        return (user is not None and user[1] == "write"
                and (namespace == user[0] or user[0] in self.state.orgs.get(namespace, set())))  # fmt: skip

    def _repo(self, repo_id: str, write: bool = False) -> Repo:
        user = self._user(required=write)
        repo = self.state.repos.get(repo_id)
        namespace = repo_id.split("/")[0]
        if repo is None or (repo.private and not (user and (user[0] == namespace or user[0] in
                                                            self.state.orgs.get(namespace, set())))):  # fmt: skip
            raise HttpError(404, "Repository not found", "RepoNotFound")
        if write and not self._can_write(user, namespace):
            raise HttpError(403, "You don't have the rights to write to this repository")
        return repo

    # -- dispatch ---------------------------------------------------------------------------------------------

    def _route(self) -> None:
        hang_on = self.state.hang_on
        if hang_on is not None and hang_on in self.path:  # read by nobody and never answered
            with self.state.lock:
                self.state.log.append((self.command, self.path, 0))
            self.state.released.wait()
            return self._drop()
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self._body_read = False
        self._slow_body: tuple[int, dict[str, str], bytes, bool] | None = None
        try:
            with self.state.lock:
                self._dispatch(self.command, parts, query)
        except HttpError as e:
            if not self._body_read and self.command in ("POST", "PUT"):
                self._read_body()  # keep the connection in step before answering
            self._error(e)
        except Exception as e:  # noqa: BLE001 - a bug here must be an answer, not a hung client
            self._error(HttpError(500, f"test server bug: {type(e).__name__}: {e}"))
        if self._slow_body is not None:  # sent outside the lock, so that other clients are served meanwhile
            try:
                self._send_slowly(*self._slow_body)
            except OSError:  # the client gave up
                self.close_connection = True

    def _send_slowly(self, status: int, headers: dict[str, str], body: bytes, stall: bool) -> None:
        """A download sent in eighths ``HubState.pace`` s apart, or (``stall``) half of it and then nothing."""
        self._send_head(status, headers, len(body))
        if stall:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.state.stopped.wait()
            return self._drop()
        step = -(-len(body) // 8)
        for start in range(0, len(body), step):
            time.sleep(self.state.pace)
            self.wfile.write(body[start : start + step])
            self.wfile.flush()
        with self.state.lock:
            self.state.log.append((self.command, self.path, status))
        return None

    def _dispatch(self, method: str, parts: list[str], query: dict[str, str]) -> None:
        if parts[:2] == ["api", "whoami-v2"] and method == "GET":
            return self.whoami()
        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self.create_repo()
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return self.validate_yaml()
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = "/".join(parts[2:4]), parts[4:]
            if not rest and method == "GET":
                return self.model_info(repo_id, "main", query)
            if rest[:1] == ["revision"] and len(rest) == 2 and method == "GET":
                return self.model_info(repo_id, rest[1], query)
            if rest == ["refs"] and method == "GET":
                return self.refs(repo_id, query)
            if rest[:1] == ["branch"] and len(rest) == 2 and method == "POST":
                return self.create_branch(repo_id, rest[1])
            if rest[:1] == ["preupload"] and len(rest) == 2 and method == "POST":
                return self.preupload(repo_id, rest[1])
            if rest[:1] == ["commit"] and len(rest) == 2 and method == "POST":
                return self.commit(repo_id, rest[1], query)
            if rest[:1] == ["tree"] and len(rest) >= 2 and method == "GET":
                return self.tree(repo_id, rest[1], "/".join(rest[2:]), query)
            if rest[:1] == ["paths-info"] and len(rest) == 2 and method == "POST":
                return self.paths_info(repo_id, rest[1])
        if len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
            return self.lfs_batch(f"{parts[0]}/{parts[1][:-4]}")
        if parts[:1] == ["lfs-upload"] and len(parts) == 2 and method == "PUT":
            return self.lfs_put(parts[1])
        if parts[:1] == ["lfs-verify"] and len(parts) == 3 and method == "POST":
            return self.lfs_verify("/".join(parts[1:3]))
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self.resolve_file("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        raise HttpError(404, f"no route for {method} /{'/'.join(parts)}")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route()

    def do_HEAD(self) -> None:  # noqa: N802
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def do_PUT(self) -> None:  # noqa: N802
        self._route()

    def _body_json(self) -> Any:
        self._body_read = True
        raw = self._read_body()
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            raise HttpError(400, "body is not JSON") from None

    # -- account and repositories ---------------------------------------------------------------------------

    def whoami(self) -> None:
        name, role = self._user(required=True)  # type: ignore[misc]
        orgs = [{"name": org, "type": "org"} for org, members in self.state.orgs.items() if name in members]
        self._json(200, {"type": "user", "name": name, "orgs": orgs,
                         "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": role}}})

    def create_repo(self) -> None:
        user = self._user(required=True)
        body = self._body_json()
        if body.get("type", "model") != "model":
            raise HttpError(400, "this server keeps model repositories only")
        name, namespace = body.get("name"), body.get("organization") or user[0]  # type: ignore[index]
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise HttpError(400, f"invalid repository name {name!r}")
        if not self._can_write(user, namespace):
            raise HttpError(403, f"You don't have the rights to create a model under the namespace {namespace}")
        repo_id = f"{namespace}/{name}"
        if repo_id in self.state.repos:
            raise HttpError(409, "You already created this model repo", url=f"{self.base}/{repo_id}")
        private = body.get("visibility") == "private" or bool(body.get("private"))
        self.state.create_repo(repo_id, private)
        self._json(200, {"url": f"{self.base}/{repo_id}", "name": repo_id, "id": repo_id})

    def validate_yaml(self) -> None:
        import yaml

        content = str(self._body_json().get("content", ""))
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as e:
            return self._json(400, {"errors": [{"message": f"invalid YAML: {e}"}]})
        if meta is not None and not isinstance(meta, dict):
            return self._json(400, {"errors": [{"message": "the metadata must be a mapping"}]})
        self._json(200, {"errors": [], "warnings": []})

    def _files(self, commit: Commit, blobs: bool) -> list[dict[str, Any]]:
        out = []
        for path, record in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=record.size, blobId=record.git_oid(self.state.blobs[record.sha256]))
                if record.lfs:
                    pointer = len(lfs_pointer(record.sha256, record.size))
                    sibling["lfs"] = {"size": record.size, "sha256": record.sha256, "pointerSize": pointer}
            out.append(sibling)
        return out

    def model_info(self, repo_id: str, revision: str, query: dict[str, str]) -> None:
        import yaml

        repo = self._repo(repo_id)
        commit = self.state.resolve(repo, revision)
        card = commit.files.get("README.md")
        card_data = None
        if card is not None:
            match = re.match(r"^---\n(.*?)\n---\n", self.state.blobs[card.sha256].decode(), re.S)
            card_data = yaml.safe_load(match.group(1)) if match else None
        self._json(200, {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": repo_id.split("/")[0], "sha": commit.oid, "lastModified": commit.date, "createdAt": repo.created,
            "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "library_name": (card_data or {}).get("library_name"), "cardData": card_data,
            "siblings": self._files(commit, blobs=query.get("blobs", "").lower() in ("1", "true")),
        })  # fmt: skip

    def refs(self, repo_id: str, query: dict[str, str]) -> None:
        repo = self._repo(repo_id)
        branches, prs = [], []
        for name, oid in sorted(repo.branches.items()):
            row = {"name": name, "ref": name if PR_RE.match(name) else f"refs/heads/{name}", "targetCommit": oid}
            (prs if PR_RE.match(name) else branches).append(row)
        out: dict[str, Any] = {"branches": branches, "tags": [], "converts": []}
        if query.get("include_prs"):
            out["pullRequests"] = prs
        self._json(200, out)

    def create_branch(self, repo_id: str, branch: str) -> None:
        repo = self._repo(repo_id, write=True)
        body = self._body_json()
        if branch in repo.branches:
            raise HttpError(409, f"Reference already exists: {branch}")
        start = self.state.resolve(repo, body.get("startingPoint") or "main")
        repo.branches[branch] = start.oid
        self._json(200, {})

    # -- uploads ------------------------------------------------------------------------------------------

    def preupload(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id, write=True)
        body = self._body_json()
        commit = self.state.resolve(repo, revision)
        files = []
        for item in body.get("files", []):
            path, size = item["path"], int(item["size"])
            existing = commit.files.get(path)
            mode = "lfs" if self.state.is_lfs(commit, path, size) else "regular"
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.lfs else existing.git_oid(self.state.blobs[existing.sha256])
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json(200, {"files": files, "commitOid": commit.oid})

    def lfs_batch(self, repo_id: str) -> None:
        self._repo(repo_id, write=True)
        body = self._body_json()
        if body.get("operation") != "upload" or "basic" not in body.get("transfers", ["basic"]):
            raise HttpError(400, "only 'upload' with the 'basic' transfer is supported here")
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj["oid"]), int(obj["size"])
            row: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.state.lfs_objects.get(repo_id, set()):
                signature = secrets.token_hex(16)
                self.state.upload_urls[signature] = (repo_id, oid, size)
                row["actions"] = {
                    "upload": {"href": f"{self.base}/lfs-upload/{signature}", "header": {}},
                    "verify": {"href": f"{self.base}/lfs-verify/{repo_id}", "header": {}},
                }
            objects.append(row)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")  # fmt: skip

    def lfs_put(self, signature: str) -> None:
        target = self.state.upload_urls.get(signature)
        if target is None:
            raise HttpError(403, "upload URL is not valid")
        repo_id, oid, size = target
        if self.state.fault("lfs_drop"):
            self._read_body(limit=max(1, size // 2))
            return self._drop()
        self._body_read = True
        data = self._read_body()
        if len(data) != size or hashlib.sha256(data).hexdigest() != oid:
            raise HttpError(400, "uploaded content does not match its oid and size")
        self.state.blobs[oid] = data
        self.state.lfs_objects.setdefault(repo_id, set()).add(oid)
        self._send(200, b"", content_type="text/plain")

    def lfs_verify(self, repo_id: str) -> None:
        self._repo(repo_id, write=True)
        body = self._body_json()
        if body.get("oid") not in self.state.lfs_objects.get(repo_id, set()):
            raise HttpError(404, "object not found")
        self._json(200, {})

    def commit(self, repo_id: str, revision: str, query: dict[str, str]) -> None:
        repo = self._repo(repo_id, write=True)
        self._body_read = True
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        if self.state.fault("commit_500"):
            raise HttpError(500, "Internal Error - We're working hard to fix this as soon as possible!")
        if not lines or lines[0].get("key") != "header":
            raise HttpError(400, "the commit must start with a header line")
        header = lines[0]["value"]
        head = self.state.resolve(repo, revision)
        parent = header.get("parentCommit")
        if parent and parent != head.oid:
            raise HttpError(412, f"parent commit {parent} is not the head of {revision} ({head.oid})")
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = value.get("path", "")
            if key == "file":
                data = base64.b64decode(value["content"])
                files[path] = FileRecord(self.state.store(data), len(data), False)
            elif key == "lfsFile":
                oid = value["oid"]
                if oid not in self.state.lfs_objects.get(repo_id, set()):
                    raise HttpError(422, f"LFS object {oid} for {path} was never uploaded to {repo_id}")
                files[path] = FileRecord(oid, len(self.state.blobs[oid]), True)
            elif key in ("deletedFile", "deletedFolder"):
                gone = [p for p in files if p == path or p.startswith(path.rstrip("/") + "/")]
                if not gone:
                    raise HttpError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                for p in gone:
                    del files[p]
            else:
                raise HttpError(400, f"unknown commit operation {key!r}")
        create_pr = bool(query.get("create_pr"))
        if not create_pr and revision not in repo.branches:
            raise HttpError(400, f"commits go to a branch; {revision} is not one")
        oid = self.state.new_oid(repo_id, head.oid, header.get("summary", ""))
        repo.commits[oid] = Commit(oid, head.oid, header.get("summary", ""), now_iso(), files)
        pr_url = None
        if create_pr:
            number = repo.next_pr
            repo.next_pr += 1
            repo.branches[f"refs/pr/{number}"] = oid
            pr_url = f"{self.base}/{repo_id}/discussions/{number}"
        else:
            repo.branches[revision] = oid
        self._json(200, {"commitUrl": f"{self.base}/{repo_id}/commit/{oid}", "commitOid": oid,
                         "pullRequestUrl": pr_url, "success": True})  # fmt: skip

    # -- listings and downloads -----------------------------------------------------------------------------

    def _entry(self, path: str, record: FileRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": record.git_oid(self.state.blobs[record.sha256]),
                                 "size": record.size, "path": path}  # fmt: skip
        if record.lfs:
            entry["lfs"] = {"oid": record.sha256, "size": record.size,
                            "pointerSize": len(lfs_pointer(record.sha256, record.size))}  # fmt: skip
        return entry

    def tree(self, repo_id: str, revision: str, folder: str, query: dict[str, str]) -> None:
        repo = self._repo(repo_id)
        commit = self.state.resolve(repo, revision)
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        recursive = query.get("recursive", "").lower() in ("1", "true")
        out, folders = [], set()
        for path, record in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            out.append(self._entry(path, record))
        out += [{"type": "directory", "oid": hashlib.sha1(p.encode()).hexdigest(), "size": 0, "path": p}
                for p in sorted(folders)]  # fmt: skip
        if prefix and not out:
            raise HttpError(404, f"{folder} does not exist", "EntryNotFound", commit.oid)
        self._json(200, out)

    def paths_info(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id)
        commit = self.state.resolve(repo, revision)
        self._body_read = True
        form = parse_qs(self._read_body().decode())
        out = [self._entry(p, commit.files[p]) for p in form.get("paths", []) if p in commit.files]
        self._json(200, out)

    def resolve_file(self, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_id)
        commit = self.state.resolve(repo, revision)
        record = commit.files.get(path)
        if record is None:
            raise HttpError(404, "Entry not found", "EntryNotFound", commit.oid)
        data = self.state.blobs[record.sha256]
        etag = record.sha256 if record.lfs else record.git_oid(data)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Disposition": f'inline; filename="{quote(path.rsplit("/", 1)[-1])}"'}  # fmt: skip
        if record.lfs:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(record.size)})
        status, start, end = 200, 0, len(data)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(len(data), int(match.group(2)) + 1) if match.group(2) else len(data)
            if start >= len(data) and len(data):
                raise HttpError(416, "Requested range not satisfiable")
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        body = data[start:end]
        if self.command == "GET" and record.lfs and body and self.state.fault("download_corrupt"):
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        if self.command == "GET" and record.lfs and len(body) > 1 and self.state.fault("download_stall"):
            self._slow_body = (status, headers, body, True)
            return None
        if self.command == "GET" and record.lfs and len(body) > 1 and self.state.pace:
            self._slow_body = (status, headers, body, False)
            return None
        if self.command == "GET" and record.lfs and len(body) > 1 and self.state.fault("download_drop"):
            self._send_head(status, headers, len(body))
            self.wfile.write(body[: len(body) * 3 // 4])
            self.wfile.flush()
            return self._drop()
        self._send(status, body, headers, content_type="application/octet-stream")


class HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: HubState, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), HubHandler)
        self.state = state
        self.base_url = f"http://{host}:{self.server_address[1]}"


class HubServer:
    """Runs a HubHTTPServer on a free port of 127.0.0.1 in a background thread."""

    def __init__(self, users: dict[str, tuple[str, str]], orgs: dict[str, set[str]] | None = None) -> None:
        self.state = HubState(users, orgs)
        self.httpd = HubHTTPServer(self.state)
        self.url = self.httpd.base_url
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hub-server", daemon=True)  # fmt: skip

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.stopped.set()
        self.state.released.set()  # hung handlers drop their connections and end
        self.httpd.shutdown()
        self.httpd.server_close()

    @contextmanager
    def hanging(self, path: str = "") -> Iterator[HubServer]:
        """Within the block the server accepts connections and never answers a request whose path holds
        ``path`` (a Hub stuck behind its load balancer); those are dropped unanswered, and nothing of them
        done, when the block ends."""
        self.state.released.clear()
        self.state.hang_on = path
        try:
            yield self
        finally:
            self.state.hang_on = None
            self.state.released.set()

    def unanswered(self) -> list[tuple[str, str, int]]:
        """The requests the server never answered."""
        with self.state.lock:
            return [r for r in self.state.log if r[2] == 0]

    def file(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        """A file's content at a revision, read from the server's own state (what the Hub holds)."""
        with self.state.lock:
            repo = self.state.repos[repo_id]
            record = self.state.resolve(repo, revision).files[path]
            return self.state.blobs[record.sha256]

    def head(self, repo_id: str, branch: str = "main") -> str:
        with self.state.lock:
            return self.state.repos[repo_id].branches[branch]

    def files(self, repo_id: str, revision: str = "main") -> list[str]:
        with self.state.lock:
            return sorted(self.state.resolve(self.state.repos[repo_id], revision).files)
