from __future__ import annotations

from collections.abc import Sequence

from exchange.errors import BadRequest, Forbidden


class PurposeRequired(BadRequest):
    code = "purpose_required"
    title = "Declare the purpose of this use"

    def __init__(self) -> None:
        super().__init__("Every read of data needs the Exchange-Purpose header naming a registered purpose.")


class InvalidPurposeHeader(BadRequest):
    code = "invalid_purpose"
    title = "Exchange-Purpose is not a purpose code"

    def __init__(self) -> None:
        super().__init__(
            "Exchange-Purpose must be a registered purpose code (lowercase letters, digits, hyphens)."
        )


class UnauthorizedField(Forbidden):
    code = "unauthorized_field"
    title = "No grant covers some of the requested elements"

    def __init__(self, resource: str, elements: Sequence[str], reason: str) -> None:
        super().__init__(
            f"{resource}: {reason}. Ask for them with POST /v1/sharing-requests.",
            extra={"elements": list(elements)},
        )
