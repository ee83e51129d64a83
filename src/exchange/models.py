"""Every table of the hub, imported in one place so Alembic and the tests see the whole schema."""

from exchange.auth.models import Client, ClientAssertion, SigningKey
from exchange.catalog.models import CatalogChange, Element, Purpose, Resource
from exchange.db.base import Base
from exchange.departments.models import Department

metadata = Base.metadata

__all__ = [
    "CatalogChange",
    "Client",
    "ClientAssertion",
    "Department",
    "Element",
    "Purpose",
    "Resource",
    "SigningKey",
    "metadata",
]
