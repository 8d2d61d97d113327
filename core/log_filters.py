"""Logging filters (LOGGING in settings)."""

import logging


class ClientMistakeWithoutTraceback(logging.Filter):
    """django.security.* reports a request Django refused (bad Host, a body over the limit, a tampered
    session): the client's mistake, answered with a 4xx. One line says what; a traceback of Django's
    own code would only bury real errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True
