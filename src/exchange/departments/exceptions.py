from __future__ import annotations

from exchange.errors import Conflict, NotFound


class DepartmentNotFound(NotFound):
    code = "department_not_found"
    title = "No such department"

    def __init__(self, code: str) -> None:
        super().__init__(f"No department has the code {code}.")


class DepartmentExists(Conflict):
    code = "department_exists"
    title = "The department already exists"

    def __init__(self, code: str) -> None:
        super().__init__(f"A department with the code {code} already exists.")


class ClientNotFound(NotFound):
    code = "client_not_found"
    title = "No such client"

    def __init__(self, client_id: str) -> None:
        super().__init__(f"The department has no client {client_id}.")
