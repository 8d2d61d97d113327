"""The operator inbox (/admin/inbox/) through the Django test client: what each role sees and can do."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.http import QueryDict
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinics.tenancy import Role
from messaging import admin_inbox, services
from messaging.models import Message, Thread, ThreadAccess
from messaging.selectors import InboxFilter
from patients.models import Contact
from tests import factories as f

pytestmark = pytest.mark.django_db

INBOX = "/admin/inbox/"
ROW = re.compile(r'class="inbox-row[^"]*" data-thread="(\d+)"')
MORE = re.compile(r'class="inbox-more-btn" href="(?P<href>[^"]+)" hx-get="(?P<hx>[^"]+)"')


def listed(response) -> set[int]:
    """Ids of the threads in the inbox list of a page or of the list fragment."""
    assert response.status_code == 200, response.status_code
    return {int(pk) for pk in ROW.findall(response.content.decode())}


def patient_says(thread: Thread, text: str = "Hello, is the clinic open on Sunday?") -> Message:
    sender = thread.patient.account_holder.user
    with TestCase.captureOnCommitCallbacks(execute=True):  # as the patient's request would commit
        message, _created = services.send_message(thread=thread, actor=sender, text=text)
    return message


@pytest.fixture
def olga_web(web, alpha):
    web.force_login(alpha.operator)
    return web


# --- who sees what -----------------------------------------------------------------------------


def test_operator_sees_her_clinics_threads_not_another_clinics(olga_web, anna_thread, boris_thread):
    response = olga_web.get(INBOX)
    assert listed(response) == {anna_thread.pk}
    page = response.content.decode()
    assert "Anna Petrova" in page
    assert "Boris Betov" not in page


def test_another_clinics_thread_is_404_everywhere(olga_web, anna_thread, boris_thread):
    for url in (
        f"{INBOX}{boris_thread.pk}/",
        f"{INBOX}{boris_thread.pk}/card/",
        f"{INBOX}{boris_thread.pk}/messages/",
    ):
        assert olga_web.get(url).status_code == 404, url
    response = olga_web.post(f"{INBOX}{boris_thread.pk}/action/", {"action": "status", "status": "resolved"})
    assert response.status_code == 404
    boris_thread.refresh_from_db()
    assert boris_thread.status == Thread.Status.OPEN
    assert not ThreadAccess.objects.filter(thread=boris_thread).exists()


def test_doctor_sees_only_threads_addressed_to_them(web, alpha, anna):
    own = f.ThreadFactory(clinic=alpha.clinic, patient=anna, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor)
    clinic_thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna)
    colleague = f.UserFactory(username="dr-house", is_staff=True)
    f.MembershipFactory(user=colleague, clinic=alpha.clinic, role=Role.DOCTOR)
    other_doctor = f.DoctorFactory(clinic=alpha.clinic, user=colleague, full_name="Dr House")
    colleagues_thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna, kind=Thread.Kind.DOCTOR, doctor=other_doctor)

    web.force_login(alpha.doctor_user)
    assert listed(web.get(INBOX)) == {own.pk}
    assert web.get(f"{INBOX}{own.pk}/").status_code == 200
    assert web.get(f"{INBOX}{clinic_thread.pk}/").status_code == 404
    assert web.get(f"{INBOX}{colleagues_thread.pk}/").status_code == 404

    web.force_login(alpha.operator)  # the front desk sees all three
    assert listed(web.get(INBOX)) == {own.pk, clinic_thread.pk, colleagues_thread.pk}


def test_inbox_is_for_staff_only(web, anna_thread, anna):
    assert web.get(INBOX).status_code == 302  # to the admin login
    web.force_login(anna.user)
    response = web.get(INBOX)
    assert response.status_code in (302, 403)
    assert b"Anna Petrova" not in response.content


# --- filters ---------------------------------------------------------------------------------------


@pytest.fixture
def three_threads(alpha):
    mine = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Mila Mine", assigned_to=alpha.operator)
    unassigned = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Ulyana Free", channel=Thread.Channel.TELEGRAM)
    marks = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Roman Resolved", assigned_to=alpha.manager, status="resolved")
    return mine, unassigned, marks


def test_filters_mine_unassigned_status_channel_search(olga_web, three_threads):
    mine, unassigned, marks = three_threads
    assert listed(olga_web.get(INBOX)) == {mine.pk, unassigned.pk, marks.pk}
    assert listed(olga_web.get(INBOX, {"scope": "mine"})) == {mine.pk}
    assert listed(olga_web.get(INBOX, {"scope": "unassigned"})) == {unassigned.pk}
    assert listed(olga_web.get(INBOX, {"status": "resolved"})) == {marks.pk}
    assert listed(olga_web.get(INBOX, {"status": "open"})) == {mine.pk, unassigned.pk}
    assert listed(olga_web.get(INBOX, {"scope": "mine", "status": "resolved"})) == set()
    assert listed(olga_web.get(INBOX, {"channel": "telegram"})) == {unassigned.pk}
    assert listed(olga_web.get(INBOX, {"q": "Roman"})) == {marks.pk}
    # The live fragment takes the same filters.
    assert listed(olga_web.get(f"{INBOX}list/", {"scope": "mine"})) == {mine.pk}


@pytest.mark.parametrize("where", ["inbox", "thread"])
def test_filter_counts(olga_web, three_threads, where):
    mine, _unassigned, _marks = three_threads
    page = olga_web.get(INBOX if where == "inbox" else f"{INBOX}{mine.pk}/").content.decode()

    def count(attr: str, label: str) -> int:
        match = re.search(rf'{attr}[^>]*>\s*{label}\s*<span class="inbox-count">(\d+)</span>', page)
        assert match, attr
        return int(match.group(1))

    assert count('data-scope="mine"', "Mine") == 1
    assert count('data-scope="unassigned"', "Unassigned") == 1
    assert count('data-scope="all"', "All") == 3
    assert count('data-status="open"', "Open") == 2
    assert count('data-status="resolved"', "Resolved") == 1


def test_tag_filter(olga_web, alpha, three_threads):
    mine, unassigned, _marks = three_threads
    vip = f.TagFactory(clinic=alpha.clinic, name="VIP")
    unassigned.tags.add(vip)
    assert listed(olga_web.get(INBOX, {"tag": vip.pk})) == {unassigned.pk}


def test_row_shows_unread_waiting_and_hides_sensitive_preview(olga_web, alpha, anna_thread):
    patient_says(anna_thread, "My tooth hurts since yesterday")
    secret = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Sofia Secret", sensitive=True)
    patient_says(secret, "About my biopsy results")
    page = olga_web.get(INBOX).content.decode()
    assert "My tooth hurts since yesterday" in page
    assert "biopsy" not in page
    assert "Sensitive — preview hidden" in page
    assert re.search(r'class="inbox-unread"[^>]*>1<', page)
    assert "waiting 0 min" in page


# --- opening a thread --------------------------------------------------------------------------------


def test_opening_a_thread_logs_the_access_and_marks_it_read(olga_web, alpha, anna_thread):
    patient_says(anna_thread)
    anna_thread.refresh_from_db()
    assert anna_thread.staff_unread == 1

    response = olga_web.get(f"{INBOX}{anna_thread.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Hello, is the clinic open on Sunday?" in page
    assert "+7 916 000-00-01" in page  # the patient card
    assert 'class="msg-author">Anna Petrova<' in page  # the patient, not the portal login
    access = ThreadAccess.objects.get(thread=anna_thread)
    assert (access.user, access.via) == (alpha.operator, "inbox")
    anna_thread.refresh_from_db()
    assert anna_thread.staff_unread == 0
    assert anna_thread.staff_read_seq == anna_thread.last_seq


def test_owner_sees_the_access_in_the_log_operator_does_not(web, alpha, anna_thread):
    web.force_login(alpha.operator)
    web.get(f"{INBOX}{anna_thread.pk}/")
    log = reverse("admin:messaging_threadaccess_changelist")
    assert web.get(log).status_code == 403
    assert "Access log" not in web.get(INBOX).content.decode()

    web.force_login(alpha.owner)
    response = web.get(log)
    assert response.status_code == 200
    page = response.content.decode()
    assert "olga" in page
    assert "Anna Petrova" in page
    assert "Access log" in web.get(INBOX).content.decode()


def test_history_escapes_text_and_shows_notes_and_events(olga_web, alpha, anna_thread):
    patient_says(anna_thread, "<script>alert(1)</script> see https://example.ru")
    services.send_message(thread=anna_thread, actor=alpha.operator, text="Call her back @mark", kind=Message.Kind.NOTE)
    services.thread_assign(actor=alpha.operator, thread=anna_thread, assignee=alpha.manager)
    page = olga_web.get(f"{INBOX}{anna_thread.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="https://example.ru"' in page
    assert re.search(r'class="msg msg--staff msg--note"', page)
    assert re.search(r'class="msg msg--event"[^>]*><span>olga assigned the thread to mark', page)


def test_older_messages_page(olga_web, alpha, anna_thread, monkeypatch):
    monkeypatch.setattr(services.throttle, "SEND_LIMIT_PER_MINUTE", 1000)
    for n in range(55):
        services.send_message(thread=anna_thread, actor=alpha.operator, text=f"note {n}", kind=Message.Kind.NOTE)
    page = olga_web.get(f"{INBOX}{anna_thread.pk}/").content.decode()
    assert "note 54" in page and "note 4<" not in page
    first = re.search(r'class="inbox-older" data-first-seq="(\d+)"', page)
    assert first
    older = olga_web.get(f"{INBOX}{anna_thread.pk}/messages/", {"before": first.group(1)}).content.decode()
    assert "note 4<" in older and "note 0<" in older and "note 54" not in older


def test_inbox_list_query_count_does_not_grow_with_threads(olga_web, alpha):
    def make(n):
        for _ in range(n):
            thread = f.ThreadFactory(clinic=alpha.clinic, assigned_to=alpha.manager)
            thread.tags.add(f.TagFactory(clinic=alpha.clinic))
            patient_says(thread)

    def queries(url) -> int:
        olga_web.get(url)  # warm caches (sessions, content types)
        with CaptureQueriesContext(connection) as captured:
            assert olga_web.get(url).status_code == 200
        return len(captured)

    make(3)
    few = {url: queries(url) for url in (INBOX, f"{INBOX}list/")}
    make(27)
    assert len(listed(olga_web.get(INBOX))) == 30
    many = {url: queries(url) for url in (INBOX, f"{INBOX}list/")}
    assert many == few


def test_older_threads_load_more_by_keyset_with_the_filters_kept(olga_web, alpha, monkeypatch):
    """Pages follow the list's order (last activity, then id): none is skipped or repeated, ties included."""
    monkeypatch.setattr(admin_inbox, "LIST_LIMIT", 3)
    moment = timezone.now() - timedelta(hours=1)
    threads = [f.ThreadFactory(clinic=alpha.clinic, last_activity_at=moment - timedelta(minutes=i // 2)) for i in range(8)]
    f.ThreadFactory(clinic=alpha.clinic, assigned_to=alpha.manager, last_activity_at=moment)  # not unassigned
    expected = [t.pk for t in sorted(threads, key=lambda t: (t.last_activity_at, t.pk), reverse=True)]

    page = olga_web.get(INBOX, {"scope": "unassigned"}).content.decode()
    seen = [int(pk) for pk in ROW.findall(page)]
    assert len(seen) == 3
    while (more := MORE.search(page)) is not None:
        url = html.unescape(more.group("hx"))
        assert url.startswith(f"{INBOX}list/more/?") and "scope=unassigned" in url
        page = olga_web.get(url).content.decode()
        seen += [int(pk) for pk in ROW.findall(page)]
    assert seen == expected  # in order, all of them, once each

    # Without JavaScript the same link opens the page from there.
    first = olga_web.get(INBOX, {"scope": "unassigned"}).content.decode()
    plain = html.unescape(MORE.search(first).group("href"))
    assert plain.startswith(f"{INBOX}?") and "after=" in plain
    assert [int(pk) for pk in ROW.findall(olga_web.get(plain).content.decode())] == expected[3:6]


def test_a_live_refresh_keeps_the_rows_loaded_with_more(olga_web, alpha, monkeypatch):
    monkeypatch.setattr(admin_inbox, "LIST_LIMIT", 3)
    for _ in range(7):
        f.ThreadFactory(clinic=alpha.clinic)
    assert len(listed(olga_web.get(f"{INBOX}list/"))) == 3
    assert len(listed(olga_web.get(f"{INBOX}list/", {"shown": 6}))) == 6
    monkeypatch.setattr(admin_inbox, "LIST_MAX", 5)
    assert len(listed(olga_web.get(f"{INBOX}list/", {"shown": 6}))) == 5


def test_load_more_query_count_does_not_grow_with_rows(olga_web, alpha, monkeypatch):
    monkeypatch.setattr(admin_inbox, "LIST_LIMIT", 30)

    def more_queries() -> int:
        url = html.unescape(MORE.search(olga_web.get(INBOX).content.decode()).group("hx"))
        olga_web.get(url)  # warm caches (sessions, rendered rows)
        with CaptureQueriesContext(connection) as captured:
            assert olga_web.get(url).status_code == 200
        return len(captured)

    for _ in range(32):
        f.ThreadFactory(clinic=alpha.clinic, assigned_to=alpha.manager)
    few = more_queries()  # 2 rows on the second page
    for _ in range(28):
        f.ThreadFactory(clinic=alpha.clinic, assigned_to=alpha.manager)
    many = more_queries()  # 30 rows
    assert many == few


def test_a_changed_thread_is_never_shown_from_the_row_cache(olga_web, alpha, anna_thread):
    assert '<span class="inbox-assignee">Unassigned</span>' in olga_web.get(f"{INBOX}list/").content.decode()
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.thread_assign(actor=alpha.operator, thread=anna_thread, assignee=alpha.manager)
    patient_says(anna_thread, "Is the clinic open on Sunday?")
    page = olga_web.get(f"{INBOX}list/").content.decode()
    row = page[page.index(f'data-thread="{anna_thread.pk}"') :]
    row = row[: row.index("</li>")]
    assert "Is the clinic open on Sunday?" in row and ">mark<" in row and "Unassigned" not in row
    assert re.search(r'class="inbox-unread"[^>]*>1<', row)


def test_a_read_receipt_is_never_shown_from_the_message_cache(olga_web, alpha, anna, anna_thread):
    services.send_message(thread=anna_thread, actor=alpha.operator, text="Yes, we are open on Sunday.")
    url = f"{INBOX}{anna_thread.pk}/"
    assert re.search(r'class="msg-receipt" title="Sent"', olga_web.get(url).content.decode())
    anna_thread.refresh_from_db()
    services.thread_mark_read(thread=anna_thread, actor=anna.user)
    assert re.search(r'class="msg-receipt is-read" title="Read by the patient"', olga_web.get(url).content.decode())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, InboxFilter()),
        ({"scope": "all"}, InboxFilter()),
        ({"scope": "mine"}, InboxFilter(mine=True)),
        ({"scope": "unassigned"}, InboxFilter(unassigned=True)),
        ({"mine": "1"}, InboxFilter(mine=True)),
        ({"unassigned": "1"}, InboxFilter(unassigned=True)),
        ({"scope": "all", "mine": "1"}, InboxFilter()),  # the scope wins over the older spelling
        ({"scope": "nobody", "status": "lost", "channel": "fax", "tag": "x", "clinic": "-1"}, InboxFilter()),
        (
            {"status": "open", "channel": "telegram", "tag": "7", "clinic": "3", "q": "  Anna  "},
            InboxFilter(status="open", channel="telegram", tag=7, clinic=3, query="Anna"),
        ),
    ],
)
def test_one_parser_of_inbox_parameters(params, expected):
    assert InboxFilter.from_params(QueryDict(urlencode(params))) == expected


def test_api_thread_list_takes_the_scope_and_its_older_spelling(api, alpha, three_threads):
    mine, unassigned, marks = three_threads
    api.force_authenticate(alpha.operator)

    def ids(**params) -> set[int]:
        response = api.get("/api/threads/", params)
        assert response.status_code == 200
        return {t["id"] for t in response.json()["results"]}

    assert ids() == ids(scope="all") == {mine.pk, unassigned.pk, marks.pk}
    assert ids(scope="mine") == ids(mine="1") == {mine.pk}
    assert ids(scope="unassigned") == ids(unassigned="1") == {unassigned.pk}
    assert ids(scope="unassigned", channel="telegram") == {unassigned.pk}
    assert ids(scope="mine", status="resolved") == set()


def test_api_thread_filters_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/threads/"]["get"]["parameters"]}
    assert sorted(parameters["scope"]["schema"]["enum"]) == ["all", "mine", "unassigned"]
    assert parameters["mine"]["deprecated"] and parameters["unassigned"]["deprecated"]
    assert {"status", "channel", "tag", "clinic", "q"} <= set(parameters)


# --- controls --------------------------------------------------------------------------------------------


def test_assign_status_priority_tags_change_the_thread_and_write_events(olga_web, alpha, anna_thread):
    action = f"{INBOX}{anna_thread.pk}/action/"
    vip = f.TagFactory(clinic=alpha.clinic, name="VIP")
    other_clinic_tag = f.TagFactory(name="Elsewhere")

    response = olga_web.post(action, {"action": "assign", "assignee": alpha.manager.pk})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{INBOX}{anna_thread.pk}/")
    olga_web.post(action, {"action": "status", "status": "pending"})
    card = olga_web.post(action, {"action": "priority", "priority": "3"}, HTTP_HX_REQUEST="true")
    assert card.status_code == 200
    assert 'id="inbox-card-body"' in card.content.decode()  # the fragment inbox.js swaps in
    olga_web.post(action, {"action": "tags", "tags": [vip.pk]})

    anna_thread.refresh_from_db()
    assert anna_thread.assigned_to == alpha.manager
    assert anna_thread.status == Thread.Status.PENDING
    assert anna_thread.priority == Thread.Priority.URGENT
    assert list(anna_thread.tags.all()) == [vip]
    events = list(Message.objects.filter(thread=anna_thread, kind=Message.Kind.EVENT).values_list("data__event", flat=True))
    assert events == ["assigned", "status"]

    # A tag of another clinic is refused and nothing changes.
    response = olga_web.post(action, {"action": "tags", "tags": [other_clinic_tag.pk]}, HTTP_HX_REQUEST="true")
    assert "another clinic" in response.content.decode()
    assert list(anna_thread.tags.all()) == [vip]

    olga_web.post(action, {"action": "take"})
    anna_thread.refresh_from_db()
    assert anna_thread.assigned_to == alpha.operator


def test_cannot_assign_to_someone_outside_the_clinic(olga_web, alpha, beta, anna_thread):
    response = olga_web.post(f"{INBOX}{anna_thread.pk}/action/", {"action": "assign", "assignee": beta.operator.pk}, HTTP_HX_REQUEST="true")
    assert "cannot answer this thread" in response.content.decode()
    anna_thread.refresh_from_db()
    assert anna_thread.assigned_to is None


def test_merge_contacts_through_the_card_moves_threads(olga_web, alpha, anna_thread):
    # The same woman wrote once from another phone: a second patient and card in the same clinic.
    twin = f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Anna P. (second phone)", patient__phone="+79160009999")
    keep = anna_thread.contact
    merge = twin.contact

    card = olga_web.get(f"{INBOX}{anna_thread.pk}/card/", {"merge_q": "second phone"}).content.decode()
    assert f'name="merge" value="{merge.pk}"' in card

    response = olga_web.post(f"{INBOX}{anna_thread.pk}/action/", {"action": "merge", "merge": merge.pk, "merge_q": "second phone"})
    assert response.status_code == 302
    twin.refresh_from_db()
    merge.refresh_from_db()
    assert twin.contact_id == keep.pk
    assert merge.merged_into_id == keep.pk
    assert set(Thread.objects.filter(contact=keep).values_list("pk", flat=True)) == {anna_thread.pk, twin.pk}


def test_doctor_cannot_merge_contacts(web, alpha, anna):
    own = f.ThreadFactory(clinic=alpha.clinic, patient=anna, kind=Thread.Kind.DOCTOR, doctor=alpha.doctor)
    other = f.ContactFactory(clinic=alpha.clinic, patient__full_name="Anna Other")
    web.force_login(alpha.doctor_user)
    page = web.get(f"{INBOX}{own.pk}/").content.decode()
    assert "Merge with another contact" not in page
    web.post(f"{INBOX}{own.pk}/action/", {"action": "merge", "merge": other.pk, "merge_q": "Anna"})
    assert Contact.objects.get(pk=other.pk).merged_into_id is None


# --- admin screens -------------------------------------------------------------------------------------------


def test_sidebar_inbox_badge_counts_unread_threads(olga_web, alpha, anna_thread):
    patient_says(anna_thread)
    page = olga_web.get(reverse("admin:index"), follow=True).content.decode()
    assert re.search(r'href="/admin/inbox/".*?Inbox.*?>\s*1\s*</span>', page, re.S)


def test_thread_admin_lists_and_links_to_the_inbox(olga_web, anna_thread, boris_thread):
    response = olga_web.get(reverse("admin:messaging_thread_changelist"))
    page = response.content.decode()
    assert "Anna Petrova" in page and "Boris Betov" not in page
    assert f'href="/admin/inbox/{anna_thread.pk}/"' in page
    assert olga_web.get(reverse("admin:messaging_thread_add")).status_code == 403
    assert olga_web.get(reverse("admin:messaging_thread_change", args=[anna_thread.pk]))["Location"] == f"/admin/inbox/{anna_thread.pk}/"


def test_canned_answers_managers_edit_operators_view(web, alpha):
    answer = f.CannedAnswerFactory(clinic=alpha.clinic, shortcode="address")
    change = reverse("admin:messaging_cannedanswer_change", args=[answer.pk])
    web.force_login(alpha.operator)
    page = web.get(change)
    assert page.status_code == 200
    assert 'name="text"' not in page.content.decode()  # the clinic's answers are read-only for operators
    web.force_login(alpha.manager)
    assert 'name="text"' in web.get(change).content.decode()


def test_notifications_admin_is_for_owners_and_managers(web, alpha, anna_thread):
    anna_thread.assigned_to = alpha.operator
    anna_thread.save()
    patient_says(anna_thread)  # olga is offline: a notification is queued for her
    url = reverse("admin:notifications_notification_changelist")
    web.force_login(alpha.operator)
    assert web.get(url).status_code == 403
    web.force_login(alpha.owner)
    page = web.get(url).content.decode()
    assert "Anna Petrova" in page


def test_cached_counts_follow_every_change(olga_web, alpha, anna_thread):
    """The badge and filter counts are cached; a message, a read and an assignment must each show at once."""
    badge = re.compile(r'href="/admin/inbox/".*?Inbox.*?>\s*(\d+)\s*</span>', re.S)

    def unread_badge() -> int:
        found = badge.search(olga_web.get(reverse("admin:index"), follow=True).content.decode())
        return int(found.group(1)) if found else 0

    assert unread_badge() == 0
    patient_says(anna_thread)
    assert unread_badge() == 1
    olga_web.get(f"{INBOX}{anna_thread.pk}/")  # opening marks it read
    assert unread_badge() == 0
    mine = re.compile(r'data-scope="mine"[^>]*>\s*Mine\s*<span class="inbox-count">(\d+)</span>')
    assert mine.search(olga_web.get(INBOX).content.decode()).group(1) == "0"
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.thread_assign(actor=alpha.operator, thread=anna_thread, assignee=alpha.operator)
    assert mine.search(olga_web.get(INBOX).content.decode()).group(1) == "1"


def test_the_thread_page_runs_a_fixed_number_of_queries(olga_web, alpha, anna_thread):
    """Session, user, roles, zone; the thread and its tags, the access log, the history and its files; the counts
    (three, cached between changes in production), the rows, the tags; the card: contacts and their tags, contact
    history, visits (past, next), assignees. Whatever the length of the history."""
    for n in range(30):
        patient_says(anna_thread, f"message {n}")
    olga_web.get(f"{INBOX}{anna_thread.pk}/")  # warm: the counts and fragments caches
    with CaptureQueriesContext(connection) as queries:
        response = olga_web.get(f"{INBOX}{anna_thread.pk}/")
    assert response.status_code == 200
    assert "message 29" in response.content.decode()
    assert len(queries) <= 20, "\n".join(q["sql"][:120] for q in queries)


def test_the_inbox_sidebar_is_unfolds_navigation_as_rendered_by_unfold(olga_web, anna_thread):
    """The inbox caches Unfold's navigation list (admin_inbox._sidebar_apps_html): the same links and badges."""
    inbox_page = olga_web.get(f"{INBOX}{anna_thread.pk}/").content.decode()
    other_page = olga_web.get("/admin/messaging/cannedanswer/").content.decode()

    def links(page: str) -> list[str]:
        nav = page[page.index('id="nav-sidebar-apps"') : page.index("</nav>", page.index('id="nav-sidebar-apps"'))]
        return [html.unescape(href) for href in re.findall(r'<a href="([^"]+)"', nav)]

    assert links(inbox_page) == links(other_page)
    assert "/admin/inbox/" in links(inbox_page)
