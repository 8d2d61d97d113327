"""Files of threads: served only to people who may see the message they belong to."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from messaging import selectors
from messaging.models import Attachment


def _serve(attachment: Attachment, field: str, *, inline: bool) -> FileResponse:
    stored = getattr(attachment, field)
    if not stored:
        raise Http404
    content_type = "image/jpeg" if field == "thumbnail" else attachment.content_type
    response = FileResponse(stored.open("rb"), content_type=content_type, as_attachment=not inline, filename=attachment.original_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    # A PDF opened inline runs in the browser's viewer; never let it script our origin.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
    return response


@require_GET
@login_required(login_url="/login/")
def attachment(request: HttpRequest, pk: int) -> FileResponse:
    try:
        found = selectors.attachment_for(user=request.user, attachment_id=pk)
    except Attachment.DoesNotExist:
        raise Http404 from None
    return _serve(found, "file", inline=found.is_image or request.GET.get("inline") == "1")


@require_GET
@login_required(login_url="/login/")
def attachment_thumbnail(request: HttpRequest, pk: int) -> FileResponse:
    try:
        found = selectors.attachment_for(user=request.user, attachment_id=pk)
    except Attachment.DoesNotExist:
        raise Http404 from None
    return _serve(found, "thumbnail", inline=True)
