"""Production settings: `check --deploy` is clean, passwords hash with Argon2, migrations match the models."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.hashers import check_password, make_password
from django.test import override_settings

import clinic_crm.settings as project_settings

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """`python manage.py …` in a fresh process: the test run's environment, less `unset`, plus `env`.

    DJANGO_ALLOW_ASYNC_UNSAFE is the browser tests' own (Playwright's loop in the test thread), never production's.
    """
    unset = (*unset, "DJANGO_ALLOW_ASYNC_UNSAFE")
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in unset}, **env},
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
    result = manage("check", unset=("SECRET_KEY",), DEBUG="false", ALLOWED_HOSTS="crm.example.ru")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_production_hashes_passwords_with_argon2():
    # The test suite swaps in MD5 for speed (tests/conftest.py): read the settings module itself.
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
