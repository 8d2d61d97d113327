"""Settings for the test suite (pytest.ini): the product's own as `make run` starts it, plus what exists only for tests.

The development values are put in the environment before the product's settings are read, and only where
the caller left them unset (`DATABASE_URL=… pytest` still runs on PostgreSQL, `DEBUG=false pytest` as in
production). Processes a test starts (bin/serve, a Celery worker, manage.py) inherit them.
"""

import os
import tempfile
from pathlib import Path

for _name, _value in {
    "DEBUG": "true",
    "SECRET_KEY": "tests-only-insecure-key-never-use-in-production-0123456789abcdefghijkl",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
}.items():
    os.environ.setdefault(_name, _value)

from clinic_crm.settings import *  # noqa: E402, F403
from clinic_crm.settings import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that live-server and socket tests share it across threads;
    # one per process, so that two test runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"clinic-crm-test-{os.getpid()}.sqlite3")}

# Argon2 costs ~50 ms per hash by design, and factories hash hundreds of staff passwords;
# tests/platform/test_settings.py checks that production hashes with Argon2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
