"""Portal pages that gather several apps: the home shows a patient's clinics with their conversations
(messaging) and unopened promotions (promotions), which are above patients in the layers.

Its URL keeps its name `patients:home` (clinic_crm/urls.py adds it to the patients' pages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render

from clinics.models import Clinic
from core.requests import PortalRequest
from messaging import selectors as message_selectors
from patients import selectors
from patients.views import patient_required
from promotions.selectors import unopened_by_clinic


@dataclass
class ClinicCard:
    """One clinic on the portal home: consent, conversations, who to write to."""

    clinic: Clinic
    contact: Any = None  # the account holder's own card there (consent controls), if any
    clinic_thread: Any = None  # the holder's thread with the clinic
    doctors: list[tuple[Any, Any]] = field(default_factory=list)  # (doctor, the holder's thread with them or None)
    other_threads: list[Any] = field(default_factory=list)  # dependants' threads, threads with doctors no longer listed
    promotion: Any = None  # a running promotion not opened yet: the card stays highlighted until it is


def _clinic_cards(request: PortalRequest, contacts) -> list[ClinicCard]:
    holder = request.patient
    cards: dict[int, ClinicCard] = {}
    for contact in contacts:
        card = cards.setdefault(contact.clinic_id, ClinicCard(clinic=contact.clinic))
        if contact.patient_id == holder.pk:
            card.contact = contact
    threads = [t for t in message_selectors.patient_threads(user=request.user) if t.clinic_id in cards]
    unopened = unopened_by_clinic(patient=holder)
    for card in cards.values():
        mine = {t.doctor_id: t for t in threads if t.clinic_id == card.clinic.pk and t.patient_id == holder.pk}
        card.clinic_thread = mine.pop(None, None)
        card.doctors = [(doctor, mine.pop(doctor.pk, None)) for doctor in message_selectors.portal_doctors_to_write(clinic=card.clinic)]
        card.other_threads = [t for t in threads if t.clinic_id == card.clinic.pk and (t.patient_id != holder.pk or t.doctor_id in mine)]
        card.promotion = unopened.get(card.clinic.pk)
    # Clinics with news come first, as in the messengers patients know.
    return sorted(cards.values(), key=lambda card: card.promotion is None)


@patient_required
def home(request: PortalRequest) -> HttpResponse:
    contacts = selectors.patient_clinics(patient=request.patient)
    cards = _clinic_cards(request, contacts)
    return render(
        request,
        "patients/home.html",
        {
            "patient": request.patient,
            "contacts": contacts,
            "cards": cards,
            "new_promotions": sum(1 for card in cards if card.promotion),
            "family": selectors.patient_family(patient=request.patient)[1:],
        },
    )
