"""Reads for promotions: the audience, the reach figures, and what a patient has not opened yet."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import reduce

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from appointments.models import Visit
from notifications.models import Delivery, Preference
from notifications.selectors import patient_channels
from patients.models import Contact, Patient
from patients.selectors import consent_given_pairs
from promotions.models import Promotion, Receipt


def promotion_audience(*, promotion: Promotion) -> QuerySet[Patient]:
    """Account holders reached: they (or a dependant of theirs) wrote to the clinic and match every filter set.

    One person per family: a parent of two children who are contacts is reached once.
    """
    people = _people_matching(promotion)
    holder_ids = {guardian_id or pk for pk, guardian_id in people.values_list("pk", "guardian_id")}
    return Patient.objects.filter(pk__in=holder_ids).select_related("user")


def _people_matching(promotion: Promotion) -> QuerySet[Patient]:
    """The clinic's contacts (holders and dependants alike) who match every filter of the promotion, as a lazy query.

    Reads the promotion's tags (prefetched ones when the caller prefetched them), nothing else.
    """
    clinic = promotion.clinic
    contacts = Contact.objects.filter(clinic=clinic, merged_into__isnull=True)
    tag_ids = [tag.pk for tag in promotion.tags.all()]
    if tag_ids:
        contacts = contacts.filter(tags__in=tag_ids)
    people = Patient.objects.filter(pk__in=contacts.values("patient_id"))
    held = Visit.objects.filter(clinic=clinic, status=Visit.Status.COMPLETED)
    if promotion.doctor_id:
        people = people.filter(Exists(held.filter(patient=OuterRef("pk"), doctor_id=promotion.doctor_id)))
    if promotion.last_visit_before or promotion.last_visit_after:
        last = people.annotate(last_visit=Max("visits__starts_at", filter=Q(visits__clinic=clinic, visits__status=Visit.Status.COMPLETED)))
        if promotion.last_visit_before:
            last = last.filter(last_visit__lt=datetime.combine(promotion.last_visit_before, time.min, tzinfo=clinic.tz))
        if promotion.last_visit_after:
            last = last.filter(last_visit__gte=datetime.combine(promotion.last_visit_after, time.min, tzinfo=clinic.tz))
        people = Patient.objects.filter(pk__in=last.values("pk"))
    return people


@dataclass(frozen=True)
class AudienceSize:
    """Who a draft would reach, and how many of them an SMS / an e-mail could actually go to."""

    people: int
    sms: int
    email: int


def promotion_audience_size(*, promotion: Promotion) -> AudienceSize:
    """The editor's figures before launch, by the rules dispatch applies to a promotion's notice.

    A person can get an SMS (an e-mail) when they have an account with a phone (an e-mail),
    gave the clinic consent to its current text, did not opt out of everything or of
    promotions, and did not turn that channel off. Five queries whatever the audience.
    """
    holders = list(promotion_audience(promotion=promotion))
    users = {person.user_id for person in holders if person.user_id}
    preferences = {p.user_id: p for p in Preference.objects.filter(user_id__in=users)}
    consented = consent_given_pairs(pairs={(person.pk, promotion.clinic_id) for person in holders if person.user_id})
    sms = email = 0
    for person in holders:
        preference = (preferences.get(person.user_id) if person.user_id else None) or Preference()
        if not person.user_id or (person.pk, promotion.clinic_id) not in consented or preference.opted_out or not preference.promotions:
            continue
        channels = {channel for channel, _to in patient_channels(patient=person, preference=preference)}
        sms += Delivery.Channel.SMS in channels
        email += Delivery.Channel.EMAIL in channels
    return AudienceSize(people=len(holders), sms=sms, email=email)


@dataclass(frozen=True)
class ChannelReach:
    """One channel's deliveries: waiting (or being sent), accepted by the provider, confirmed delivered, failed."""

    queued: int
    sent: int
    delivered: int
    failed: int


@dataclass(frozen=True)
class Reach:
    reached: int
    opened: int
    booked_after: int
    channels: dict[str, ChannelReach]

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.channels.values())

    @property
    def delivered(self) -> int:
        return sum(c.delivered for c in self.channels.values())

    @property
    def opened_share(self) -> int | None:
        return round(100 * self.opened / self.reached) if self.reached else None

    @property
    def booked_share(self) -> int | None:
        return round(100 * self.booked_after / self.reached) if self.reached else None


# Delivery statuses counted under each per-channel figure ("sent" includes what was delivered since).
CHANNEL_FIGURES = {
    "queued": (Delivery.Status.PENDING, Delivery.Status.SENDING),
    "sent": (Delivery.Status.SENT, Delivery.Status.DELIVERED),
    "delivered": (Delivery.Status.DELIVERED,),
    "failed": (Delivery.Status.FAILED, Delivery.Status.UNKNOWN),  # unknown: not known to have reached the person
}


def booked_after(*, promotion: Promotion) -> Exists:
    """Whether a receipt's person booked because of it, as an expression over Receipt rows.

    The account holder or a dependant booked a visit in the promotion's clinic between the
    receipt and the end of `valid_until` in the clinic's zone; booked by anyone (staff too:
    the patient may have called). A move is not a new booking, so only first bookings count,
    and a visit the clinic cancelled does not count unless it was cancelled by moving it.
    """
    ends = datetime.combine(promotion.valid_until + timedelta(days=1), time.min, tzinfo=promotion.clinic.tz)
    visits = Visit.objects.filter(
        Q(patient_id=OuterRef("patient_id")) | Q(patient__guardian_id=OuterRef("patient_id")),
        clinic_id=promotion.clinic_id,
        rescheduled_from__isnull=True,
        created_at__gte=OuterRef("created_at"),
        created_at__lt=ends,
    ).exclude(
        Q(status=Visit.Status.CANCELLED, cancelled_by=Visit.CancelledBy.CLINIC, rescheduled_to__isnull=True),
    )
    return Exists(visits)


def promotion_reach(*, promotion: Promotion) -> Reach:
    """What the manager sees after launch: reached, opened, booked after, and per channel what happened to the SMS/e-mail.

    Two queries (one aggregate over receipts, one over deliveries), however many people were reached.
    """
    people = Receipt.objects.filter(promotion=promotion).aggregate(
        reached=Count("pk"),
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        booked_after=Count("pk", filter=Q(booked_after(promotion=promotion))),
    )
    counts = Delivery.objects.filter(notification__promotion=promotion).aggregate(
        **{
            f"{channel}_{figure}": Count("pk", filter=Q(channel=channel, status__in=statuses))
            for channel in Delivery.Channel.values
            for figure, statuses in CHANNEL_FIGURES.items()
        }
    )
    channels = {
        channel: ChannelReach(**{figure: counts[f"{channel}_{figure}"] for figure in CHANNEL_FIGURES})
        for channel in Delivery.Channel.values
    }
    return Reach(channels=channels, **people)


@dataclass(frozen=True)
class PortalPromotion:
    promotion: Promotion
    unread: bool  # not opened yet: highlighted, as the clinic's card on the portal home


def portal_promotions(*, patient: Patient) -> list[PortalPromotion]:
    """Promotions running today in the person's clinics that are meant for them, newest first.

    Meant for them: it reached them at launch (a receipt), or they are in its audience now — a patient who
    became a contact after the launch sees it while it runs, as those reached by it do. Clinics whose
    consent the person withdrew show nothing (they no longer write to them).
    """
    holder = patient.account_holder
    now = timezone.now()
    family = Q(patient=holder) | Q(patient__guardian=holder)
    clinic_ids = set(Contact.objects.filter(family, merged_into__isnull=True).values_list("clinic_id", flat=True))
    consented = {clinic_id for _patient, clinic_id in consent_given_pairs(pairs={(holder.pk, c) for c in clinic_ids})}
    running = list(
        Promotion.objects.filter(
            # A promotion runs from its first to the end of its last day in its clinic's zone; no zone's date
            # is more than a day from UTC's, so the query keeps a day's margin and each clinic's own date decides.
            status=Promotion.Status.LAUNCHED,
            clinic_id__in=consented,
            valid_from__lte=now.date() + timedelta(days=1),
            valid_until__gte=now.date() - timedelta(days=1),
        )
        .select_related("clinic")
        .prefetch_related("tags")
        .order_by("-launched_at", "-pk")
    )
    running = [p for p in running if p.valid_from <= timezone.localtime(now, p.clinic.tz).date() <= p.valid_until]
    opened = dict(Receipt.objects.filter(patient=holder, promotion__in=running).values_list("promotion_id", "opened_at"))
    meant = _meant_for_family(holder=holder, promotions=[p for p in running if p.pk not in opened])
    return [
        PortalPromotion(promotion=promotion, unread=opened.get(promotion.pk) is None)
        for promotion in running
        if promotion.pk in opened or promotion.pk in meant
    ]


def _meant_for_family(*, holder: Patient, promotions: list[Promotion]) -> set[int]:
    """Which of `promotions` have the holder in their audience now (they or a dependant match): one query for all."""
    if not promotions:
        return set()
    family = Q(pk=holder.pk) | Q(guardian_id=holder.pk)
    audiences = [Q(pk=promotion.pk) & Q(Exists(_people_matching(promotion).filter(family))) for promotion in promotions]
    return set(Promotion.objects.filter(reduce(operator.or_, audiences)).values_list("pk", flat=True))


def unopened_by_clinic(*, patient: Patient) -> dict[int, Promotion]:
    """{clinic_id: promotion} for running promotions the person has not opened: their clinics stay highlighted."""
    unopened: dict[int, Promotion] = {}
    for item in reversed(portal_promotions(patient=patient)):  # the oldest unopened one per clinic, as before
        if item.unread:
            unopened.setdefault(item.promotion.clinic_id, item.promotion)
    return unopened


def promotion_for_patient(*, patient: Patient, promotion_id: int) -> Promotion | None:
    """A promotion that reached the person (any time), or one running now that is meant for them."""
    reached: Promotion | None = (
        Promotion.objects.filter(pk=promotion_id, receipts__patient=patient.account_holder, status=Promotion.Status.LAUNCHED)
        .select_related("clinic")
        .first()
    )
    if reached is not None:
        return reached
    return next((item.promotion for item in portal_promotions(patient=patient) if item.promotion.pk == promotion_id), None)
