"""Production settings: `check --deploy` is clean, DEBUG is off unless said, a wrong value stops the start with a
message naming what is allowed, passwords hash with Argon2, migrations match the models."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password, make_password
from django.test import override_settings

import clinic_crm.settings as project_settings

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """`python manage.py …` in a fresh process with the product's settings (not the suite's): the test run's
    environment, less `unset`, plus `env`.

    DJANGO_ALLOW_ASYNC_UNSAFE is the browser tests' own (Playwright's loop in the test thread), never production's.
    """
    return _run([sys.executable, "manage.py", *args], unset=unset, **env)


def _run(command: list[str], *, unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    unset = (*unset, "DJANGO_ALLOW_ASYNC_UNSAFE")
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in unset}, "DJANGO_SETTINGS_MODULE": "clinic_crm.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_with_production_environment():
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)") for _ in range(50))
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="false", SECRET_KEY=secret, ALLOWED_HOSTS="crm.example.ru")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNING" not in output


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", SECRET_KEY="", DEBUG="false", ALLOWED_HOSTS="crm.example.ru")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def settings_in_a_fresh_process(*names: str, unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """clinic_crm.settings imported in a new interpreter; prints the named settings, one per line."""
    code = f"import clinic_crm.settings as s; print(*(repr(getattr(s, name)) for name in {names!r}), sep=chr(10))"
    return _run([sys.executable, "-c", code], unset=unset, **env)


def test_debug_is_off_unless_the_environment_turns_it_on():
    # Empty counts as unset, and an empty variable also hides a developer's .env.
    result = settings_in_a_fresh_process("DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", DEBUG="", SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True"]


def test_development_needs_its_key_said_too():
    result = settings_in_a_fresh_process("DEBUG", SECRET_KEY="", DEBUG="true")
    assert result.returncode != 0
    assert "SECRET_KEY must be set: `make run` sets a development one" in result.stderr


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DEBUG": "ture"}, "DEBUG must be true or false (true, 1, yes, on, false, 0, no, off), not 'ture'."),
        ({"REALTIME_LAYER": "pub-sub"}, "REALTIME_LAYER must be one of pubsub, core; got 'pub-sub'."),
        ({"SMS_PROVIDER": "sms.ru"}, "SMS_PROVIDER must be one of console, smsru, twilio; got 'sms.ru'."),
        ({"LOG_LEVEL": "info"}, "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; got 'info'."),
        ({"CELERY_TASK_ALWAYS_EAGER": "maybe"}, "CELERY_TASK_ALWAYS_EAGER must be true or false"),
        (
            {"DATABASE_URL": "postgres://root@127.0.0.1:5432/h_settings_only", "PG_PREPARE_THRESHOLD": "never"},
            "PG_PREPARE_THRESHOLD must be a whole number of runs or none, not 'never'.",
        ),
        (
            {"EMAIL_URL": "smtp+tls://u:p@smtp.example.ru:587", "EMAIL_USE_SSL": "true"},
            "EMAIL_USE_TLS (STARTTLS, port 587) and EMAIL_USE_SSL",
        ),
    ],
    ids=["debug", "realtime-layer", "sms-provider", "log-level", "eager", "prepare-threshold", "tls-and-ssl"],
)
def test_a_wrong_value_stops_the_start_naming_what_is_allowed(variables, message):
    result = settings_in_a_fresh_process("DEBUG", **variables)
    assert result.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {message}" in result.stderr


def test_email_settings_come_from_the_url_and_each_part_can_be_overridden():
    result = settings_in_a_fresh_process(
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_HOST_USER",
        "EMAIL_HOST_PASSWORD",
        "EMAIL_USE_TLS",
        "EMAIL_USE_SSL",
        EMAIL_URL="smtp+tls://clinic:s3cret@smtp.example.ru:587",
        EMAIL_HOST="smtp2.example.ru",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "'django.core.mail.backends.smtp.EmailBackend'",
        "'smtp2.example.ru'",
        "587",
        "'clinic'",
        "'s3cret'",
        "True",
        "False",
    ]


def test_email_goes_to_the_console_unless_configured():
    result = settings_in_a_fresh_process("EMAIL_BACKEND", unset=("EMAIL_URL", "EMAIL_BACKEND"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "'django.core.mail.backends.console.EmailBackend'"


def test_production_hashes_passwords_with_argon2():
    # The test suite swaps in MD5 for speed (tests/settings.py): read the product's settings module itself.
    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    with override_settings(PASSWORD_HASHERS=project_settings.PASSWORD_HASHERS):
        encoded = make_password("Correct-Horse-42")
        assert encoded.startswith("argon2$argon2id$")
        assert check_password("Correct-Horse-42", encoded)
        assert not check_password("Correct-Horse-43", encoded)


def test_models_and_migrations_agree():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
