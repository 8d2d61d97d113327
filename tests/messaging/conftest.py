import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections


@pytest_asyncio.fixture
async def socket_thread_closed():
    """The ASGI stack's ORM calls share one worker thread whose connection outlives the test
    (CONN_MAX_AGE on PostgreSQL); close it so the test database can be flushed and dropped.
    Socket test modules name it in pytestmark (usefixtures)."""
    yield
    await sync_to_async(connections.close_all)()
