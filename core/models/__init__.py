"""SQLAlchemy 2 typed models: the domain objects and their tables, one module per concept.

Money columns are BigInteger minor units. Times are timezone-aware UTC; `UtcDateTime`
stores them naive-UTC on SQLite and `timestamptz` on PostgreSQL and always hands back
aware datetimes. Status, kind and purpose columns are enums stored as text (`EnumText`).
Import models from here: `from core.models import Loan, LoanStatus`.
"""
from __future__ import annotations

from core.models.base import (
    NAMING,
    Base,
    EnumText,
    Money,
    UtcDateTime,
)
from core.models.community import (
    DataRequest,
    DataRequestKind,
    DataRequestStatus,
    Story,
    StoryStatus,
)
from core.models.disputes import (
    OPEN_DISPUTES,
    Dispute,
    DisputeNote,
    DisputeStatus,
)
from core.models.groups import (
    Group,
    GroupMember,
    Guarantee,
    GuaranteeStatus,
    MembershipStatus,
    Pause,
    PauseStatus,
)
from core.models.ledger import (
    Account,
    AccountKind,
    HoldState,
    Transfer,
    TransferCode,
    TransferKind,
)
from core.models.loans import (
    BEING_REPAID,
    OPEN_LOAN_STATES,
    OWING,
    PAID_OUT,
    Installment,
    Loan,
    LoanStatus,
    Pledge,
    PledgeStatus,
)
from core.models.members import (
    Member,
    MemberStatus,
    Role,
)
from core.models.messaging import (
    DeliveryReport,
    InboundSms,
    InboundStatus,
    OutboxMessage,
    OutboxStatus,
    Purpose,
)
from core.models.operators import (
    AuditEntry,
    Operator,
    OperatorRole,
)
from core.models.payments import (
    PAYOUTS_IN_FLIGHT,
    Confirmation,
    Payment,
    PaymentKind,
    Payout,
    PayoutPurpose,
    PayoutStatus,
    ProviderFloat,
    StkRequest,
    StkStatus,
)

__all__ = [
    "Account",
    "AccountKind",
    "AuditEntry",
    "BEING_REPAID",
    "Base",
    "Confirmation",
    "DeliveryReport",
    "DataRequest",
    "DataRequestKind",
    "DataRequestStatus",
    "Dispute",
    "DisputeNote",
    "DisputeStatus",
    "EnumText",
    "Group",
    "GroupMember",
    "Guarantee",
    "GuaranteeStatus",
    "HoldState",
    "InboundSms",
    "InboundStatus",
    "Installment",
    "Loan",
    "LoanStatus",
    "Member",
    "MembershipStatus",
    "MemberStatus",
    "Money",
    "NAMING",
    "OPEN_DISPUTES",
    "OPEN_LOAN_STATES",
    "Operator",
    "OperatorRole",
    "OWING",
    "OutboxMessage",
    "OutboxStatus",
    "PAID_OUT",
    "Payment",
    "PaymentKind",
    "PAYOUTS_IN_FLIGHT",
    "Pause",
    "PauseStatus",
    "Payout",
    "PayoutPurpose",
    "PayoutStatus",
    "ProviderFloat",
    "StkRequest",
    "StkStatus",
    "Pledge",
    "PledgeStatus",
    "Purpose",
    "Role",
    "Story",
    "StoryStatus",
    "Transfer",
    "TransferCode",
    "TransferKind",
    "UtcDateTime",
]
