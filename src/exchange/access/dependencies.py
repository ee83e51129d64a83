"""The declared use a data request carries in its headers (谁使用、谁负责)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, Request

from exchange.access.exceptions import InvalidPurposeHeader, PurposeRequired
from exchange.audit import context
from exchange.errors import InvalidInput

_PURPOSE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


@dataclass(frozen=True, slots=True)
class DeclaredUse:
    purpose: str | None
    case_reference: str | None
    officer: str | None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


async def declared_use(
    request: Request,
    purpose: Annotated[
        str | None, Header(alias="Exchange-Purpose", description="The registered purpose of this use.")
    ] = None,
    case_reference: Annotated[
        str | None,
        Header(
            alias="Exchange-Case",
            max_length=600,
            description="The case this use serves (UTF-8 may be %-encoded).",
        ),
    ] = None,
    officer: Annotated[
        str | None,
        Header(
            alias="Exchange-On-Behalf-Of",
            max_length=600,
            description="The officer the system acts for (%-encoded UTF-8).",
        ),
    ] = None,
) -> DeclaredUse:
    # Header values are ASCII on the wire: case numbers and officer names in Chinese or Mongolian script come
    # percent-encoded as UTF-8 (RFC 3986) and are logged decoded.
    use = DeclaredUse(purpose or None, unquote(case_reference or "") or None, unquote(officer or "") or None)
    for header, value in (("Exchange-Case", use.case_reference), ("Exchange-On-Behalf-Of", use.officer)):
        if value is not None and _CONTROL.search(value):
            # Decoded, %0d%0a or %00 would split log lines or cut a text column: refused, never stored.
            raise InvalidInput.one(header, "holds control characters")
    valid = use.purpose is None or _PURPOSE.match(use.purpose) is not None
    if context.current(request) is not None:
        context.update(
            request,
            purpose=use.purpose if valid else None,
            case_reference=use.case_reference,
            officer=use.officer,
        )
    if not valid:
        raise InvalidPurposeHeader()
    return use


async def required_purpose(use: Annotated[DeclaredUse, Depends(declared_use)]) -> DeclaredUse:
    """Reads of data must declare their purpose: missing is a 400 ``purpose_required``."""
    if use.purpose is None:
        raise PurposeRequired()
    return use


Use = Annotated[DeclaredUse, Depends(declared_use)]
ReadUse = Annotated[DeclaredUse, Depends(required_purpose)]
