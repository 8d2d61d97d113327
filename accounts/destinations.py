"""Where a one-time code goes: a normalised phone number or e-mail address."""

from dataclasses import dataclass

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from accounts.models import LoginCode


@dataclass(frozen=True)
class Destination:
    channel: str  # LoginCode.Channel
    value: str  # E.164 phone or lower-cased e-mail

    @property
    def is_phone(self) -> bool:
        return self.channel == LoginCode.Channel.SMS


def parse_destination(raw: str, *, region: str = "RU") -> Destination:
    """Accept '+7 912 345-67-89', '8 912 3456789' or 'name@example.ru'.

    Raises ValidationError with a message meant for the patient.
    """
    raw = (raw or "").strip()
    if not raw:
        raise ValidationError(_("Enter your phone number or e-mail."), code="required")
    if "@" in raw:
        email = raw.lower()
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError(
                _("This e-mail address does not look right: %(value)s"), code="invalid_email", params={"value": raw}
            ) from None
        return Destination(LoginCode.Channel.EMAIL, email)
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("This phone number does not look right: %(value)s. Example: +7 912 345-67-89."),
            code="invalid_phone",
            params={"value": raw},
        )
    return Destination(LoginCode.Channel.SMS, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
