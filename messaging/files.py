"""What an uploaded file really is, judged by its bytes, and a thumbnail for images.

The name and the browser's content type are the uploader's word; a .jpg that is
an executable, or an HTML page named scan.pdf, is refused here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import filetype
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

register_heif_opener()

MAX_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"}
ALLOWED_TYPES = IMAGE_TYPES | {"application/pdf"}
THUMBNAIL_SIZE = (480, 480)
# Decompression bombs: a 10 MB PNG can claim 50,000 x 50,000 pixels.
Image.MAX_IMAGE_PIXELS = 60_000_000


@dataclass(frozen=True)
class Inspected:
    content_type: str
    width: int | None = None
    height: int | None = None
    thumbnail: ContentFile | None = None


def inspect_upload(upload) -> Inspected:
    """Sniff the type, check the size, decode images fully and make their thumbnail."""
    size = upload.size
    if size == 0:
        raise ValidationError(_("The file is empty."), code="empty_file")
    if size > MAX_BYTES:
        raise ValidationError(
            _("The file is too large: %(size)s MB. The limit is 10 MB.") % {"size": f"{size / 1024 / 1024:.1f}"}, code="file_too_large"
        )
    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    kind = filetype.guess(head)
    content_type = kind.mime if kind else ""
    if content_type not in ALLOWED_TYPES:
        raise ValidationError(_("Only photos (JPEG, PNG, WebP, HEIC) and PDF files can be sent."), code="file_type")
    if content_type == "application/pdf":
        return Inspected(content_type=content_type)
    return _inspect_image(upload, content_type)


def _inspect_image(upload, content_type: str) -> Inspected:
    try:
        with Image.open(upload) as image:
            image.load()  # decode it all: a truncated or forged image fails here, not in a browser
            width, height = image.size
            thumb = image.convert("RGB")
            thumb.thumbnail(THUMBNAIL_SIZE)
            buffer = io.BytesIO()
            thumb.save(buffer, "JPEG", quality=82)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(_("The image is damaged or cannot be read."), code="file_damaged") from exc
    finally:
        upload.seek(0)
    return Inspected(content_type=content_type, width=width, height=height, thumbnail=ContentFile(buffer.getvalue()))
