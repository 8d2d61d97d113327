"""Reads for conversation screens: inbox, thread page, portal chat, reconnect catch-up.

Every query starts from `visible_to(user)` (clinics.tenancy): staff see their
clinic's threads (a doctor only their own), a patient their family's, and a
patient never sees private notes or staff events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum, TextField
from django.db.models.functions import Cast, Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext
from phonenumber_field.phonenumber import to_python

from accounts.models import display_name
from clinics.models import Clinic, Doctor, Tag
from clinics.tenancy import FRONT_DESK, clinic_roles, staff_can_view
from core.client_input import whole_number
from messaging.models import Attachment, CannedAnswer, Message, SocketConnection, Thread
from patients.models import Contact, patient_hint

_Counts = TypeVar("_Counts")

VIEW_TTL = 45  # seconds a "viewing" mark lasts without a refresh from the client
REPLY_TTL = 8  # seconds "X is replying" lasts after the last keystroke
PAGE = 50
CATCH_UP_LIMIT = 500  # past this many missed messages a client is told to reload instead


# --- inbox ---------------------------------------------------------------------------------


SCOPES = ("mine", "unassigned", "all")


@dataclass(frozen=True)
class InboxFilter:
    """What the operator picked above the thread list."""

    mine: bool = False
    unassigned: bool = False
    status: str | None = None
    channel: str | None = None
    tag: int | None = None
    clinic: int | None = None
    query: str = ""

    @classmethod
    def from_params(cls, params: Any) -> InboxFilter:
        """The one parser of inbox query parameters (admin inbox and API): unknown values are ignored.

        `scope=mine|unassigned|all`; `mine=1` and `unassigned=1` are the API's older spelling of the scope.
        """
        scope = params.get("scope", "")
        if scope not in SCOPES:
            scope = "mine" if params.get("mine") == "1" else "unassigned" if params.get("unassigned") == "1" else "all"
        status, channel = params.get("status", ""), params.get("channel", "")
        tag, clinic = params.get("tag", ""), params.get("clinic", "")
        return cls(
            mine=scope == "mine",
            unassigned=scope == "unassigned",
            status=status if status in Thread.Status.values else None,
            channel=channel if channel in Thread.Channel.values else None,
            tag=whole_number(tag),
            clinic=whole_number(clinic),
            query=params.get("q", "").strip()[:100],
        )

    @property
    def scope(self) -> str:
        return "mine" if self.mine else "unassigned" if self.unassigned else "all"


def inbox_scope(*, user: Any) -> QuerySet[Thread]:
    """Which threads this user's inbox holds: the tenancy layer decides (a clinic's staff, a doctor their own).

    Every inbox read (list, rows, counts, facets, assignees) starts here."""
    return Thread.objects.visible_to(user)


def _inbox_queryset(user: Any, filters: InboxFilter) -> QuerySet[Thread]:
    threads = inbox_scope(user=user)
    if filters.mine:
        threads = threads.filter(assigned_to=user)
    if filters.unassigned:
        threads = threads.filter(assigned_to__isnull=True)
    if filters.status:
        threads = threads.filter(status=filters.status)
    if filters.channel:
        threads = threads.filter(channel=filters.channel)
    if filters.tag:
        threads = threads.filter(tags=filters.tag)
    if filters.clinic:
        threads = threads.filter(clinic_id=filters.clinic)
    if filters.query:
        q = filters.query.strip()
        threads = threads.filter(Q(patient__full_name__icontains=q) | Q(patient__phone__contains=q) | Q(patient__email__icontains=q))
    return threads.order_by("-last_activity_at", "-pk")


def inbox_threads(*, user: Any, filters: InboxFilter | None = None) -> QuerySet[Thread]:
    """The thread list of the API, newest activity first; two queries whatever its length (+ tags)."""
    threads = _inbox_queryset(user, filters or InboxFilter())
    return threads.select_related("patient", "clinic", "doctor", "assigned_to", "team").prefetch_related("tags")


@dataclass(frozen=True)
class InboxRow:
    """One row of the admin inbox list: plain values, no model instances (50 rows of six joined
    models with parsed phone numbers cost more than the query itself)."""

    pk: int
    patient: str
    preview: str
    sensitive: bool
    unread: int
    status: str
    status_label: str
    priority: int
    priority_label: str
    assignee: str
    doctor: str
    clinic: str
    last_activity_at: Any
    waiting_since: Any
    patient_hint: str = ""  # the phone tail beside the name: two «Ольга Лебедева» are told apart

    @property
    def cursor(self) -> str:
        """Where the next page starts (keyset on the list's order: last activity, then pk)."""
        micros = (self.last_activity_at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.pk}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROW_FIELDS = (
    "pk",
    "patient__full_name",
    "patient_phone",
    "patient__email",
    "last_message_preview",
    "sensitive",
    "staff_unread",
    "status",
    "priority",
    "assigned_to__first_name",
    "assigned_to__last_name",
    "assigned_to__username",
    "doctor__full_name",
    "clinic__name",
    "last_activity_at",
    "waiting_since",
    "patient__birth_date",
)


def _inbox_row(
    pk: int,
    name: str,
    phone: str | None,
    email: str | None,
    preview: str,
    sensitive: bool,
    unread: int,
    status: str,
    priority: int,
    first: str | None,
    last: str | None,
    username: str | None,
    doctor: str | None,
    clinic: str,
    at: datetime,
    waiting: datetime | None,
    born: date | None,
) -> InboxRow:
    """One row from the values of _ROW_FIELDS, in their order."""
    return InboxRow(
        pk=pk,
        patient=name or str(to_python(phone) if phone else email or f"#{pk}"),  # as Patient.__str__
        preview=preview,
        sensitive=sensitive,
        unread=unread,
        status=status,
        status_label=str(_STATUSES.get(status, status)),
        priority=priority,
        priority_label=str(_PRIORITIES.get(priority, priority)),
        assignee=display_name(first_name=first or "", last_name=last or "", username=username) if username else "",
        doctor=doctor or "",
        clinic=clinic,
        last_activity_at=at,
        waiting_since=waiting,
        patient_hint=patient_hint(phone=phone, birth_date=born) if name else "",  # as Patient.hint
    )


def inbox_row_of(thread: Thread) -> InboxRow:
    """The inbox row of one thread already loaded (the `message.new` event's row): no query when the
    caller holds its patient, clinic, doctor and assignee, as the send path does."""
    patient, assignee = thread.patient, thread.assigned_to
    return _inbox_row(
        thread.pk,
        patient.full_name,
        str(patient.phone) if patient.phone else None,
        patient.email,
        thread.last_message_preview,
        thread.sensitive,
        thread.staff_unread,
        thread.status,
        thread.priority,
        assignee.first_name if assignee else None,
        assignee.last_name if assignee else None,
        assignee.username if assignee else None,
        thread.doctor.full_name if thread.doctor_id and thread.doctor else None,
        thread.clinic.name,
        thread.last_activity_at,
        thread.waiting_since,
        patient.birth_date,
    )


_STATUSES: dict[str, Any] = dict(Thread.Status.choices)
_PRIORITIES: dict[int, Any] = dict(Thread.Priority.choices)


def parse_inbox_cursor(value: str) -> tuple[datetime, int] | None:
    """`InboxRow.cursor` back to (last activity, pk); None for anything else."""
    micros, _dot, pk = value.partition(".")
    if whole_number(micros.removeprefix("-")) is None or whole_number(pk) is None:
        return None
    try:
        return _EPOCH + timedelta(microseconds=int(micros)), int(pk)
    except OverflowError:
        return None


def inbox_rows(*, user: Any, filters: InboxFilter | None = None, limit: int = PAGE, after: str = "") -> tuple[list[InboxRow], bool]:
    """A page of the admin inbox list, newest activity first, and whether older rows follow.

    One query: only the columns a row shows. `after` is the cursor of the last row of the
    previous page (keyset: stable while new messages move threads to the top).
    """
    threads = _inbox_queryset(user, filters or InboxFilter())
    position = parse_inbox_cursor(after) if after else None
    if position is not None:
        moment, pk = position
        threads = threads.filter(Q(last_activity_at__lt=moment) | Q(last_activity_at=moment, pk__lt=pk), last_activity_at__lte=moment)
    # The phone as stored (no PhoneNumber parsing per row); formatted only for a patient without a name.
    threads = threads.annotate(patient_phone=Cast("patient__phone", TextField()))
    rows = [_inbox_row(*values) for values in threads.values_list(*_ROW_FIELDS)[: limit + 1]]
    return rows[:limit], len(rows) > limit


def inbox_version_key(clinic_id: int) -> str:
    return f"inbox-version:{clinic_id}"


def _cached_counts(user: Any, name: str, compute: Callable[[], _Counts]) -> _Counts:
    """Inbox counts scan every thread of a clinic (slow at 100k threads: bench/inbox.py) and are shown on every
    admin page. They are cached per user and filter, keyed by a version per clinic that services
    bump on every thread change (messaging.services._inbox_changed): never stale, recomputed only
    after something changed."""
    clinic_ids = sorted(clinic_roles(user))
    if user.is_superuser or not clinic_ids:
        return compute()
    versions = cache.get_many([inbox_version_key(c) for c in clinic_ids])
    stamp = ".".join(f"{c}:{versions.get(inbox_version_key(c), 0)}" for c in clinic_ids)
    key = f"inbox-counts:{user.pk}:{name}:{stamp}"
    found: _Counts | None = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, timeout=300)
    return found


def inbox_counts(*, user: Any) -> dict[str, int]:
    return _cached_counts(user, "badges", lambda: _inbox_counts(user=user))


def _inbox_counts(*, user: Any) -> dict[str, int]:
    """Badges of the inbox filters: unread threads and unread messages, mine and unassigned, in one query."""
    open_threads = inbox_scope(user=user).exclude(status=Thread.Status.RESOLVED)
    counts: dict[str, int] = open_threads.aggregate(
        unread_threads=Count("pk", filter=Q(staff_unread__gt=0)),
        unread_messages=Coalesce(Sum("staff_unread"), 0),
        mine=Count("pk", filter=Q(assigned_to=user)),
        unassigned=Count("pk", filter=Q(assigned_to__isnull=True)),
        waiting=Count("pk", filter=Q(waiting_since__isnull=False)),
    )
    return counts


class ThreadNotFound(Http404, Thread.DoesNotExist):
    """No such thread for this user. An Http404 (pages and the API answer 404) that is also the model's
    DoesNotExist (the socket answers a `not_found` error frame; callers that look a thread up softly catch it)."""


def thread_for(*, user: Any, thread_id: int) -> Thread:
    """One thread the user may see, else ThreadNotFound (also for other clinics' threads: no hint they exist)."""
    try:
        thread: Thread = (
            Thread.objects.visible_to(user)
            # Not the team: nothing shows it, and a ninth join made PostgreSQL's planning of this query cost more than its run.
            .select_related("patient", "patient__guardian", "clinic", "doctor", "assigned_to", "contact")
            .prefetch_related("tags")
            .get(pk=thread_id)
        )
    except Thread.DoesNotExist:
        raise ThreadNotFound(gettext("No such conversation.")) from None
    return thread


def thread_messages(
    *, user: Any, thread: Thread, before_seq: int | None = None, after_seq: int | None = None, limit: int = PAGE
) -> list[Message]:
    """A page of the history in seq order: the newest `limit` before `before_seq`, or everything after `after_seq`."""
    messages = (
        Message.objects.visible_to(user)
        .filter(thread=thread)
        .select_related("sender")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("pk")))
    )
    if after_seq is not None:
        return list(messages.filter(seq__gt=after_seq).order_by("seq")[:limit])
    if before_seq is not None:
        messages = messages.filter(seq__lt=before_seq)
    page = list(messages.order_by("-seq")[:limit])
    page.reverse()
    return page


def missed_messages(*, user: Any, cursors: dict[int, int]) -> tuple[list[Message], list[int]]:
    """What a reconnecting client missed: messages after the seq it has, per thread it names.

    Threads the user may not see are silently skipped. A thread with more than
    CATCH_UP_LIMIT missed messages is returned in the second list: reload it.
    """
    visible = set(Thread.objects.visible_to(user).filter(pk__in=list(cursors)).values_list("pk", flat=True))
    if not visible:
        return [], []
    condition = Q()
    for thread_id in visible:
        condition |= Q(thread_id=thread_id, seq__gt=max(0, int(cursors[thread_id])))
    rows = list(
        Message.objects.visible_to(user)
        .filter(condition)
        .select_related("sender")
        .prefetch_related("attachments")
        .order_by("thread_id", "seq")[: CATCH_UP_LIMIT * len(visible) + 1]
    )
    per_thread: dict[int, int] = {}
    for row in rows:
        per_thread[row.thread_id] = per_thread.get(row.thread_id, 0) + 1
    too_many = sorted(tid for tid, n in per_thread.items() if n > CATCH_UP_LIMIT)
    return [m for m in rows if m.thread_id not in too_many], too_many


def thread_visit_events(*, thread: Thread) -> list[tuple[int, str]]:
    """(seq, event) of the clinic's messages about a visit (booked, moved, cancelled), in order: each closes the
    times offered before it in the conversation (the offer is used, or the patient's plans changed)."""
    rows = Message.objects.filter(thread=thread, data__has_key="visit_event").order_by("seq").values_list("seq", "data")
    return [(seq, str(data.get("visit_event", ""))) for seq, data in rows]


def canned_answers_for(*, user: Any, thread: Thread) -> QuerySet[CannedAnswer]:
    """The clinic's answers and the user's own there; for one shortcode the user's own comes first."""
    return (
        CannedAnswer.objects.visible_to(user)
        .filter(clinic_id=thread.clinic_id)
        .filter(Q(owner__isnull=True) | Q(owner=user))
        .order_by("shortcode", F("owner").asc(nulls_last=True))
    )


def canned_answer_render(*, answer: CannedAnswer, thread: Thread, portal_url: str = "") -> str:
    """Fill the variables of a canned answer for this thread's patient and clinic."""
    patient, clinic = thread.patient, thread.clinic
    values = {
        "patient_name": patient.full_name,
        "patient_first_name": patient.given_name,
        "clinic_name": clinic.name,
        "clinic_address": clinic.address,
        "clinic_phone": clinic.phone.as_international if clinic.phone else "",
        "clinic_url": f"{portal_url.rstrip('/')}/c/{clinic.slug}/",
    }
    return answer.text.format_map(values)


# --- portal --------------------------------------------------------------------------------


def patient_threads(*, user: Any) -> QuerySet[Thread]:
    """The patient's conversations (own and family's) with unread badges, newest first."""
    return Thread.objects.visible_to(user).select_related("clinic", "doctor", "patient").order_by("-last_activity_at", "-pk")


def portal_doctors_to_write(*, clinic: Clinic) -> QuerySet[Doctor]:
    """Doctors of the clinic who answer patients in the CRM."""
    return clinic.doctors.filter(is_active=True, user__isnull=False).prefetch_related("specialties").order_by("full_name")


# --- attachments ---------------------------------------------------------------------------


def attachment_for(*, user: Any, attachment_id: int) -> Attachment:
    """A file the user may download (tenancy decides; a patient never gets a note's file)."""
    attachment: Attachment = Attachment.objects.visible_to(user).select_related("thread").get(pk=attachment_id)
    return attachment


# --- presence ------------------------------------------------------------------------------


def heartbeat_seconds() -> int:
    seconds: int = getattr(settings, "SOCKET_HEARTBEAT_SECONDS", 25)
    return seconds


def alive_since() -> datetime:
    return timezone.now() - timedelta(seconds=heartbeat_seconds() * 3)


def user_is_online(user_id: int) -> bool:
    return SocketConnection.objects.filter(user_id=user_id, seen_at__gte=alive_since()).exists()


def users_online(user_ids: list[int]) -> set[int]:
    """Which of these people have a live socket: one query for all recipients of a message."""
    return set(SocketConnection.objects.filter(user_id__in=user_ids, seen_at__gte=alive_since()).values_list("user_id", flat=True))


def viewers_key(thread_id: int) -> str:
    return f"thread-viewers:{thread_id}"


def thread_viewers(thread_id: int) -> dict[str, Any]:
    """{"viewers": [names], "replying": [names], "viewer_ids": [...]} with expired marks dropped."""
    return viewers_of(cache.get(viewers_key(thread_id)) or {}, now=timezone.now().timestamp())


def viewers_of(marks: dict[int, dict[str, Any]], *, now: float) -> dict[str, Any]:
    """Names of the live marks: who has the thread open, who is typing a reply."""
    live = {uid: m for uid, m in marks.items() if m["until"] > now}
    return {
        "viewers": sorted(m["name"] for m in live.values()),
        "replying": sorted(m["name"] for m in live.values() if m.get("replying_until", 0) > now),
        "viewer_ids": sorted(live),
    }


# --- admin inbox: filter counts, the patient card, the controls beside a thread ------------


def inbox_facets(*, user: Any, filters: InboxFilter | None = None) -> dict[str, Any]:
    filters = filters or InboxFilter()
    scope = "mine" if filters.mine else "unassigned" if filters.unassigned else "all"
    return _cached_counts(user, f"facets-{scope}", lambda: _inbox_facets(user=user, filters=filters))


def _inbox_facets(*, user: Any, filters: InboxFilter | None = None) -> dict[str, Any]:
    """Counts beside the inbox filters, in two queries whatever the number of threads.

    Mine / unassigned / all count every visible thread; the status, channel and tag
    counts are within the chosen scope (mine or unassigned), so that a click shows
    as many threads as its badge said.
    """
    filters = filters or InboxFilter()
    visible = inbox_scope(user=user)
    scope = Q()
    if filters.mine:
        scope = Q(assigned_to=user)
    elif filters.unassigned:
        scope = Q(assigned_to__isnull=True)
    counts = visible.aggregate(
        all=Count("pk"),
        mine=Count("pk", filter=Q(assigned_to=user)),
        unassigned=Count("pk", filter=Q(assigned_to__isnull=True)),
        **{f"status_{value}": Count("pk", filter=scope & Q(status=value)) for value in Thread.Status.values},
        **{f"channel_{value}": Count("pk", filter=scope & Q(channel=value)) for value in Thread.Channel.values},
    )
    tags = dict(visible.filter(scope, tags__isnull=False).values_list("tags").annotate(n=Count("pk")).values_list("tags", "n"))
    return {
        "all": counts["all"],
        "mine": counts["mine"],
        "unassigned": counts["unassigned"],
        "status": {value: counts[f"status_{value}"] for value in Thread.Status.values},
        "channel": {value: counts[f"channel_{value}"] for value in Thread.Channel.values},
        "tag": tags,
    }


def inbox_tags(*, user: Any) -> QuerySet[Tag]:
    """Tags offered as inbox filters: those of the user's clinics."""
    return Tag.objects.visible_to(user).select_related("clinic").order_by("name", "pk")


def thread_tag_choices(*, user: Any, thread: Thread) -> QuerySet[Tag]:
    """Tags that may be put on this thread: its clinic's."""
    return Tag.objects.visible_to(user).filter(clinic_id=thread.clinic_id).order_by("name", "pk")


def thread_assignees(*, user: Any, thread: Thread) -> list[Any]:
    """People the thread may be given to: the front desk of its clinic and, for a doctor's thread, that doctor."""
    if not staff_can_view(user, thread):  # the inbox's visibility rule, from the roles already loaded: no query
        return []
    desk = Q(memberships__clinic_id=thread.clinic_id, memberships__is_active=True, memberships__role__in=list(FRONT_DESK))
    if thread.doctor is not None and thread.doctor.user_id:
        desk |= Q(pk=thread.doctor.user_id)
    return list(get_user_model().objects.filter(desk).distinct().order_by("first_name", "last_name", "username"))


def contact_merge_candidates(*, user: Any, thread: Thread, query: str, limit: int = 10) -> list[Any]:
    """Other live cards of the thread's clinic that the user may merge into the thread's card."""
    query = query.strip()
    if len(query) < 2:
        return []
    return list(
        Contact.objects.editable_by(user)
        .filter(clinic_id=thread.clinic_id, merged_into__isnull=True)
        .exclude(pk=thread.contact_id)
        .filter(Q(patient__full_name__icontains=query) | Q(patient__phone__contains=query) | Q(patient__email__icontains=query))
        .select_related("patient")
        .order_by("patient__full_name", "pk")[:limit]
    )
