"""Uploaded pictures, refused before they cost anything: a body over the size limit is cut off as it arrives
(``BodyLimit``), a picture over the pixel limit is refused from its header before a pixel is decoded, and only
the image formats zoo reads are decoded at all."""

from __future__ import annotations

import io
from typing import Any

from zoo_core.plugin_api import UsageError, first_line, to_true_colours
from zoo_serve.errors import TooLarge

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORM_OVERHEAD = 64 * 1024  # the multipart boundaries and the other fields around the picture


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets a 413 without being read further, whether it
    says its length (refused before reading) or not (refused when the limit is crossed). A body within the
    limit is read whole first, then handed on: uploads are small, and the app never sees a cut-off one."""

    def __init__(self, app: Any, limit: int, answer: Any) -> None:
        self.app, self.limit, self.answer = app, limit, answer  # answer(scope, text) -> an ASGI response

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = f"the upload is over the limit of {self.limit / (1024 * 1024):.0f} MB"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self.answer(scope, too_large)(scope, receive, send)
            return
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self.answer(scope, too_large)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, given = b"".join(chunks), False

        async def replay() -> Any:
            nonlocal given
            if given:
                return await receive()  # a disconnect, when the client goes away
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def decode(data: bytes, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_UPLOAD_BYTES) -> Any:
    """An uploaded file's bytes -> a PIL image in its true colours, as ``zoo_core``'s ``load_image`` reads a
    file; TooLarge (413) over a limit, UsageError (400) for what is not a picture zoo reads."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UsageError("no image was uploaded: choose a picture file")
    if len(data) > max_bytes:
        raise TooLarge(f"the image is {len(data):,} bytes, over the limit of {max_bytes:,}")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:  # PIL's own limit, above ours: refused from the header as well
        raise TooLarge(f"the image has too many pixels (over {max_pixels:,})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UsageError(f"the upload is not a picture zoo reads ({', '.join(FORMATS)})") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise TooLarge(f"the image is {width}x{height} = {width * height:,} pixels, over the limit of "
                           f"{max_pixels:,}")  # fmt: skip
        try:
            image.load()
            return to_true_colours(image, "the upload")
        except UsageError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise UsageError(f"the image cannot be decoded ({first_line(e)})") from None
