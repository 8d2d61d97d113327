"""No number inside markup is localised: every staff and portal screen rendered in Russian.

Russian formats 924.0 as «924,0». In text that is right; inside a style, a data-
attribute or an inline script it is invalid CSS or a different value (the calendar
once came out empty in Russian this way). The pages below carry the numbers the
product puts into markup: grid positions, sequence numbers, ids.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from appointments.models import Visit
from messaging.services import send_message
from tests import factories as f
from tests.conftest import CommittingClient, at

pytestmark = pytest.mark.django_db

# A digit, a comma, a digit: 924,0 or 1,4. Lists in scripts are written "1, 2" (json.dumps), never "1,2".
DECIMAL_COMMA = re.compile(r"\d,\d")


class _Markup(HTMLParser):
    """Collects what a browser reads as code rather than text: style and data- attributes, inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "style" or name.startswith("data-")) and DECIMAL_COMMA.search(value):
                self.found.append(f'<{tag} {name}="{value[:120]}">')
        self._script = tag == "script" and not dict(attrs).get("src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False

    def handle_data(self, data: str) -> None:
        if self._script:
            for match in DECIMAL_COMMA.finditer(data):
                self.found.append(f"<script>…{data[max(0, match.start() - 40) : match.end() + 40]}…")


def localised_numbers(html: str) -> list[str]:
    parser = _Markup()
    parser.feed(html)
    return parser.found


@pytest.fixture
def clinic_week(alpha):
    """Alpha with a working week, a conversation, visits past and coming: every screen has its numbers to show."""
    service = f.ServiceFactory(clinic=alpha.clinic, name="Check-up", duration_minutes=30, price_rub=1500)
    alpha.doctor.services.add(service)
    for weekday in range(7):
        f.ScheduleRuleFactory(doctor=alpha.doctor, weekday=weekday, starts=time(9), ends=time(18))
    anna = f.PatientFactory(full_name="Anna Petrova", phone="+79160000001")
    thread = f.ThreadFactory(clinic=alpha.clinic, patient=anna)
    send_message(thread=thread, actor=anna.user, text="Здравствуйте, можно записаться?")
    send_message(thread=thread, actor=alpha.operator, text="Да, на четверг.")
    day = timezone.localtime(timezone.now(), alpha.clinic.tz).date() + timedelta(days=2)
    coming = f.VisitFactory(doctor=alpha.doctor, service=service, patient=anna, starts_at=at(alpha.clinic, day, 10, 20))
    past = f.VisitFactory(
        doctor=alpha.doctor, service=service, patient=anna, starts_at=timezone.now() - timedelta(days=1), status=Visit.Status.COMPLETED
    )
    f.CannedAnswerFactory(clinic=alpha.clinic)
    return {"service": service, "anna": anna, "thread": thread, "day": day, "coming": coming, "past": past}


def _russian(user) -> CommittingClient:
    client = CommittingClient(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(user)
    return client


def _admin_pages(superuser) -> list[str]:
    """Every model's list and the change page of its first row, as the platform sees them."""
    urls = []
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        try:
            urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        except NoReverseMatch:
            continue
        first = model._default_manager.order_by("pk").first()
        if first is not None and model_admin.has_view_permission(_request_of(superuser)):
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    return urls


def _request_of(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _assert_plain_numbers(client, urls: list[str]) -> None:
    problems = []
    for url in urls:
        response = client.get(url, follow=True)  # a thread's admin page opens it in the inbox
        assert response.status_code == 200, f"{url}: {response.status_code}"
        assert response["Content-Language"] == "ru", url
        problems += [f"{url}: {found}" for found in localised_numbers(response.content.decode())]
    assert not problems, "numbers localised inside markup:\n" + "\n".join(problems)


def test_staff_screens_in_russian_keep_numbers_plain(alpha, clinic_week, superuser):
    thread, day = clinic_week["thread"], clinic_week["day"]
    week = f"?doctor={alpha.doctor.pk}&date={day.isoformat()}"
    screens = [
        reverse("inbox:index"),
        reverse("inbox:thread", args=[thread.pk]),
        f"{reverse('calendar:day')}?date={day.isoformat()}",
        f"{reverse('calendar:week')}{week}",
        reverse("calendar:visit", args=[clinic_week["coming"].pk]),
        reverse("calendar:visit", args=[clinic_week["past"].pk]),
        f"{reverse('calendar:new')}?date={day.isoformat()}&doctor={alpha.doctor.pk}&service={clinic_week['service'].pk}",
        reverse("calendar:attendance"),
        f"{reverse('calendar:offer', args=[thread.pk])}?service={clinic_week['service'].pk}",
    ]
    _assert_plain_numbers(_russian(alpha.owner), [*screens, "/admin/patients/contact/"])
    _assert_plain_numbers(_russian(superuser), ["/admin/", *_admin_pages(superuser)])


def test_portal_screens_in_russian_keep_numbers_plain(alpha, clinic_week):
    anna, thread, service = clinic_week["anna"], clinic_week["thread"], clinic_week["service"]
    screens = [
        "/",
        f"/c/{alpha.clinic.slug}/",
        f"/c/{alpha.clinic.slug}/book/",
        f"/c/{alpha.clinic.slug}/book/{service.pk}/",
        "/portal/",
        f"/portal/threads/{thread.pk}/",
        "/portal/visits/",
        f"/portal/visits/{clinic_week['coming'].pk}/",
        "/portal/notifications/",
        "/portal/profile/",
        "/portal/family/",
    ]
    _assert_plain_numbers(_russian(anna.user), screens)


def test_the_check_sees_a_decimal_comma_in_a_style_a_data_attribute_and_a_script():
    page = '<p>924,0 ₽</p><div style="height: 924,0px"></div><i data-top="1,4"></i><script>var top = 12,5;</script>'
    assert len(localised_numbers(page)) == 3
    assert localised_numbers('<p style="height: 924.0px" data-ids="1, 2">1,5 ч</p><script>f([1, 2])</script>') == []
