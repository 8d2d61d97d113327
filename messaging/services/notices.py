"""Who hears of a new message outside the socket: the offline notice and @mentions.

The offline notice rule lives here, once; both stores apply it (the ORM through
`note_offline_recipients`, PostgreSQL through `offline_notice_sql` inside the send statement):

* the recipient is `offline_recipient(author, public)`: the family's account for a reply the
  patient can see, the assignee (else the thread's doctor) for a patient's message;
* only if they have no live socket (messaging.selectors.alive_since);
* not if a notice for the same person and thread is already pending: a burst of messages
  waits in that one;
* not before the clinic's `offline_notice_minutes`: the notifications app delivers it then,
  and only if the message is still unread (notifications.services).
"""

from __future__ import annotations

import enum
import re
from datetime import timedelta

from clinics.models import Clinic, Doctor, Membership
from messaging import realtime
from messaging.models import Message, SocketConnection, Thread
from messaging.selectors import users_online
from notifications.models import Notification
from patients.models import Patient

MENTION = re.compile(r"@([\w.+-]{2,150})")


class Recipient(enum.Enum):
    FAMILY = "the user of the patient's account holder"
    ANSWERER = "the assignee, else the thread's doctor's user"


def offline_recipient(author: str, public: bool) -> Recipient | None:
    if public and author in (Message.Author.STAFF, Message.Author.SYSTEM, Message.Author.BOT):
        return Recipient.FAMILY
    if author == Message.Author.PATIENT:
        return Recipient.ANSWERER
    return None


def note_offline_recipients(*, message: Message, thread: Thread) -> bool:
    """The rule above, step by step through the ORM; returns whether the recipient was offline."""
    recipients: list[int] = []
    match offline_recipient(message.author, message.is_public):
        case Recipient.FAMILY:
            if thread.patient.account_holder.user_id:
                recipients.append(thread.patient.account_holder.user_id)
        case Recipient.ANSWERER:
            if thread.assigned_to_id:
                recipients.append(thread.assigned_to_id)
            elif thread.doctor is not None and thread.doctor.user_id:
                recipients.append(thread.doctor.user_id)
    online = users_online(recipients) if recipients else set()
    offline = [uid for uid in recipients if uid not in online]
    pending = (
        set(
            Notification.objects.filter(
                recipient_id__in=offline, thread=thread, kind=Notification.Kind.MESSAGE, status=Notification.Status.PENDING
            ).values_list("recipient_id", flat=True)
        )
        if offline
        else set()
    )
    not_before = message.created_at + timedelta(minutes=thread.clinic.offline_notice_minutes)
    Notification.objects.bulk_create(
        Notification(
            clinic_id=thread.clinic_id,
            recipient_id=uid,
            kind=Notification.Kind.MESSAGE,
            thread=thread,
            message=message,
            created_at=message.created_at,
            not_before=not_before,
        )
        for uid in offline
        if uid not in pending
    )
    return bool(offline)


def offline_notice_sql(author: str, public: bool) -> list[str]:
    """The rule above as common table expressions of the send statement (after its `thread` and `message`).

    Parameters: %(patient)s, %(now)s, %(alive_since)s, %(notification_kind)s, %(notification_status)s.
    """
    patient, doctor = Patient._meta.db_table, Doctor._meta.db_table
    match offline_recipient(author, public):
        case Recipient.FAMILY:
            recipient = (
                "SELECT CASE WHEN p.guardian_id IS NULL THEN p.user_id ELSE g.user_id END AS user_id "
                f"FROM {patient} p LEFT JOIN {patient} g ON g.id = p.guardian_id WHERE p.id = %(patient)s"
            )
        case Recipient.ANSWERER:
            recipient = f"SELECT COALESCE(thread.assigned_to_id, (SELECT d.user_id FROM {doctor} d WHERE d.id = thread.doctor_id)) AS user_id FROM thread"
        case None:
            return []
    notification, socket = Notification._meta.db_table, SocketConnection._meta.db_table
    return [
        f"recipient AS ({recipient})",
        f"notified AS (INSERT INTO {notification} "
        "(clinic_id, recipient_id, kind, thread_id, message_id, reason, status, created_at, not_before) "
        "SELECT thread.clinic_id, recipient.user_id, %(notification_kind)s::varchar, thread.id, message.id, 'offline', "
        "%(notification_status)s::varchar, %(now)s, %(now)s + make_interval(mins => "
        f"(SELECT offline_notice_minutes FROM {Clinic._meta.db_table} WHERE id = thread.clinic_id)) FROM thread, message, recipient "
        f"WHERE recipient.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {socket} s "
        "WHERE s.user_id = recipient.user_id AND s.seen_at >= %(alive_since)s) "
        f"AND NOT EXISTS (SELECT 1 FROM {notification} n WHERE n.recipient_id = recipient.user_id "
        "AND n.thread_id = thread.id AND n.kind = %(notification_kind)s::varchar AND n.status = %(notification_status)s::varchar) RETURNING id)",
    ]


def notify_mentions(*, message: Message, thread: Thread) -> None:
    """Staff named with @username in a private note: an outbox row if offline, a `mention` event to each."""
    names = set(MENTION.findall(message.text))
    if not names:
        return
    staff = list(
        Membership.objects.filter(clinic_id=thread.clinic_id, is_active=True, user__username__in=names).values_list("user_id", flat=True)
    )
    message.mentions.set(staff)
    online = users_online(staff) if staff else set()
    Notification.objects.bulk_create(
        Notification(clinic_id=thread.clinic_id, recipient_id=uid, kind=Notification.Kind.MENTION, thread=thread, message=message)
        for uid in staff
        if uid not in online
    )
    if staff:
        realtime.send_on_commit(
            [([realtime.user_group(uid)], {"type": "mention", "thread": thread.pk, "seq": message.seq}) for uid in staff]
        )
