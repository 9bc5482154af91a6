"""SQLAlchemy models. Import from here; the modules split them by area."""

from app.models.accounts import ROLES, Bar, SetPasswordLink, User
from app.models.api import ApiKey
from app.models.audit import AuditEvent
from app.models.base import one_of, utcnow
from app.models.c2b import C2BConfirmation, C2BRegistration
from app.models.c2b_validation import C2BValidation, C2BValidationRule
from app.models.initiator import InitiatorCredential, InitiatorRequest, InitiatorResult
from app.models.jobs import JobLease, JobStatus
from app.models.mpesa import CallbackEvent, MpesaCredential, Payment
from app.models.pull import PullRegistration
from app.models.receipts import ReceiptLink
from app.models.reconciliation import ReconciliationSummary, StatementImport, StatementLine
from app.models.reversals import Reversal
from app.models.system import SystemSetting
from app.models.tabs import Tab, TabLine, Tender
from app.models.tokens import DarajaToken

__all__ = [
    "ROLES",
    "ApiKey",
    "AuditEvent",
    "Bar",
    "C2BConfirmation",
    "C2BRegistration",
    "C2BValidation",
    "C2BValidationRule",
    "CallbackEvent",
    "DarajaToken",
    "InitiatorCredential",
    "InitiatorRequest",
    "InitiatorResult",
    "JobLease",
    "JobStatus",
    "MpesaCredential",
    "Payment",
    "PullRegistration",
    "ReceiptLink",
    "ReconciliationSummary",
    "Reversal",
    "SetPasswordLink",
    "StatementImport",
    "StatementLine",
    "SystemSetting",
    "Tab",
    "TabLine",
    "Tender",
    "User",
    "one_of",
    "utcnow",
]
