"""The Russian catalogue is complete, compiled, in step with the source and actually served.

When a test here fails after you add or change a user-facing string:

    .venv/bin/python manage.py makemessages -l ru --no-obsolete --ignore=.venv --ignore=staticfiles \
        --ignore=tests --ignore=artifacts --ignore=bench
    # translate every new or "#, fuzzy" entry in locale/ru/LC_MESSAGES/django.po, drop the fuzzy flag
    .venv/bin/python manage.py compilemessages -l ru --ignore=.venv
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import unfold
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
PO_PATH = LOCALE_DIR / "ru" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")

# The same exclusions as the makemessages command in the module docstring.
IGNORED_DIRS = {".venv", "staticfiles", "tests", "artifacts", "bench", "node_modules", "media", ".git", "__pycache__", "locale"}
SOURCE_SUFFIXES = (".py", ".html", ".txt")
RU_PLURAL_FORMS = "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);"

# %(name)s, %s, %d, %.1f … (but not a literal %%), and str.format fields such as {patient_name}.
PRINTF = re.compile(r"%(?:\([^)]+\))?[#0 +-]*\d*(?:\.\d+)?[sdifrxXeEgGc]")
BRACE = re.compile(r"\{[A-Za-z_][\w.]*\}|\{\d*\}")


# --- A small .po reader (stdlib only) -------------------------------------------------


@dataclass
class Entry:
    line: int
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def key(self) -> str:
        return f"{self.msgctxt}\x04{self.msgid}" if self.msgctxt is not None else self.msgid

    def __str__(self) -> str:
        return f"line {self.line}: {self.msgid!r}"


def parse_po(path: Path) -> list[Entry]:
    """Entries in file order; the header (msgid "") is the first one."""
    entries: list[Entry] = []
    current: Entry | None = None
    target: tuple[str, int | None] | None = None

    def start(lineno: int) -> Entry:
        nonlocal current
        if current is None or current.msgid or current.msgstr:
            current = Entry(line=lineno)
            entries.append(current)
        return current

    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            current, target = None, None
            continue
        if line.startswith("#~"):
            start(lineno).obsolete = True
            continue
        if line.startswith("#,"):
            start(lineno).flags.update(flag.strip() for flag in line[2:].split(",") if flag.strip())
            continue
        if line.startswith("#"):
            start(lineno)
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.startswith('"'):
            assert current is not None and target is not None, f"{path}:{lineno}: continuation outside an entry"
            _append(current, target, ast.literal_eval(line))
            continue
        entry = start(lineno) if keyword in ("msgctxt", "msgid") else current
        assert entry is not None, f"{path}:{lineno}: {keyword} outside an entry"
        match = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
        if keyword in ("msgctxt", "msgid", "msgid_plural"):
            target = (keyword, None)
        elif keyword == "msgstr":
            target = ("msgstr", 0)
        elif match:
            target = ("msgstr", int(match.group(1)))
        else:
            raise AssertionError(f"{path}:{lineno}: cannot read {raw!r}")
        _append(entry, target, ast.literal_eval(rest))
    return entries


def _append(entry: Entry, target: tuple[str, int | None], text: str) -> None:
    name, index = target
    if name == "msgstr":
        entry.msgstr[index] = entry.msgstr.get(index, "") + text
    else:
        setattr(entry, name, (getattr(entry, name) or "") + text)


def live_entries(path: Path) -> list[Entry]:
    return [e for e in parse_po(path)[1:] if not e.obsolete]


def placeholders(text: str) -> Counter:
    return Counter(PRINTF.findall(text.replace("%%", ""))) + Counter(BRACE.findall(text))


# --- a) every entry translated, nothing fuzzy, placeholders kept ----------------------------------


def test_header_is_russian_with_three_plural_forms():
    header = parse_po(PO_PATH)[0]
    assert header.msgid == "" and not header.fuzzy, "the .po header is marked fuzzy"
    fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line)
    assert fields.get("Language") == "ru"
    assert fields.get("Content-Type") == "text/plain; charset=UTF-8"
    assert fields.get("Plural-Forms", "").replace(" ", "") == RU_PLURAL_FORMS.replace(" ", "")


def test_every_entry_is_translated_and_not_fuzzy():
    entries = live_entries(PO_PATH)
    assert len(entries) > 100, "the catalogue looks truncated"
    untranslated = [str(e) for e in entries if not e.msgstr or any(not text.strip() for text in e.msgstr.values())]
    fuzzy = [str(e) for e in entries if e.fuzzy]
    nplurals = 3
    wrong_plurals = [str(e) for e in entries if e.msgid_plural is not None and sorted(e.msgstr) != list(range(nplurals))]
    problems = (
        [f"untranslated {item}" for item in untranslated]
        + [f"fuzzy {item}" for item in fuzzy]
        + [f"needs exactly {nplurals} plural forms: {item}" for item in wrong_plurals]
    )
    assert not problems, f"{PO_PATH}:\n" + "\n".join(problems)


def test_placeholders_match_between_msgid_and_msgstr():
    problems = []
    for entry in live_entries(PO_PATH):
        source = entry.msgid if entry.msgid_plural is None else entry.msgid_plural
        for index, text in sorted(entry.msgstr.items()):
            expected, got = placeholders(source), placeholders(text)
            if text and expected != got:
                problems.append(f"{entry} msgstr[{index}]: expected {sorted(expected.elements())}, got {sorted(got.elements())}")
    assert not problems, f"{PO_PATH}:\n" + "\n".join(problems)


# --- b) the compiled .mo is the .po --------------------------------------------------------------


def _catalog_from_po(entries: list[Entry]) -> dict:
    catalog: dict = {}
    for entry in entries:
        if entry.fuzzy:
            continue
        if entry.msgid_plural is None:
            catalog[entry.key] = entry.msgstr.get(0, "")
        else:
            for index, text in entry.msgstr.items():
                catalog[(entry.key, index)] = text
    return catalog


def _expected_catalog(tmp_path: Path) -> dict:
    """What compilemessages would produce now: msgfmt's own output when it is installed."""
    msgfmt = shutil.which("msgfmt")
    if msgfmt:
        fresh = tmp_path / "fresh.mo"
        done = subprocess.run([msgfmt, "--check-format", "-o", str(fresh), str(PO_PATH)], capture_output=True, text=True)
        if done.returncode:
            pytest.fail(f"msgfmt rejects {PO_PATH}:\n{done.stderr}")
        with fresh.open("rb") as handle:
            return dict(gettext.GNUTranslations(handle)._catalog)
    return _catalog_from_po(parse_po(PO_PATH))


def test_compiled_catalogue_matches_po(tmp_path):
    assert MO_PATH.exists(), f"{MO_PATH} is missing: run compilemessages"
    with MO_PATH.open("rb") as handle:
        compiled = dict(gettext.GNUTranslations(handle)._catalog)
    expected = _expected_catalog(tmp_path)
    compiled.pop("", None)
    expected.pop("", None)  # headers differ only by msgfmt's own choices
    stale = sorted(str(k) for k in expected.keys() - compiled.keys())
    extra = sorted(str(k) for k in compiled.keys() - expected.keys())
    changed = sorted(str(k) for k in expected.keys() & compiled.keys() if expected[k] != compiled[k])
    assert not (stale or extra or changed), (
        f"{MO_PATH} is out of date with {PO_PATH.name}: run compilemessages.\n"
        f"missing from .mo: {stale[:20]}\nonly in .mo: {extra[:20]}\ndifferent: {changed[:20]}"
    )


# --- Source and catalogue in step: no string added to the code and left out of the .po -------------


def _copy_sources(destination: Path) -> None:
    """Only what makemessages reads (.py, .html, .txt), outside the ignored folders."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        return {n for n in names if n in IGNORED_DIRS or n.startswith(".") or (not (here / n).is_dir() and not n.endswith(SOURCE_SUFFIXES))}

    shutil.copytree(settings.BASE_DIR, destination, ignore=ignore)
    (destination / "locale" / "ru" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy(PO_PATH, destination / "locale" / "ru" / "LC_MESSAGES" / "django.po")


@pytest.mark.skipif(not shutil.which("xgettext") or not shutil.which("msgmerge"), reason="GNU gettext tools are not installed")
def test_every_string_in_the_source_is_in_the_catalogue(tmp_path, monkeypatch):
    """Run makemessages on a copy of the project, so the real catalogue is never touched."""
    project = tmp_path / "project"
    _copy_sources(project)
    monkeypatch.chdir(project)
    with override_settings(LOCALE_PATHS=[project / "locale"]):
        call_command(
            "makemessages",
            locale=["ru"],
            no_obsolete=True,
            ignore_patterns=sorted(IGNORED_DIRS - {"locale"}),
            verbosity=0,
        )
    committed = {e.key for e in live_entries(PO_PATH)}
    fresh = live_entries(project / "locale" / "ru" / "LC_MESSAGES" / "django.po")
    new = [f"not in the catalogue: {e.msgid!r}" for e in fresh if e.key not in committed]
    changed = [f"needs a translation: {e.msgid!r}" for e in fresh if e.key in committed and (e.fuzzy or not all(e.msgstr.values()))]
    assert not (new or changed), "Run makemessages and translate:\n" + "\n".join(new + changed)


# --- c) the portal speaks Russian to Russian browsers ----------------------------------------------

LANDING = {
    "Write to your clinic or your doctor, book without a phone call": "Пишите в клинику или своему врачу, записывайтесь на приём без звонка",
    "Sign in or sign up": "Войти или зарегистрироваться",
    "No clinics yet.": "Клиник пока нет.",
}
LOGIN = {
    "We will send a 6-digit code. No password needed.": "Мы отправим код из 6 цифр. Пароль не нужен.",
    "Get a code": "Получить код",
    "Phone or e-mail": "Телефон или e-mail",
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize(("url", "strings"), [("/", LANDING), ("/login/", LOGIN)], ids=["landing", "login"])
def test_pages_in_the_asked_language(url, strings, language):
    response = Client(HTTP_ACCEPT_LANGUAGE=language).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    for english, russian in strings.items():
        shown, other = (russian, english) if language == "ru" else (english, russian)
        assert shown in html, f"{url}: no {shown!r} in the {language} page"
        assert other not in html, f"{url}: {other!r} is still on the {language} page"


# --- d) the admin theme speaks Russian too -------------------------------------------------------
# django-unfold ships no Russian: its strings that our screens show are translated in our catalogue
# (our LOCALE_PATHS come first), written by hand because makemessages does not read the theme.

THEME = Path(unfold.__file__).resolve().parent
# The theme's own parts and the contrib packages we install (filters; forms holds its widgets).
THEME_PARTS = [
    THEME / "templates",
    *THEME.glob("*.py"),
    THEME / "mixins",
    THEME / "templatetags",
    THEME / "contrib" / "filters",
    THEME / "contrib" / "forms",
]
TEMPLATE_STRING = re.compile(r"""\{%\s*(?:trans|translate)\s+(["'])(.+?)\1(?:\s+as\s+\w+)?\s*%\}""")
PYTHON_STRING = re.compile(r"""\b(?:_|gettext|gettext_lazy)\(\s*(["'])(.+?)\1\s*\)""")


def theme_strings() -> set[str]:
    """Every plain {% translate %} and _() string of the theme (no plurals, no context)."""
    found: set[str] = set()
    files = [p for part in THEME_PARTS for p in ([part] if part.is_file() else part.rglob("*")) if p.suffix in (".html", ".py")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        patterns = (TEMPLATE_STRING, PYTHON_STRING) if path.suffix == ".html" else (PYTHON_STRING,)  # templates also say _('…')
        found.update(m.group(2) for pattern in patterns for m in pattern.finditer(text))
    return found


def test_every_string_of_the_admin_theme_has_russian():
    from django.utils import translation

    strings = theme_strings()
    assert {"Welcome back to", "Return to site", "Reset filters", "Type to search", "Select value"} <= strings, "the theme's layout changed"
    with translation.override("ru"):
        english = sorted(s for s in strings if translation.gettext(s) == s)
    assert not english, "the admin theme shows these in English on Russian pages; translate them in django.po:\n" + "\n".join(english)


class _Visible(HTMLParser):
    """Text a person reads on the page, attributes they see or hear included; list headers apart."""

    SEEN = ("placeholder", "title", "aria-label", "alt")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.headers: list[str] = []
        self._skip = 0
        self._header: list[str] | None = None
        self._in_results = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "table" and attrs.get("id") == "result_list":
            self._in_results = True
        if tag == "th" and self._in_results and "scope" in attrs and attrs.get("scope") == "col":
            self._header = []
        self.texts += [attrs[name].strip() for name in self.SEEN if attrs.get(name)]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "th" and self._header is not None:
            self.headers.append(" ".join("".join(self._header).split()))
            self._header = None
        if tag == "thead":
            self._in_results = False

    def handle_data(self, data):
        if self._skip:
            return
        if data.strip():
            self.texts.append(" ".join(data.split()))
        if self._header is not None:
            self._header.append(data)


def _seen(html: str) -> _Visible:
    parser = _Visible()
    parser.feed(html)
    return parser


CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
# Column headers that read the same in Russian.
SAME_IN_RUSSIAN = {"", "ID", "IP", "API", "UTM", "SMS", "URL", "e-mail", "E-mail"}


@pytest.mark.django_db
def test_russian_admin_pages_show_no_english_from_the_theme_and_no_english_headers(alpha, superuser):
    from django.contrib import admin
    from django.urls import reverse

    from tests import factories as f

    f.ThreadFactory(clinic=alpha.clinic, patient__full_name="Анна Петрова")
    theme = {s for s in theme_strings() if " " in s}  # whole phrases: single words ("Run", "To") occur inside ours
    anonymous = Client(HTTP_ACCEPT_LANGUAGE="ru")
    pages = {"/admin/login/": anonymous.get("/admin/login/")}
    platform = Client(HTTP_ACCEPT_LANGUAGE="ru")
    platform.force_login(superuser)
    pages["/admin/"] = platform.get("/admin/")
    english_headers = []
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        pages[url] = response = platform.get(url, follow=True)
        pages[url + "?q=nothing-matches"] = platform.get(url + "?q=nothing-matches", follow=True)
        english_headers += [
            f"{url}: {h!r}" for h in _seen(response.content.decode()).headers if not CYRILLIC.search(h) and h not in SAME_IN_RUSSIAN
        ]
    operator = Client(HTTP_ACCEPT_LANGUAGE="ru")
    operator.force_login(alpha.operator)
    for url in ("/admin/inbox/", "/admin/calendar/", "/admin/patients/contact/?q=nothing-matches"):
        pages[f"{url} (operator)"] = operator.get(url)
    pages["/admin/logout/"] = operator.post("/admin/logout/")
    english = []
    for url, response in pages.items():
        assert response.status_code == 200, f"{url}: {response.status_code}"
        english += [f"{url}: {text!r}" for text in _seen(response.content.decode()).texts if text in theme]
    assert not english, "English from the admin theme on Russian pages:\n" + "\n".join(english)
    assert not english_headers, "list columns without a Russian name:\n" + "\n".join(english_headers)


@pytest.mark.django_db
def test_russian_list_counters_use_russian_plurals(alpha, superuser):
    from tests import factories as f

    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(superuser)
    counter = re.compile(r"\b\d+ (?:результат\w*|\w+)\s*</div>")

    def count_line(url: str) -> str:
        html = client.get(url).content.decode()
        return " ".join(counter.search(html).group(0).removesuffix("</div>").split())

    assert count_line("/admin/messaging/cannedanswer/") == "0 результатов"
    f.CannedAnswerFactory(clinic=alpha.clinic)
    assert count_line("/admin/messaging/cannedanswer/") == "1 результат"
    for _ in range(2):
        f.CannedAnswerFactory(clinic=alpha.clinic)
    assert count_line("/admin/messaging/cannedanswer/") == "3 результата"
