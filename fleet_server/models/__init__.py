"""The fleet server's tables (SQLAlchemy 2 declarative), one module per area; schema
changes go through Alembic (``fleet_server/migrations``).

Times are stored as timezone-aware UTC datetimes. Everything a dashboard row needs is
denormalised onto ``devices`` so the fleet table is one indexed query at 10,000 counters.
"""

from fleet_server.models.base import Base, UtcDateTime
from fleet_server.models.fleet import (
    Alert,
    BrokerLink,
    CommandRecord,
    Device,
    EventRecord,
    ServerAlert,
    SiteThreshold,
    StatusChange,
    SurveyRecord,
    TelemetrySample,
)
from fleet_server.models.notify import NotificationDelivery, NotificationTarget
from fleet_server.models.scheme import (
    Appointment,
    CallRecord,
    Permanence,
    QuestionnaireVersion,
    ScheduleException,
    ScheduleRule,
    Service,
)
from fleet_server.models.security import (
    ApiToken,
    AuditEntry,
    EnrolmentRequest,
    EnrolmentToken,
    User,
    WebSession,
)
from fleet_server.models.support import SupportUpload
from fleet_server.models.updates import CounterUpdateRecord, Release, RolloutRecord

__all__ = [
    "Alert",
    "ApiToken",
    "Appointment",
    "AuditEntry",
    "Base",
    "BrokerLink",
    "CallRecord",
    "CommandRecord",
    "CounterUpdateRecord",
    "Device",
    "EnrolmentRequest",
    "EnrolmentToken",
    "EventRecord",
    "NotificationDelivery",
    "NotificationTarget",
    "Permanence",
    "QuestionnaireVersion",
    "Release",
    "RolloutRecord",
    "ScheduleException",
    "ScheduleRule",
    "ServerAlert",
    "Service",
    "SiteThreshold",
    "StatusChange",
    "SupportUpload",
    "SurveyRecord",
    "TelemetrySample",
    "User",
    "UtcDateTime",
    "WebSession",
]
