"""The app's own files (style sheet, icon), read from the package once and served by name from memory: a request
names a key of a dictionary, never a path, so no ``..`` in any encoding can reach the file system."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".js": "text/javascript; charset=utf-8",
         ".png": "image/png", ".ico": "image/x-icon"}  # fmt: skip


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file in the package's ``static`` folder, by its name."""
    found = {}
    for item in resources.files("zoo_serve").joinpath("static").iterdir():
        suffix = item.name[item.name.rfind("."):] if "." in item.name else ""
        if item.is_file() and suffix in TYPES:
            body = item.read_bytes()
            found[item.name] = Asset(body, TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return found
