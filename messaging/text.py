"""Message text is plain text: escaped, links made clickable, line breaks kept. Never HTML."""

from __future__ import annotations

import re
from functools import lru_cache

from django.utils.html import escape, urlize
from django.utils.safestring import SafeString, mark_safe

_LINK = re.compile(r"<a href=")


@lru_cache(maxsize=512)
def message_html(text: str) -> SafeString:
    """Escape everything the author typed, then turn URLs and e-mails into links that open in a new tab.

    Memoized: a message is rendered for staff and for the patient, and again for every page
    that lists it; the result depends on the text alone.
    """
    # urlize links only words with a dot or an @ (URLs, bare domains, e-mails); without either it
    # escapes every word and nothing else, and escaping the whole text is the same, far cheaper.
    linked = urlize(text, nofollow=True, autoescape=True) if "." in text or "@" in text else escape(text)
    linked = _LINK.sub('<a target="_blank" href=', linked)
    return mark_safe(linked.replace("\r\n", "\n").replace("\n", "<br>"))  # escaped by urlize above


def preview(text: str, limit: int = 140) -> str:
    """One line for lists and notifications."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
