"""The operator inbox: an admin page at /admin/inbox/ (and /admin/inbox/<thread>/).

Left: filters with counts and the thread list; middle: the open thread and the
composer; right: the patient card with the thread's controls (on a phone one pane at a
time, switched by inbox.js; the card is #card in the address). The page is
rendered on the server; clinic_crm/static/inbox/inbox.js keeps it live over the
shared socket (clinic_crm/static/realtime/socket.js): a `message.new` brings the message
and its list row rendered (messaging.fragments); other changes re-fetch the fragments below
(htmx requests: `request.htmx`).

Views are thin: reads through messaging.selectors, writes through
messaging.services; tenancy comes from `visible_to` inside the selectors.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import get_template
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from clinics.tenancy import CLINIC_ADMINS, FRONT_DESK, clinic_roles, is_staff_member
from core.client_input import whole_number
from core.errors import refusal_text
from messaging import fragments, selectors, services
from messaging.fragments import (
    HtmxHttpRequest,
    waiting_label,  # noqa: F401 - messaging.admin imports it from here
)
from messaging.models import Message, Thread
from messaging.payloads import STAFF, message_item
from patients import services as patient_services
from patients.selectors import patient_card

LIST_LIMIT = 50  # rows a page renders; "load more" (keyset) and filters reach the rest
LIST_MAX = 500  # rows a live refresh re-renders at most, after "load more" was used


# --- request → filters -----------------------------------------------------------------------


def _filters(request: HttpRequest) -> selectors.InboxFilter:
    return selectors.InboxFilter.from_params(request.GET)


def _query(request: HttpRequest, **changes: Any) -> str:
    """The current filter parameters with some changed or added (None drops one), as ?a=b."""
    filters = _filters(request)
    keep = {
        "scope": "" if filters.scope == "all" else filters.scope,  # also from the older mine=1 / unassigned=1
        **{k: request.GET.get(k, "") for k in ("status", "channel", "tag", "q")},
    }
    keep.update(changes)
    pairs = {k: v for k, v in keep.items() if v not in (None, "")}
    return f"?{urlencode(pairs)}" if pairs else ""


def _staff_only(request: HttpRequest) -> None:
    if not is_staff_member(request.user):
        raise PermissionDenied(_("The inbox is for the clinic's staff."))


def _take_counters(thread: Thread, fresh: Thread) -> None:
    """The row's columns as the service just wrote them, keeping the relations already loaded."""
    for field in Thread._meta.concrete_fields:
        if not field.is_relation:
            setattr(thread, field.attname, getattr(fresh, field.attname))


@functools.cache
def _shell_site() -> admin.AdminSite:
    """The admin site without Django's app list. The inbox's sidebar is Unfold's navigation
    (settings.UNFOLD["SIDEBAR"]), which never shows that list, and building it (permission checks
    and URLs of every registered model) was a noticeable share of each inbox page (bench/inbox.py)."""
    site = admin.site
    site.name  # noqa: B018 - when admin.site is Django's LazyObject, this sets it up before the copy
    site = copy.copy(getattr(site, "_wrapped", site))
    site.get_app_list = lambda request, app_label=None: []  # type: ignore[method-assign]
    return site


def _page_shell(request: HttpRequest) -> dict[str, Any]:
    """The admin page around the inbox: Unfold's header, sidebar, language and theme switches."""
    shell = _shell_site().each_context(request)
    return {**shell, "sidebar_apps_html": _sidebar_apps_html(shell)}


def _sidebar_apps_html(shell: dict[str, Any]) -> str:
    """Unfold's navigation list (its groups, links and badges), from the cache while all it shows is unchanged.

    Rendering it was a fifth of the inbox page's rendering; it changes with the language, the
    user's permissions, the active item and the badge's number, which are the key. No custom
    navigation template and no nested items: else Unfold renders it as always ("")."""
    navigation = shell.get("sidebar_navigation") or []
    if "navigation" in (shell.get("templates") or {}) or any("items" in i for g in navigation for i in g.get("items", [])):
        return ""

    def shown(item: dict[str, Any]) -> tuple[str, ...]:
        badge = item.get("badge_callback") or item.get("badge") or ""
        link = item.get("link_callback") or item.get("link") or ""
        keys = ("icon", "badge_variant", "badge_style", "separator", "collapsible", "active", "has_permission")
        return (str(item.get("title", "")), str(link), str(badge), *(str(item.get(k, "")) for k in keys))

    facts = [(shown(group), [shown(item) for item in group.get("items", [])]) for group in navigation]
    where = (get_language(), bool(shell.get("sidebar_show_all_applications")), facts)
    key = "inbox-sidebar:" + hashlib.blake2b(repr(where).encode(), digest_size=16).hexdigest()
    html = cache.get(key)
    if html is None:
        context = {
            "sidebar_navigation": navigation,
            "sidebar_show_all_applications": shell.get("sidebar_show_all_applications"),
            "app_list": [],
        }
        html = get_template("unfold/helpers/app_list.html").render(context)
        cache.set(key, html, timeout=FRAGMENT_CACHE_SECONDS)
    return mark_safe(html)  # rendered by the autoescaping template above


# --- context builders --------------------------------------------------------------------------


def _row_items(request: HttpRequest, rows: list[selectors.InboxRow], current: int | None, several_clinics: bool) -> list[dict[str, Any]]:
    """What each row shows, as strings: the template only places them."""
    now = timezone.now()
    index, query = reverse("inbox:index"), _query(request)
    return [
        fragments.row_context(
            row, url=f"{index}{row.pk}/{query}", current=row.pk == current, clinic=row.clinic if several_clinics else "", now=now
        )
        for row in rows
    ]


FRAGMENT_CACHE_SECONDS = 3600


def _fragments_html(template_name: str, items: list[dict[str, Any]]) -> str:
    """Each item rendered through the template, from the cache when its inputs are unchanged
    (rendering the 50 rows or messages of a page was a third of it). The key is a digest of
    everything the fragment shows, the language and the time zone: a thread change alters some of a row's values
    (preview, counters, status, assignee, last activity), a receipt a message's, so nothing cached
    is ever stale."""
    where = (template_name, get_language(), timezone.get_current_timezone_name())  # times render in the viewer's zone
    digest = [hashlib.blake2b(repr((where, sorted(item.items()))).encode(), digest_size=16).hexdigest() for item in items]
    keys = [f"inbox-html:{d}" for d in digest]
    found = cache.get_many(keys)
    template, fresh, parts = get_template(template_name), {}, []
    for key, item in zip(keys, items, strict=True):
        html = found.get(key)
        if html is None:
            html = fresh[key] = template.render(item)
        parts.append(html)
    if fresh:
        cache.set_many(fresh, timeout=FRAGMENT_CACHE_SECONDS)
    return mark_safe("".join(parts))  # rendered by the autoescaping template above


def _rows_context(request: HttpRequest, current: int | None, filters: selectors.InboxFilter, several_clinics: bool) -> dict[str, Any]:
    """A page of rows: the first (or, for a live refresh, as many as the page shows) or the one after ?after=."""
    shown = whole_number(request.GET.get("shown", ""))
    limit = LIST_LIMIT if shown is None else min(max(LIST_LIMIT, shown), LIST_MAX)
    after = request.GET.get("after", "")
    rows, has_more = selectors.inbox_rows(user=request.user, filters=filters, limit=limit, after=after)
    more_url = more_page_url = ""
    if has_more:  # htmx appends the next rows; without JavaScript the link opens the page from there
        more_url = reverse("inbox:more") + _query(request, after=rows[-1].cursor, current=current)
        more_page_url = (reverse("inbox:thread", args=[current]) if current else reverse("inbox:index")) + _query(
            request, after=rows[-1].cursor
        )
    return {
        "rows_html": _fragments_html("admin/messaging/_inbox_row.html", _row_items(request, rows, current, several_clinics)),
        "first_page": not after,
        "more_url": more_url,
        "more_page_url": more_page_url,
    }


def _several_clinics(request: HttpRequest) -> bool:
    return len(clinic_roles(request.user)) > 1 or request.user.is_superuser


def _list_context(request: HttpRequest, current: int | None = None) -> dict[str, Any]:
    filters = _filters(request)
    return {**_rows_context(request, current, filters, _several_clinics(request)), **_filters_context(request, filters)}


def _inbox_tags(request: HttpRequest) -> list[Any]:
    """The tags of the user's clinics, once per request: the filters list them, the card offers its clinic's."""
    tags: list[Any] | None = getattr(request, "_inbox_tags", None)
    if tags is None:
        tags = list(selectors.inbox_tags(user=request.user))
        setattr(request, "_inbox_tags", tags)  # noqa: B010 - a per-request memo on the request
    return tags


def _filters_context(request: HttpRequest, filters: selectors.InboxFilter) -> dict[str, Any]:
    """The filters above the list with their counts, and the sidebar badge's number."""
    facets = selectors.inbox_facets(user=request.user, filters=filters)
    several_clinics = _several_clinics(request)
    scope = "" if filters.scope == "all" else filters.scope
    tags = _inbox_tags(request)
    return {
        "facets": facets,
        "filters": filters,
        "several_clinics": several_clinics,
        "scopes": [
            {"key": "mine", "label": _("Mine"), "count": facets["mine"], "url": _query(request, scope="mine"), "on": scope == "mine"},
            {
                "key": "unassigned",
                "label": _("Unassigned"),
                "count": facets["unassigned"],
                "url": _query(request, scope="unassigned"),
                "on": scope == "unassigned",
            },
            {"key": "all", "label": _("All"), "count": facets["all"], "url": _query(request, scope=None), "on": scope == ""},
        ],
        "statuses": [
            {"value": v, "label": label, "count": facets["status"][v], "on": filters.status == v} for v, label in Thread.Status.choices
        ],
        "channels": [
            {"value": v, "label": label, "count": facets["channel"][v], "on": filters.channel == v}
            for v, label in Thread.Channel.choices
            if facets["channel"][v] or filters.channel == v
        ],
        "tags": [
            {
                "value": t.pk,
                "label": f"{t.name} · {t.clinic.name}" if several_clinics else t.name,
                "count": facets["tag"].get(t.pk, 0),
                "on": filters.tag == t.pk,
            }
            for t in tags
        ],
        "scope": scope,
        "unread_threads": _counts(request)["unread_threads"],  # the sidebar badge follows the list
        "query_string": _query(request),
        "list_url": reverse("inbox:list") + _query(request),
    }


def _card_context(request: HttpRequest, thread: Thread) -> dict[str, Any]:
    user = request.user
    role = clinic_roles(user).get(thread.clinic_id)
    front_desk = user.is_superuser or role in FRONT_DESK
    merge_query = request.GET.get("merge_q", "")
    return {
        "thread": thread,
        "card": patient_card(user=user, patient=thread.patient, clinic_id=thread.clinic_id, contact_id=thread.contact_id),
        "assignees": selectors.thread_assignees(user=user, thread=thread),
        "tag_choices": [t for t in _inbox_tags(request) if t.clinic_id == thread.clinic_id],  # selectors.thread_tag_choices
        "thread_tags": {t.pk for t in thread.tags.all()},
        "status_choices": Thread.Status.choices,
        "priority_choices": Thread.Priority.choices,
        "can_merge": front_desk and thread.contact_id is not None,
        "can_book": front_desk,
        "flash": True,  # a card fetched alone shows the messages of its action; the page shows them once, above
        "is_clinic_admin": user.is_superuser or role in CLINIC_ADMINS,
        "merge_query": merge_query,
        "merge_candidates": selectors.contact_merge_candidates(user=user, thread=thread, query=merge_query) if merge_query else [],
        "action_url": reverse("inbox:action", args=[thread.pk]) + _query(request),
        "card_url": reverse("inbox:card", args=[thread.pk]),
        "access_log_url": reverse("admin:messaging_threadaccess_changelist") + "?" + urlencode({"q": thread.patient.full_name}),
    }


def _message_items(messages_: list[Message], thread: Thread) -> list[dict[str, Any]]:
    return [fragments.staff_message_context(m, message_item(m, audience=STAFF, thread=thread), thread) for m in messages_]


def _history_context(request: HttpRequest, thread: Thread, before: int | None = None) -> dict[str, Any]:
    page = selectors.thread_messages(user=request.user, thread=thread, before_seq=before, limit=selectors.PAGE + 1)
    has_more = len(page) > selectors.PAGE
    page = page[-selectors.PAGE :]
    return {
        "messages_html": _fragments_html("admin/messaging/_inbox_message.html", _message_items(page, thread)),
        "has_more": has_more,
        "first_seq": page[0].seq if page else None,
        "older_url": reverse("inbox:messages", args=[thread.pk]),
        "thread": thread,
    }


def _inbox_words() -> dict[str, str]:
    """The words inbox.js says itself (states, presence, errors), in the page's language."""
    return {
        "waitingMin": _("waiting %(minutes)s min"),
        "waitingHours": _("waiting %(hours)s h %(minutes)s min"),
        "waitingDays": _("waiting %(days)s d"),
        "typing": _("The patient is typing…"),
        "alsoViewing": _("%(names)s is also viewing this conversation"),
        "replying": _("%(names)s is replying… Agree who answers before you send."),
        "privateNote": _("Private note"),
        "sending": _("Sending…"),
        "failed": _("Not sent"),
        "retry": _("Retry"),
        "sent": _("Sent"),
        "delivered": _("Delivered"),
        "read": _("Read by the patient"),
        "attachment": _("Attachment"),
        "online": _("Live"),
        "connecting": _("Connecting…"),
        "offline": _("Offline — reconnecting…"),
        "signedOut": _("Signed out — reload the page"),
        "uploadFailed": _("The file was not uploaded."),
        "noCanned": _("No canned answers match."),
        "shortcodeNotSent": _(
            "No canned answer has the shortcode %(shortcode)s: nothing was sent. Choose one from the list or write a reply."
        ),
        "remove": _("Remove"),
        "loadOlder": _("Load earlier messages"),
    }


def _config(request: HttpRequest, thread: Thread | None, history: dict[str, Any] | None) -> dict[str, Any]:
    """The page's settings for inbox.js (the `inbox-config` JSON script)."""
    user, filters = request.user, _filters(request)
    config: dict[str, Any] = {
        "me": {"id": user.pk, "name": getattr(user, "display_name", "")},
        "timeZone": timezone.get_current_timezone_name(),
        "listUrl": reverse("inbox:list"),
        "filtersUrl": reverse("inbox:filters"),
        # What inbox.js needs to place the row a `message.new` carries: does it belong to this list, and its link.
        "list": {
            "filters": {
                "scope": filters.scope,
                "status": filters.status,
                "channel": filters.channel,
                "tag": filters.tag,
                "clinic": filters.clinic,
                "query": filters.query,
            },
            "query": _query(request),
            "severalClinics": _several_clinics(request),
        },
        "thread": None,
        "i18n": _inbox_words(),
    }
    if thread is not None:
        config["thread"] = {
            "id": thread.pk,
            "patientAuthor": str(thread.patient.account_holder),
            "patientId": thread.patient_id,
            "lastSeq": thread.last_seq,
            "patientReadSeq": thread.patient_read_seq,
            "patientDeliveredSeq": thread.patient_delivered_seq,
            "firstSeq": history["first_seq"] if history else None,
            "hasMore": history["has_more"] if history else False,
            "cardUrl": reverse("inbox:card", args=[thread.pk]),
            "messagesUrl": reverse("inbox:messages", args=[thread.pk]),
            "cannedUrl": reverse("api:thread-canned", args=[thread.pk]),
            "uploadUrl": reverse("api:thread-attachments", args=[thread.pk]),
            "viewers": selectors.thread_viewers(thread.pk),
        }
    return config


# --- views ------------------------------------------------------------------------------------


@require_GET
def inbox(request: HttpRequest, thread_id: int | None = None) -> HttpResponse:
    _staff_only(request)
    thread = history = None
    if thread_id is not None:
        thread = selectors.thread_for(user=request.user, thread_id=thread_id)
        services.thread_access_record(thread=thread, actor=request.user, via="inbox")
        if thread.staff_read_seq < thread.last_seq:  # else there is nothing to mark (a later message comes over the socket)
            _take_counters(thread, services.thread_mark_read(thread=thread, actor=request.user))
        history = _history_context(request, thread)
    context = {
        **_page_shell(request),
        "title": _("Inbox"),
        "is_fullwidth": "1",
        "thread": thread,
        "history": history,
        "config": _config(request, thread, history),
        **_list_context(request, current=thread.pk if thread else None),
    }
    if thread is not None:
        context.update(_card_context(request, thread))
    return render(request, "admin/messaging/inbox.html", context)


@require_GET
def inbox_list(request: HttpRequest) -> HttpResponse:
    """The left pane's counts and rows, re-fetched by inbox.js when events arrive."""
    _staff_only(request)
    current = request.GET.get("current", "")
    return render(request, "admin/messaging/_inbox_list.html", _list_context(request, current=whole_number(current)))


@require_GET
def inbox_more(request: HttpRequest) -> HttpResponse:
    """The next page of rows after ?after=<cursor>, with the filters of the list ("load more", htmx)."""
    _staff_only(request)
    current = request.GET.get("current", "")
    context = _rows_context(request, whole_number(current), _filters(request), _several_clinics(request))
    return render(request, "admin/messaging/_inbox_rows.html", context)


@require_GET
def inbox_filters(request: HttpRequest) -> HttpResponse:
    """The filters and their counts alone: inbox.js asks after a `message.new`, whose own row it placed itself."""
    _staff_only(request)
    return render(request, "admin/messaging/_inbox_filters.html", _filters_context(request, _filters(request)))


@require_GET
def inbox_card(request: HttpRequest, thread_id: int) -> HttpResponse:
    _staff_only(request)
    return render(
        request, "admin/messaging/_inbox_card.html", _card_context(request, selectors.thread_for(user=request.user, thread_id=thread_id))
    )


@require_GET
def inbox_messages(request: HttpRequest, thread_id: int) -> HttpResponse:
    """Older messages for scrolling up: ?before=<seq>."""
    _staff_only(request)
    thread = selectors.thread_for(user=request.user, thread_id=thread_id)
    before = request.GET.get("before", "")
    context = _history_context(request, thread, before=whole_number(before))
    return render(request, "admin/messaging/_inbox_history.html", context)


@require_POST
def inbox_action(request: HtmxHttpRequest, thread_id: int) -> HttpResponse:
    """The card's forms: assign, status, priority, tags, merge contacts."""
    _staff_only(request)
    thread = selectors.thread_for(user=request.user, thread_id=thread_id)
    try:
        _apply_card_action(request, thread, request.POST.get("action", ""))
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, refusal_text(exc))
    if request.htmx:
        return render(
            request,
            "admin/messaging/_inbox_card.html",
            _card_context(request, selectors.thread_for(user=request.user, thread_id=thread_id)),
        )
    return HttpResponseRedirect(reverse("inbox:thread", args=[thread.pk]) + _query(request))


def _apply_card_action(request: HttpRequest, thread: Thread, action: str) -> None:
    """One of the card's forms, by its `action` field, through the service that owns the change."""
    user, data = request.user, request.POST
    if action == "assign":
        assignee = None
        if data.get("assignee"):
            wanted = data["assignee"]
            assignee = next((u for u in selectors.thread_assignees(user=user, thread=thread) if str(u.pk) == wanted), None)
            if assignee is None:
                raise ValidationError({"assignee": _("This person cannot answer this thread.")})
        services.thread_assign(actor=user, thread=thread, assignee=assignee)
    elif action == "take":
        services.thread_assign(actor=user, thread=thread, assignee=user)
    elif action == "status":
        services.thread_set_status(actor=user, thread=thread, status=data.get("status", ""))
    elif action == "priority":
        priority = data.get("priority", "")
        if whole_number(priority) is None:
            raise ValidationError({"priority": _("Unknown priority.")})
        services.thread_update(actor=user, thread=thread, priority=whole_number(priority))
    elif action == "tags":
        wanted_tags = set(data.getlist("tags"))
        choices = list(selectors.thread_tag_choices(user=user, thread=thread))
        tags = [t for t in choices if str(t.pk) in wanted_tags]
        if len(tags) != len(wanted_tags):
            raise ValidationError({"tags": _("A tag of another clinic cannot be used here.")})
        services.thread_update(actor=user, thread=thread, tags=tags)
    elif action == "merge":
        candidates = {
            str(c.pk): c for c in selectors.contact_merge_candidates(user=user, thread=thread, query=data.get("merge_q", ""), limit=50)
        }
        merge = candidates.get(data.get("merge", ""))
        if merge is None or thread.contact_id is None:
            raise ValidationError({"merge": _("Choose a contact of this clinic to merge.")})
        patient_services.contacts_merge(actor=user, keep=thread.contact, merge=merge)
        messages.success(request, _("The contacts are merged: their conversations are filed under this card."))
    else:
        raise ValidationError(_("Unknown action."))


@require_GET
def inbox_badge_count(request: HttpRequest) -> JsonResponse:
    """The sidebar badge's number for pages other than the inbox (clinic_crm/static/inbox/badge.js)."""
    _staff_only(request)
    return JsonResponse({"unread_threads": _counts(request)["unread_threads"]})


def _counts(request: HttpRequest) -> dict[str, int]:
    """The inbox counts, once per request (the sidebar asks twice: whether to show the badge, then its text)."""
    counts: dict[str, int] | None = getattr(request, "_inbox_counts", None)
    if counts is None:
        counts = selectors.inbox_counts(user=request.user)
        setattr(request, "_inbox_counts", counts)  # noqa: B010 - a per-request memo on the request
    return counts


def inbox_badge(request: HttpRequest) -> str:
    """Unfold sidebar badge: threads with unread patient messages (blank when none)."""
    counts = _counts(request)
    return str(counts["unread_threads"]) if counts["unread_threads"] else ""


app_name = "inbox"
urlpatterns = [
    path("", admin.site.admin_view(inbox), name="index"),
    path("list/", admin.site.admin_view(inbox_list), name="list"),
    path("list/more/", admin.site.admin_view(inbox_more), name="more"),
    path("list/filters/", admin.site.admin_view(inbox_filters), name="filters"),
    path("badge/", admin.site.admin_view(inbox_badge_count), name="badge"),
    path("<int:thread_id>/", admin.site.admin_view(inbox), name="thread"),
    path("<int:thread_id>/card/", admin.site.admin_view(inbox_card), name="card"),
    path("<int:thread_id>/messages/", admin.site.admin_view(inbox_messages), name="messages"),
    path("<int:thread_id>/action/", admin.site.admin_view(inbox_action), name="action"),
]
