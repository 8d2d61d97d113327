"""Message text to HTML: escaped, links clickable; the shortcut for texts that cannot hold a link."""

import pytest
from django.utils.html import urlize

from messaging.text import _LINK, message_html


def _through_urlize(text: str) -> str:
    linked = _LINK.sub('<a target="_blank" href=', urlize(text, nofollow=True, autoescape=True))
    return linked.replace("\r\n", "\n").replace("\n", "<br>")


@pytest.mark.parametrize(
    "text",
    [
        "bench message 5: when can I come in?",
        "<script>alert('x')</script> & \"quotes\"",
        "line one\r\nline two\n\nhttp:// not a link: mailto without at",
        "Привет! Можно записаться на субботу?",
    ],
)
def test_a_text_without_a_dot_or_an_at_renders_as_urlize_would(text):
    message_html.cache_clear()
    assert message_html(text) == _through_urlize(text)


def test_links_and_e_mails_still_become_links():
    html = message_html("See example.com/booking or write to desk@example.com.\n<b>Thanks</b>")
    assert html == _through_urlize("See example.com/booking or write to desk@example.com.\n<b>Thanks</b>")
    assert '<a target="_blank" href="http://example.com/booking" rel="nofollow">' in html and "mailto:desk@example.com" in html
    assert "&lt;b&gt;Thanks&lt;/b&gt;" in html
