"""The declared use a data request carries in its headers (谁使用、谁负责)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError

from exchange.access.exceptions import InvalidPurposeHeader, PurposeRequired
from exchange.audit import context
from exchange.auth.dependencies import CurrentPrincipal, check_roles
from exchange.auth.principal import Principal, Role
from exchange.errors import InvalidInput
from exchange.lean import header_too_long

_PURPOSE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


@dataclass(frozen=True, slots=True)
class DeclaredUse:
    purpose: str | None
    case_reference: str | None
    officer: str | None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

PurposeHeader = Annotated[
    str | None, Header(alias="Exchange-Purpose", description="The registered purpose of this use.")
]
MAX_HEADER_CHARACTERS = 600
CaseHeader = Annotated[
    str | None,
    Header(
        alias="Exchange-Case",
        max_length=MAX_HEADER_CHARACTERS,
        description="The case this use serves (UTF-8 may be %-encoded).",
    ),
]
OfficerHeader = Annotated[
    str | None,
    Header(
        alias="Exchange-On-Behalf-Of",
        max_length=MAX_HEADER_CHARACTERS,
        description="The officer the system acts for (%-encoded UTF-8).",
    ),
]


def use_of(
    request: Request, purpose: str | None, case_reference: str | None, officer: str | None
) -> DeclaredUse:
    """The declared use from its headers, added to the request's audit context; refused if malformed."""
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


async def declared_use(
    request: Request,
    purpose: PurposeHeader = None,
    case_reference: CaseHeader = None,
    officer: OfficerHeader = None,
) -> DeclaredUse:
    return use_of(request, purpose, case_reference, officer)


async def required_purpose(use: Annotated[DeclaredUse, Depends(declared_use)]) -> DeclaredUse:
    """Reads of data must declare their purpose: missing is a 400 ``purpose_required``."""
    if use.purpose is None:
        raise PurposeRequired()
    return use


Use = Annotated[DeclaredUse, Depends(declared_use)]
ReadUse = Annotated[DeclaredUse, Depends(required_purpose)]


@dataclass(frozen=True, slots=True)
class Reader:
    """A caller allowed to ask for data: its identity and the use it declared (with a purpose)."""

    principal: Principal
    use: DeclaredUse


def reader(*roles: Role) -> Callable[..., Awaitable[Reader]]:
    """A caller holding one of ``roles``, and its declared use with a purpose: identity, role, then purpose
    (the checks of ``require_roles`` and ``ReadUse``, in their order). Lean routes make the same checks with
    :func:`lean_read_use` and document themselves as declaring this dependency."""
    wanted = frozenset(roles)

    async def dependency(
        request: Request,
        principal: CurrentPrincipal,
        purpose: PurposeHeader = None,
        case_reference: CaseHeader = None,
        officer: OfficerHeader = None,
    ) -> Reader:
        check_roles(principal, wanted)
        use = use_of(request, purpose, case_reference, officer)
        if use.purpose is None:
            raise PurposeRequired()
        return Reader(principal, use)

    return dependency


def lean_read_use(request: Request) -> DeclaredUse:
    """The declared use of a lean route's read (see exchange.lean): the headers ``reader`` declares, with
    the validation FastAPI applies to them, then the same checks (a purpose is required)."""
    headers = request.headers
    case_reference = headers.get("exchange-case")
    officer = headers.get("exchange-on-behalf-of")
    too_long = [
        error
        for name, value in (("Exchange-Case", case_reference), ("Exchange-On-Behalf-Of", officer))
        if (error := header_too_long(name, value, MAX_HEADER_CHARACTERS)) is not None
    ]
    if too_long:
        raise RequestValidationError([e for error in too_long for e in error.errors()])
    use = use_of(request, headers.get("exchange-purpose"), case_reference, officer)
    if use.purpose is None:
        raise PurposeRequired()
    return use
