"""Every table of the hub, imported in one place so Alembic and the tests see the whole schema."""

from exchange.access.models import Grant, GrantElement, RequestedElement, SharingRequest
from exchange.audit.models import AuditArchive, AuditCheckpoint, AuditEvent, AuditLink, AuditPending
from exchange.auth.models import Client, ClientAssertion, ConsoleSession, HubSecret, Officer, SigningKey
from exchange.catalog.models import CatalogChange, Element, Purpose, Resource
from exchange.crosscheck.models import Corroboration, Discrepancy, DiscrepancyReport, ReconciliationRun
from exchange.db.base import Base
from exchange.departments.models import Department
from exchange.idempotency.models import IdempotencyKey
from exchange.records.models import Observation, RateWindow, Record, RecordVersion
from exchange.subscriptions.models import ChangeEvent, Delivery, Subscription

metadata = Base.metadata

__all__ = [
    "AuditArchive",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditLink",
    "AuditPending",
    "CatalogChange",
    "ChangeEvent",
    "Client",
    "ClientAssertion",
    "ConsoleSession",
    "Corroboration",
    "Delivery",
    "Department",
    "Discrepancy",
    "DiscrepancyReport",
    "Element",
    "Grant",
    "GrantElement",
    "HubSecret",
    "IdempotencyKey",
    "Observation",
    "Officer",
    "Purpose",
    "RateWindow",
    "ReconciliationRun",
    "Record",
    "RecordVersion",
    "RequestedElement",
    "Resource",
    "SharingRequest",
    "SigningKey",
    "Subscription",
    "metadata",
]
