"""The portal's promotion page: opening it is what ends the clinic's highlight."""

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from core.requests import PortalRequest
from patients.views import patient_required
from promotions import selectors, services


@patient_required
def promotion_list(request: PortalRequest) -> HttpResponse:
    """What the person's clinics offer now, the ones not opened yet highlighted."""
    return render(request, "promotions/promotion_list.html", {"items": selectors.portal_promotions(patient=request.patient)})


@patient_required
def promotion(request: PortalRequest, pk: int) -> HttpResponse:
    found = selectors.promotion_for_patient(patient=request.patient, promotion_id=pk)
    if found is None:
        raise Http404(_("No such promotion."))
    services.promotion_open(patient=request.patient, promotion=found)
    return render(request, "promotions/promotion.html", {"promotion": found, "patient": request.patient})
