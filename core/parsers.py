"""The API's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES).

Its own module: DRF imports the parser classes while it defines APIView, so this must
not import anything that imports views.
"""

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

from core import client_input


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class JSONParser(parsers.JSONParser):
    """Every JSON body of the API goes through client_input.json_decode: bounded in size and depth, no NUL."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.API_JSON_MAX_BYTES
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        try:
            if declared and declared.isdigit() and int(declared) > limit:
                raise client_input.too_large(limit)
            return client_input.json_decode(stream.read(limit + 1), max_bytes=limit)
        except client_input.ClientInputError as exc:
            if exc.code == "too_large":
                raise PayloadTooLarge(exc.message, code=exc.code) from None
            raise ParseError(exc.message, code=exc.code) from None
