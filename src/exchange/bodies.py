"""What every request body must be before any route reads it: not too large, valid UTF-8, and free of NUL
characters (PostgreSQL text cannot hold them, and no field of the hub has a use for one). The same goes for
the URL's path and query.

One pure-ASGI middleware checks JSON and form bodies whole, before the app sees them, and answers 413, 400 or
422 problems; NDJSON batches stream and are checked line by line where they are read (records/batch.py).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.errors import InvalidParam, problem_response

# A JSON string escape for U+0000: "\\u0000" preceded by an even number of backslashes (so "\\\\u0000", an
# escaped backslash followed by the text u0000, is not one). JSON writes the escape with a lowercase u.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_FORM_NUL = re.compile(rb"%00")
CHECKED_METHODS = frozenset({"POST", "PUT", "PATCH"})


def nul_in_json(raw: bytes) -> bool:
    # The substring tests are scans in C; the expression runs only on the rare body holding the escape.
    return b"\x00" in raw or (b"\\u0000" in raw and _JSON_NUL.search(raw) is not None)


def nul_in_form(raw: bytes) -> bool:
    return b"\x00" in raw or _FORM_NUL.search(raw) is not None


def nul_in_url(scope: Scope) -> bool:
    """A NUL in the path (decoded) or the query string (percent-encoded): it would reach PostgreSQL as a code,
    an element name or a filter, and be refused there."""
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or nul_in_form(query)


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return str(value.split(b";")[0].strip().lower().decode("latin-1"))
    return ""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyGuardMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and nul_in_url(scope):
            await self._nul_in_url()(scope, receive, send)
            return
        media = _media_type(scope) if scope["type"] == "http" else ""
        if (
            scope["type"] != "http"
            or scope["method"] not in CHECKED_METHODS
            or media == "application/x-ndjson"
        ):
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refusal = self._refusal(media, body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    def _nul_in_url() -> ASGIApp:
        return problem_response(
            status=422,
            code="nul_character",
            title="The URL holds a NUL character",
            detail="The path and the query may not contain U+0000 (NUL, %00); remove it and send again.",
        )

    def _too_large(self) -> ASGIApp:
        return problem_response(
            status=413,
            code="payload_too_large",
            title="Payload too large",
            detail=f"The body is larger than {self.max_bytes} bytes; send large sets as an NDJSON batch.",
        )

    @staticmethod
    def _refusal(media: str, body: bytes) -> ASGIApp | None:
        is_json = media == "application/json" or media.endswith("+json")
        is_form = media == "application/x-www-form-urlencoded"
        if not (is_json or is_form):
            return None
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return problem_response(
                status=400,
                code="invalid_encoding",
                title="The body is not UTF-8",
                detail=f"The body is not valid UTF-8 (byte {exc.start}).",
            )
        if (nul_in_json if is_json else nul_in_form)(body):
            return problem_response(
                status=422,
                code="nul_character",
                title="The body holds a NUL character",
                detail="Text may not contain U+0000 (NUL); remove it and send again.",
                invalid_params=[
                    InvalidParam(name=name, reason="must not contain the NUL character")
                    for name in (nul_fields_json(body) if is_json else nul_fields_form(body))
                ],
            )
        return None


def _nul_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [path or "body"] if "\x00" in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            named = f"{path}.{key}" if path else str(key)
            found += [named] if "\x00" in str(key) else _nul_paths(item, named)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nul_paths(item, f"{path}.{index}" if path else str(index))
    return found


def nul_fields_json(body: bytes) -> list[str]:
    """The fields holding a NUL, named as validation errors name them (``fields.name``), for the answer."""
    try:
        return _nul_paths(orjson.loads(body), "")
    except orjson.JSONDecodeError:
        return ["body"]


def nul_fields_form(body: bytes) -> list[str]:
    return sorted(
        {name for name, value in parse_qsl(body.decode(), keep_blank_values=True) if "\x00" in name + value}
    )
