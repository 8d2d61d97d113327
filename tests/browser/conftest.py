"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

One browser per session, a fresh context (cookies, viewport, language) per test.
Screenshots go to artifacts/screenshots/<name>.png for a person to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright._impl._api_structures import SetCookieParam
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

from tests import factories as f
from tests.browser.asgi_server import AsgiServer

# Playwright's sync API keeps an event loop running in the test thread; Django
# would otherwise refuse ORM calls from the test body (factories, final checks).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

MOBILE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def live_asgi(django_db_setup, django_db_blocker) -> Iterator[AsgiServer]:
    """Daphne in this process (tests/browser/asgi_server.py), for pages that keep a socket open.

    `live_asgi.url` is its address; `live_asgi.call(fn, ...)` runs fn where the server runs
    Django code, so what fn announces on commit reaches the sockets. Its request threads keep
    their database sessions; they are ended before pytest-django drops the test database,
    which PostgreSQL refuses while any is open.
    """
    from django.db import connection

    from tests.browser.asgi_server import asgi_server

    with django_db_blocker.unblock():
        server = asgi_server()
    yield server
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connection.close()


@pytest.fixture
def phone(open_live) -> Page:
    """A patient's phone (360 px, English) talking to the in-process Daphne (pages with a socket)."""
    return open_live()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: run `make chromium`")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def page_opener(chromium: Browser, base_url: str) -> Iterator[Callable[..., Page]]:
    """Yield open(locale=…, viewport=…, user=…, language=…, javascript=…): pages in fresh contexts against base_url,
    closed after the test (so no socket outlives it).

    `user`: signed in with a session cookie, as after a login (the forms themselves are tested in
    test_admin and test_portal_signup); `language`: Django's language cookie, whatever the browser's locale.
    """
    contexts = []

    def _open(
        *, locale: str = "en-US", viewport: ViewportSize | None = None, user=None, language: str | None = None, javascript: bool = True
    ) -> Page:
        context = chromium.new_context(locale=locale, viewport=viewport or MOBILE, base_url=base_url, java_script_enabled=javascript)
        contexts.append(context)
        cookies: list[SetCookieParam] = []
        if user is not None:
            client = Client()
            client.force_login(user)
            cookies.append(
                {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": base_url}
            )
        if language is not None:
            cookies.append({"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base_url})
        if cookies:
            context.add_cookies(cookies)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def open_page(chromium: Browser, live_server) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser context: open_page(locale="ru-RU", viewport=DESKTOP)."""
    yield from page_opener(chromium, live_server.url)


@pytest.fixture
def open_live(chromium: Browser, live_asgi: AsgiServer, transactional_db) -> Iterator[Callable[..., Page]]:
    """Like open_page, against the ASGI server (pages with a socket): open_live(viewport=DESKTOP)."""
    yield from page_opener(chromium, live_asgi.url)


@pytest.fixture
def page(open_page) -> Page:
    """The patient's phone: 360 px wide, English."""
    return open_page()


@pytest.fixture
def admin_page(open_page) -> Page:
    """A staff member's desktop: 1280x800, English."""
    return open_page(viewport=DESKTOP)


def fits_the_screen(page: Page) -> None:
    """Nothing sticks out sideways: the page is no wider than the window it is shown in."""
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= page.evaluate("window.innerWidth"), f"the page is {width} px wide"


def staff_login(page: Page, username: str) -> None:
    """The admin's login form in whatever language the page speaks (by its fields' names, not their labels)."""
    page.goto("/admin/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(f.PASSWORD)
    page.locator("#login-form [type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/admin/login/"))  # staff land on their inbox or attendance


def menu_item(page: Page, title: str) -> Locator:
    """A sidebar link; its accessible name starts with the icon's ligature ("badge Staff")."""
    return page.get_by_role("navigation").get_by_role("link", name=re.compile(rf"(^|\s){re.escape(title)}$"))


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save what the person sees; the admin scrolls inside its own panes, so take its viewport only."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --- Portal sign-in by one-time code, step by step -------------------------------------------


def request_code(page: Page, phone: str) -> None:
    """On the sign-in page: type the phone and ask for a code."""
    expect(page.get_by_role("heading", name="Sign in or sign up", exact=True)).to_be_visible()
    page.get_by_label("Phone or e-mail").fill(phone)
    page.get_by_role("button", name="Get a code").click()
    expect(page.get_by_role("heading", name="Enter the code", exact=True)).to_be_visible()


def enter_code(page: Page, sms, e164: str) -> None:
    """On the code page: type the code that came by SMS and sign in."""
    page.get_by_label("Code").fill(sms.last_code(e164))
    page.get_by_role("button", name="Sign in", exact=True).click()


def fill_profile_name(page: Page, full_name: str) -> None:
    """The profile page a new patient lands on after the first sign-in."""
    expect(page.get_by_role("heading", name="Profile", exact=True)).to_be_visible()
    page.get_by_label("Full name").fill(full_name)
    page.get_by_role("button", name="Save").click()


def sign_in(page: Page, sms, *, phone: str, e164: str, full_name: str = "Anna Petrova") -> None:
    """The whole code flow from the sign-in page to the portal home, as a patient does it."""
    page.goto("/login/")
    request_code(page, phone)
    enter_code(page, sms, e164)
    profile = page.get_by_role("heading", name="Profile", exact=True)
    home = page.get_by_role("heading", name="My clinics", exact=True)
    expect(profile.or_(home)).to_be_visible()  # a new patient is asked for a name first
    if profile.is_visible():
        fill_profile_name(page, full_name)
    expect(home).to_be_visible()
