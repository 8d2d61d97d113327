"""Settings for the clinic CRM, read from the environment (django-environ).

Production is the default: ``DEBUG`` is off and ``SECRET_KEY`` and ``ALLOWED_HOSTS`` must be given
(``manage.py check --deploy`` is clean then). ``make run`` sets the development values (DEBUG on, a
development key, local hosts); the test suite's are in ``tests/settings.py``. With no ``DATABASE_URL``
/ ``REDIS_URL`` this is the embedded default: SQLite, the in-memory channel layer and Celery tasks
executed in-process; setting them switches to PostgreSQL, channels_redis and a real Celery broker.
A variable with a fixed set of values (a choice, a boolean) refuses anything else at start-up.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static as _static
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _env_bool(name: str, *, default: bool) -> bool:
    """environ's bool() reads every unknown word as false: `DEBUG=ture` would pass unnoticed."""
    value = env.str(name, default="").strip().lower()
    if not value:
        return default
    if value not in _TRUE + _FALSE:
        raise ImproperlyConfigured(f"{name} must be true or false ({', '.join(_TRUE + _FALSE)}), not {env.str(name)!r}.")
    return value in _TRUE


def _env_choice(name: str, choices: tuple[str, ...], *, default: str) -> str:
    """A misspelt choice would otherwise fall through to some other branch and show up only in use."""
    value = env.str(name, default=default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value


DEBUG = _env_bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set: `make run` sets a development one; for manage.py by hand, put DEBUG and SECRET_KEY in .env."
        )
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "health_check",  # its HTML template for /health/ (browsers and probes that send Accept: */*)
    "phonenumber_field",
    "axes",
    "channels",
    # Ours
    "clinic_crm",
    "accounts",
    "audit",
    "clinics",
    "patients",
    "notifications",
    "messaging",
    "appointments",
    "promotions",
    "anymail",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything that reads the session or the user: takes the request's database connection
    # from the pool, or answers 503 when none comes in time.
    "core.pool.PoolTimeoutMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "core.middleware.RefuseNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clinics.middleware.StaffTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.htmx: the inbox and the portal chat answer their own fetches with a fragment.
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinic_crm.urls"
WSGI_APPLICATION = "clinic_crm.wsgi.application"
ASGI_APPLICATION = "clinic_crm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "clinic_crm" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# SQLite (embedded default) takes the write lock at BEGIN ("IMMEDIATE") so that
# concurrent writers queue up instead of failing mid-transaction, and uses WAL
# so that the beat process and the web server can read while one writes.
SQLITE_PATH = env.str("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3"))
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Connections come from a bounded pool per process (psycopg_pool, README "Database connections"):
    # under ASGI every request runs in a thread of its own, and persistent per-thread connections
    # (CONN_MAX_AGE) added up to PostgreSQL's max_connections in a burst. A request takes a
    # connection when it starts (core.pool) and gives it back when it ends; one that waits
    # longer than DB_POOL_TIMEOUT is answered 503. Celery's processes do without the pool (clinic_crm.celery).
    if env.str("CONN_MAX_AGE", default="0") != "0":
        raise ImproperlyConfigured("CONN_MAX_AGE is replaced by the connection pool: set DB_POOL_MIN_SIZE / DB_POOL_MAX_SIZE instead.")
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    _pool = {}
    for _name, _key, _kind, _default in (
        ("DB_POOL_MIN_SIZE", "min_size", int, 2),
        ("DB_POOL_MAX_SIZE", "max_size", int, 10),
        ("DB_POOL_TIMEOUT", "timeout", float, 30.0),
    ):
        try:
            _pool[_key] = _kind(env.str(_name, default=str(_default)))
        except ValueError:
            raise ImproperlyConfigured(f"{_name} must be a {'whole ' if _kind is int else ''}number, not {env.str(_name)!r}.") from None
    if _pool["min_size"] < 0 or _pool["max_size"] < 1 or _pool["min_size"] > _pool["max_size"]:
        raise ImproperlyConfigured(
            f"The connection pool needs 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE and DB_POOL_MAX_SIZE >= 1 "
            f"(got {_pool['min_size']} and {_pool['max_size']})."
        )
    if not 0 < _pool["timeout"] < float("inf"):
        raise ImproperlyConfigured(f"DB_POOL_TIMEOUT must be a positive number of seconds, not {env.str('DB_POOL_TIMEOUT')!r}.")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = _pool
    # Server-side binding: the ORM's statements keep their parameters apart, so psycopg prepares a
    # statement after this many runs on a connection and PostgreSQL stops planning it again (a thread
    # with its seven joins took longer to plan than to run; bench/inbox.py measures the gain, figures
    # in bench/README.md). PG_PREPARE_THRESHOLD=none behind a pooler that
    # cannot keep prepared statements (PgBouncer in transaction mode < 1.21); PG_SERVER_SIDE_BINDING=false
    # returns to Django's default client-side binding. psycopg prepares per connection, and a pooled
    # connection keeps what it prepared when it goes back to the pool (tests/platform/test_connection_pool.py).
    _prepare = env.str("PG_PREPARE_THRESHOLD", default="5")
    if not (_prepare.lower() == "none" or _prepare.isdigit()):
        raise ImproperlyConfigured(f"PG_PREPARE_THRESHOLD must be a whole number of runs or none, not {_prepare!r}.")
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None if _prepare.lower() == "none" else int(_prepare)
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = _env_bool("PG_SERVER_SIDE_BINDING", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker --------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# "pubsub" (default): Redis pushes each event to the socket servers subscribed to its group;
# an event published while a server is reconnecting is lost, and clients catch up with
# `resume` as after any drop. "core": events wait in Redis lists (capacity, expiry) and each
# server polls for them, several round trips per event (far slower at load: bench/README.md).
# Checked even without REDIS_URL, so a misspelling shows before Redis is switched on.
REALTIME_LAYER = _env_choice("REALTIME_LAYER", ("pubsub", "core"), default="pubsub")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    if REALTIME_LAYER == "pubsub":
        CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [{"address": REDIS_URL}]}}
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # redis-py 8 gives every read a 5 s socket timeout by default; the layer's blocking pop
                # (BZPOPMIN) also waits 5 s, so idle sockets were torn down (close 1011) every few
                # seconds. Reads get room beyond the pop's own timeout (bench/ws_load.py shows it).
                "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 1500, "expiry": 10},
            }
        }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
# Without a broker tasks run in the calling process; timed jobs are then fired
# by `celery beat` itself, which executes eager tasks in its own process.
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
# A failed in-process task is logged, never turned into an error of the request that queued it.
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis hands an unacknowledged task (acks_late) to another worker once it has been out this long. It is
# how late the tasks of a worker that died whole come back, and also the longest a task may sit reserved:
# a countdown/ETA task is reserved by a worker until its time, so a countdown beyond it runs twice.
# Half an hour, twice the longest retry countdown (notifications.services.retry_delay, 15 min); longer
# waits belong in the outbox's due time (Notification.not_before, read by the beat sweep), not the broker.
# Deliveries a dead worker left `sending` do not wait for it: the sweep below settles them.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 30 * 60}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "purge-spent-login-codes": {
        "task": "accounts.tasks.purge_spent_login_codes",
        "schedule": 15 * 60,
    },
    "wake-snoozed-threads": {"task": "messaging.tasks.wake_snoozed_threads", "schedule": 60},
    "purge-stale-sockets": {"task": "messaging.tasks.purge_stale_sockets", "schedule": 5 * 60},
    "purge-unsent-attachments": {"task": "messaging.tasks.purge_unsent_attachments", "schedule": 60 * 60},
    "dispatch-due-notifications": {"task": "notifications.tasks.dispatch_due_notifications", "schedule": 30},
    "queue-visit-reminders": {"task": "appointments.tasks.queue_visit_reminders", "schedule": 60},
    "queue-personal-reminders": {"task": "notifications.tasks.queue_personal_reminders", "schedule": 60},
    # A tick not started within its period is dropped (django_celery_beat's expire_seconds): the next one does the same work.
    "settle-stuck-deliveries": {"task": "notifications.tasks.settle_stuck_deliveries", "schedule": 60, "options": {"expire_seconds": 60}},
}
# A delivery `sending` this long belongs to a worker that died whole: the sweep settles it. Far above one
# provider call (PROVIDER_TIMEOUT_SECONDS, per connect/read/write): a batch stops calling providers at half of it.
DELIVERY_STUCK_AFTER_SECONDS = env.int("DELIVERY_STUCK_AFTER_SECONDS", default=5 * 60)

# --- Auth -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "patients:login"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# Portal one-time codes (see accounts/services.py for why each number).
LOGIN_CODE_TTL_SECONDS = 300
LOGIN_CODE_MAX_ATTEMPTS = 5
LOGIN_CODE_PER_DESTINATION = (3, 15 * 60)  # codes per window (seconds)
LOGIN_CODE_PER_IP = (10, 60 * 60)

SESSION_COOKIE_AGE = 60 * 60 * 24 * 30

# --- i18n / time --------------------------------------------------------------
LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"  # storage; each clinic's own zone is activated for display

PHONENUMBER_DEFAULT_REGION = "RU"
PHONENUMBER_DB_FORMAT = "E164"
PHONENUMBER_DEFAULT_FORMAT = "INTERNATIONAL"

# --- Static and media -----------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "clinic_crm" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# Patients' files: never under MEDIA_URL, served only by messaging.views after a tenancy check.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=BASE_DIR / "private")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT, "base_url": None},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Uploads above this stay on disk while the view reads them (attachments are up to 10 MB).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024

# --- Conversations ------------------------------------------------------------------
SOCKET_HEARTBEAT_SECONDS = env.int("SOCKET_HEARTBEAT_SECONDS", default=25)

# --- Notifications (e-mail / SMS providers) ---------------------------------------
# SMTP as one EMAIL_URL (smtp+tls://user:password@smtp.example.ru:587, consolemail:// by default), each part
# overridable by its own variable. A real e-mail provider through django-anymail: EMAIL_BACKEND=anymail.backends.postmark.EmailBackend
# (or mailgun, sendgrid, …) with its credentials as ANYMAIL_<NAME> variables (ANYMAIL_POSTMARK_SERVER_TOKEN=…).
# Delivery reports arrive at /anymail/<provider>/tracking/ behind HTTP basic auth ANYMAIL_WEBHOOK_SECRET="user:password".
_email_url = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=_email_url["EMAIL_BACKEND"])
EMAIL_HOST = env.str("EMAIL_HOST", default=_email_url["EMAIL_HOST"] or "localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=_email_url["EMAIL_PORT"] or 25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default=_email_url["EMAIL_HOST_USER"] or "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default=_email_url["EMAIL_HOST_PASSWORD"] or "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", default=bool(_email_url.get("EMAIL_USE_TLS")))
EMAIL_USE_SSL = _env_bool("EMAIL_USE_SSL", default=bool(_email_url.get("EMAIL_USE_SSL")))
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS (STARTTLS, port 587) and EMAIL_USE_SSL (port 465) exclude each other: set one.")
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=_email_url.get("EMAIL_TIMEOUT"))  # seconds; unset: no timeout, as Django's default
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=_email_url["EMAIL_FILE_PATH"])  # filemail:///path: where the file backend writes
ANYMAIL = {key.removeprefix("ANYMAIL_"): value for key, value in os.environ.items() if key.startswith("ANYMAIL_")}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Clinic CRM <noreply@clinic-crm.local>")
SMS_PROVIDER = _env_choice("SMS_PROVIDER", ("console", "smsru", "twilio"), default="console")
SMSRU_API_ID = env.str("SMSRU_API_ID", default="")
SMSRU_SENDER = env.str("SMSRU_SENDER", default="")
# SMS.ru's send address: a reseller's or a test double's endpoint of the same API.
SMSRU_API_URL = env.str("SMSRU_API_URL", default="https://sms.ru/sms/send")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=10.0)
# Where links in SMS and e-mails point (no trailing slash).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Delivery reports: SMS.ru posts to /notifications/reports/smsru/<this secret>/; Twilio signs with its auth token.
SMSRU_CALLBACK_SECRET = env.str("SMSRU_CALLBACK_SECRET", default="")

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "core.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "clinic_crm.api.exception_handler",
    # Bounded in size and depth, NUL refused (core.client_input); forms and files as DRF parses them.
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# The largest JSON body the API reads: a message is at most a few KB; files come as multipart, not JSON.
API_JSON_MAX_BYTES = 1024 * 1024
CSRF_FAILURE_VIEW = "core.api.csrf_failure"

# --- Dates a client may give --------------------------------------------------------
# The furthest ahead any date from a client may lie (staff booking, offered slots, searches, filters);
# patients are further held to their clinic's booking horizon (appointments.BookingRules).
PLANNING_HORIZON_DAYS = 2 * 366
# How far ahead a patient may set a personal reminder.
REMINDER_HORIZON_DAYS = 366
SPECTACULAR_SETTINGS = {
    "TITLE": "Clinic CRM API",
    "DESCRIPTION": "Patient portal and clinic staff API. Every staff endpoint is scoped to the caller's clinics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Fields of the same name with different choice sets (dependants take every relation but "self";
    # a consent is given on the web or by API, a thread runs in a messenger): name each set.
    "ENUM_NAME_OVERRIDES": {
        "PatientRelationEnum": "patients.models.Patient.Relation",
        "ConsentChannelEnum": "patients.models.ConsentRecord.Channel",
        "ThreadChannelEnum": "messaging.models.Thread.Channel",
        "ThreadStatusEnum": "messaging.models.Thread.Status",
        "VisitStatusEnum": "appointments.models.Visit.Status",
        "VisitOutcomeEnum": [("completed", "completed"), ("no_show", "no_show")],
        "VisitSourceEnum": "appointments.models.Visit.Source",
        "StaffBookingSourceEnum": [("operator", "operator"), ("phone", "phone")],
    },
}

# --- Admin theme --------------------------------------------------------------
UNFOLD = {
    "SITE_TITLE": _("Clinic CRM"),
    "SITE_HEADER": "clinic_crm.admin_site.site_header",
    "SITE_SUBHEADER": "clinic_crm.admin_site.site_subheader",
    "SITE_URL": "/",
    "SHOW_LANGUAGES": True,
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": False,
        "navigation": "clinic_crm.admin_site.sidebar_navigation",
    },
    # Every admin page keeps the sidebar's inbox badge live over the one socket of the page
    # (clinic_crm/static/inbox/badge.js); the inbox page shares its socket with it.
    "SCRIPTS": [
        lambda request: _static("realtime/socket.js"),
        lambda request: _static("inbox/badge.js"),
    ],
}

# --- Security ------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"client_mistake": {"()": "core.log_filters.ClientMistakeWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _env_choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), default="INFO")},
    "loggers": {
        # django.security.<exception name>: requests Django refused with a 4xx (filters do not pass to child loggers).
        **{
            f"django.security.{name}": {"filters": ["client_mistake"]}
            for name in (
                "DisallowedHost",
                "DisallowedRedirect",
                "RequestDataTooBig",
                "TooManyFieldsSent",
                "TooManyFilesSent",
                "SuspiciousFileOperation",
                "SuspiciousMultipartForm",
                "SuspiciousOperation",
                "SuspiciousSession",
                "InvalidSessionKey",
                "csrf",
            )
        },
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
