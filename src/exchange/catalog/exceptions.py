from __future__ import annotations

from collections.abc import Sequence

from exchange.catalog.diff import Change
from exchange.errors import Conflict, ExchangeError, NotFound, PreconditionFailed


class ResourceNotFound(NotFound):
    code = "resource_not_found"
    title = "No such resource"

    def __init__(self, code: str) -> None:
        super().__init__(f"The catalogue has no resource {code}.")


class ElementNotFound(NotFound):
    code = "element_not_found"
    title = "No such element"

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f"The resource {resource} has no element {name}.")


class VersionNotFound(NotFound):
    code = "version_not_found"
    title = "No such version"

    def __init__(self, resource: str, version: int) -> None:
        super().__init__(f"The resource {resource} has no version {version}.")


class PurposeNotFound(NotFound):
    code = "purpose_not_found"
    title = "No such purpose"

    def __init__(self, code: str) -> None:
        super().__init__(f"No purpose is registered with the code {code}.")


class ResourceExists(Conflict):
    code = "resource_exists"
    title = "The resource already exists"


class StaleVersion(PreconditionFailed):
    code = "stale_version"
    title = "The resource has changed since you read it"

    def __init__(self, code: str, current: int) -> None:
        super().__init__(
            f"The resource {code} is now at version {current}; read it again and reapply your edit.",
            headers={"ETag": f'"{current}"'},
        )


class PreconditionRequired(ExchangeError):
    status = 428
    code = "precondition_required"
    title = "If-Match is required"

    def __init__(self) -> None:
        super().__init__("Send If-Match with the ETag you read, so that no one else's edit is overwritten.")


class BreakingChange(Conflict):
    code = "breaking_change"
    title = "The edit moves a source department or removes elements"

    def __init__(self, resource: str, changes: Sequence[Change]) -> None:
        paths = ", ".join(change.path for change in changes)
        super().__init__(
            f"{resource}: {paths}. Such edits change whose value is canonical or make published data "
            "unreachable; repeat with allow_breaking=true to confirm.",
            extra={"changes": [change.as_dict() for change in changes]},
        )
