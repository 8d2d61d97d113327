"""ASGI entry point: HTTP through Django, WebSockets through Channels.

The socket stack checks Origin against ALLOWED_HOSTS and authenticates with the
same session cookie as the portal and the admin. A socket that finds the database
connection pool full is closed with 4503 (core.pool).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic_crm.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from clinic_crm.routing import websocket_urlpatterns  # noqa: E402
from core.pool import PoolTimeoutSocketMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(PoolTimeoutSocketMiddleware(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
    }
)
