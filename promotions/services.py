"""Writes for promotions: launch (receipts + rate-limited notifications), and a patient opening one."""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record
from clinics.tenancy import CLINIC_ADMINS, require_role
from notifications.models import Notification
from patients.models import Patient
from promotions import selectors
from promotions.models import Promotion, Receipt

# SMS/e-mail of one promotion leave in batches: at most this many a minute (providers and phone networks throttle bulk).
BATCH_PER_MINUTE = 200


def promotion_launch(*, actor: Any, promotion: Promotion) -> int:
    """Reach the audience once: a receipt per person (the portal highlight) and, if chosen, one SMS/e-mail each.

    Returns how many people were reached. A promotion launches once.
    """
    require_role(actor, promotion.clinic_id, CLINIC_ADMINS, refusal=_("Only the clinic's owner or manager launches promotions."))
    now = timezone.now()
    with transaction.atomic():
        promotion = Promotion.objects.select_for_update().select_related("clinic").get(pk=promotion.pk)
        if promotion.status != Promotion.Status.DRAFT:
            raise ValidationError(_("This promotion was launched already."))
        if promotion.valid_until < timezone.localtime(now, promotion.clinic.tz).date():
            raise ValidationError(_("This promotion has ended: change its dates first."))
        people = list(selectors.promotion_audience(promotion=promotion))
        Receipt.objects.bulk_create([Receipt(promotion=promotion, patient=p, created_at=now) for p in people], ignore_conflicts=True)
        if promotion.by_sms or promotion.by_email:
            reachable = [p for p in people if p.user_id]
            Notification.objects.bulk_create(
                Notification(
                    clinic_id=promotion.clinic_id,
                    recipient_id=person.user_id,
                    kind=Notification.Kind.PROMOTION,
                    promotion=promotion,
                    reason="promotion",
                    key=f"promotion:{promotion.pk}:{person.pk}",
                    not_before=now + timedelta(minutes=index // BATCH_PER_MINUTE),
                )
                for index, person in enumerate(reachable)
            )
        promotion.status = Promotion.Status.LAUNCHED
        promotion.launched_at = now
        promotion.save(update_fields=["status", "launched_at"])
        audit_record(actor=actor, action="promotion.launched", clinic=promotion.clinic, target=promotion, data={"reached": len(people)})
    return len(people)


def promotion_open(*, patient: Patient, promotion: Promotion) -> None:
    """The person opened the promotion in the portal: the clinic is no longer highlighted for them."""
    holder = patient.account_holder
    now = timezone.now()
    if not Receipt.objects.filter(promotion=promotion, patient=holder).exists():
        # Seen in the portal without having been reached at launch (a contact since): counted as reached now, and opened.
        with transaction.atomic(), suppress(IntegrityError):  # a second tab opening it at once made the row: fine
            Receipt.objects.create(promotion=promotion, patient=holder, created_at=now, opened_at=now)
        return
    Receipt.objects.filter(promotion=promotion, patient=holder, opened_at__isnull=True).update(opened_at=now)
