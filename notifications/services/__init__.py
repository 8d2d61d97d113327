"""Writes of the outbox, by concern; the public names are re-exported here so call sites read `services.X`.

- outbox.py: dispatch (whether and where a notice goes: opt-out, consent, quiet hours);
- sending.py: deliveries handed to providers at most once, stuck ones settled, provider reports;
- codes.py: sign-in codes (urgent, the code only in the cache);
- personal.py: the person's preferences and the reminders patients set themselves;
- bulk.py: batch writes at a fixed cost.
What each kind of notice says is declared by the app that owns its subject (notifications.kinds).
"""

from notifications.services.codes import CODE_MASK, code_notify
from notifications.services.outbox import (
    QUIET_ENDS,
    QUIET_STARTS,
    due_notification_ids,
    notification_dispatch,
    notifications_dispatch_batch,
    notifications_dispatch_due,
    quiet_until,
)
from notifications.services.personal import (
    REPEAT_STEP,
    personal_reminder_add,
    personal_reminder_cancel,
    personal_reminders_queue,
    preference_update,
)
from notifications.services.sending import (
    DELIVERY_BATCH,
    MAX_ATTEMPTS,
    STAGE_MARK_SECONDS,
    StuckSettled,
    TryAgain,
    deliveries_queue,
    deliveries_send,
    deliveries_settle_stuck,
    delivery_report,
    delivery_send,
    retry_delay,
)

__all__ = [
    "CODE_MASK",
    "DELIVERY_BATCH",
    "MAX_ATTEMPTS",
    "QUIET_ENDS",
    "QUIET_STARTS",
    "REPEAT_STEP",
    "STAGE_MARK_SECONDS",
    "StuckSettled",
    "TryAgain",
    "code_notify",
    "deliveries_queue",
    "deliveries_send",
    "deliveries_settle_stuck",
    "delivery_report",
    "delivery_send",
    "due_notification_ids",
    "notification_dispatch",
    "notifications_dispatch_batch",
    "notifications_dispatch_due",
    "personal_reminder_add",
    "personal_reminder_cancel",
    "personal_reminders_queue",
    "preference_update",
    "quiet_until",
    "retry_delay",
]
