"""Booking API: free slots (public), visits (the portal's and the clinic's, one endpoint with tenancy), set-up for staff.

Visits are read through `Visit.objects.visible_to(user)`: a patient sees
their family's visits in every clinic, staff their clinic's, a doctor their own.
Every write is one call to appointments.services.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from appointments import selectors, services
from appointments.models import BookingRules, ScheduleException, ScheduleRule, Visit, WaitlistEntry
from clinics.api import CatalogueViewSet, _serializer
from clinics.models import Clinic, Doctor, Service
from clinics.tenancy import FRONT_DESK, clinics_with_role, portal_holder_id
from core import client_input
from core.api import BoundedDateField, MomentField
from core.openapi import refusals
from messaging.models import Thread
from messaging.payloads import STAFF, message_item
from patients.models import Patient

# --- slots -------------------------------------------------------------------------------------


class SlotOut(serializers.Serializer):
    doctor = serializers.IntegerField()
    doctor_name = serializers.CharField()
    starts_at = serializers.DateTimeField(help_text="In the clinic's time zone, with its offset")
    ends_at = serializers.DateTimeField()
    branch = serializers.IntegerField(allow_null=True)
    room = serializers.CharField()


class SlotDayOut(serializers.Serializer):
    date = serializers.DateField()
    slots = SlotOut(many=True)


class SlotSearchOut(serializers.Serializer):
    clinic = serializers.CharField()
    time_zone = serializers.CharField()
    service = serializers.IntegerField(allow_null=True)
    days = SlotDayOut(many=True)


def slot_json(clinic: Clinic, slot: selectors.Slot, names: dict[int, str]) -> dict:
    return {
        "doctor": slot.doctor_id,
        "doctor_name": names.get(slot.doctor_id, ""),
        "starts_at": timezone.localtime(slot.starts_at, clinic.tz).isoformat(),
        "ends_at": timezone.localtime(slot.ends_at, clinic.tz).isoformat(),
        "branch": slot.branch_id,
        "room": slot.room,
    }


def slots_json(clinic: Clinic, slots: list[selectors.Slot]) -> list[dict]:
    names = dict(Doctor.objects.filter(pk__in={s.doctor_id for s in slots}).values_list("pk", "full_name"))
    return [slot_json(clinic, slot, names) for slot in slots]


class SlotQuery(serializers.Serializer):
    service = serializers.IntegerField(required=False, min_value=1)
    doctor = serializers.IntegerField(required=False, min_value=1)
    specialty = serializers.IntegerField(required=False, min_value=1)
    date_from = BoundedDateField(required=False, input_formats=["%Y-%m-%d"])
    days = serializers.IntegerField(required=False, min_value=1, max_value=selectors.MAX_SEARCH_DAYS, default=14)


class SlotSearchView(APIView):
    """Free times of a clinic's doctors, day by day. Public: anyone may look before signing in."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[SlotQuery], responses=SlotSearchOut, summary="Free slots of a clinic over a date range")
    def get(self, request, slug: str):
        clinic = get_object_or_404(Clinic, slug=slug, is_active=True)
        query = SlotQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        service = None
        if "service" in params:
            service = Service.objects.filter(clinic=clinic, pk=params["service"], is_active=True).first()
            if service is None:
                raise serializers.ValidationError({"service": [_("This clinic has no such service.")]})
        doctor_ids = None
        if "doctor" in params:
            if not Doctor.objects.filter(clinic=clinic, pk=params["doctor"], is_active=True).exists():
                raise serializers.ValidationError({"doctor": [_("This clinic has no such doctor.")]})
            doctor_ids = [params["doctor"]]
        today = timezone.localtime(timezone.now(), clinic.tz).date()
        date_from = max(params.get("date_from") or today, today)
        staff = request.user.is_superuser or clinic.pk in clinics_with_role(request.user, FRONT_DESK)
        slots = selectors.free_slots(
            clinic=clinic,
            date_from=date_from,
            days=params["days"],
            service=service,
            doctor_ids=doctor_ids,
            specialty_id=params.get("specialty"),
            for_patient=not staff,
            patient_id=portal_holder_id(request.user),  # a signed-in patient is not offered times they already hold elsewhere
        )
        days = [
            {"date": day, "slots": slots_json(clinic, day_slots)} for day, day_slots in selectors.slots_by_day(clinic=clinic, slots=slots)
        ]
        return Response({"clinic": clinic.slug, "time_zone": clinic.time_zone, "service": service.pk if service else None, "days": days})


# --- visits ------------------------------------------------------------------------------------


class VisitOut(serializers.ModelSerializer):
    clinic = serializers.SerializerMethodField()
    doctor = serializers.SerializerMethodField()
    patient = serializers.SerializerMethodField()
    service = serializers.SerializerMethodField()
    starts_at = serializers.SerializerMethodField()
    ends_at = serializers.SerializerMethodField()
    status_label = serializers.CharField(source="get_status_display")
    can_cancel = serializers.SerializerMethodField()
    calendar_url = serializers.SerializerMethodField()

    class Meta:
        model = Visit
        fields = (
            "id", "clinic", "doctor", "patient", "service", "starts_at", "ends_at", "status", "status_label", "source",
            "room", "cancelled_by", "cancel_reason", "cancelled_late", "rescheduled_from", "thread", "created_at", "can_cancel",
            "calendar_url",
        )  # fmt: skip

    def get_clinic(self, visit) -> dict:
        return {"id": visit.clinic_id, "slug": visit.clinic.slug, "name": visit.clinic.name, "time_zone": visit.clinic.time_zone}

    def get_doctor(self, visit) -> dict:
        return {"id": visit.doctor_id, "name": visit.doctor.full_name}

    def get_patient(self, visit) -> dict:
        return {"id": visit.patient_id, "name": visit.patient.full_name}

    def get_service(self, visit) -> dict:
        return {"id": visit.service_id, "name": visit.service.name, "duration_minutes": visit.service.duration_minutes}

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_starts_at(self, visit) -> str:
        return visit.local_start.isoformat()

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_ends_at(self, visit) -> str:
        return visit.local_end.isoformat()

    def get_can_cancel(self, visit) -> bool:
        return visit.is_upcoming

    def get_calendar_url(self, visit) -> str:
        return f"/api/visits/{visit.pk}/calendar/"


class VisitIn(serializers.Serializer):
    doctor = serializers.IntegerField(min_value=1)
    service = serializers.IntegerField(min_value=1)
    starts_at = MomentField(help_text="ISO 8601 with the offset, e.g. 2026-12-14T10:00:00+03:00")
    patient = serializers.IntegerField(min_value=1, required=False, help_text="Default: yourself (portal)")
    thread = serializers.IntegerField(min_value=1, required=False, help_text="Booked from this conversation")
    offer = serializers.IntegerField(min_value=1, required=False, help_text="A freed-slot offer made to this patient")
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a declared field, not Field.source: the metaclass takes it
        choices=[Visit.Source.OPERATOR, Visit.Source.PHONE], required=False, help_text="Staff only"
    )


class MoveIn(serializers.Serializer):
    starts_at = MomentField()
    doctor = serializers.IntegerField(min_value=1, required=False)
    service = serializers.IntegerField(min_value=1, required=False)


class CancelIn(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class MarkIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=[Visit.Status.COMPLETED, Visit.Status.NO_SHOW])


def _not_found(field: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({field: [message]})


def _patient_for(user, patient_id: int | None) -> Patient:
    """Who the visit is for: a portal user's own family, or a patient the staff member's clinic knows."""
    holder_id = portal_holder_id(user)
    if holder_id is not None:
        if patient_id is None:
            return Patient.objects.get(pk=holder_id)
        patient = (
            Patient.objects.filter(pk=patient_id).filter(pk=holder_id).first()
            or Patient.objects.filter(pk=patient_id, guardian_id=holder_id).first()
        )
    else:
        if patient_id is None:
            raise _not_found("patient", _("Choose the patient."))
        patient = Patient.objects.visible_to(user).filter(pk=patient_id).first()
    if patient is None:
        raise _not_found("patient", _("No such patient among yours."))
    return patient


def _doctor_and_service(doctor_id: int, service_id: int, clinic: Clinic | None = None) -> tuple[Doctor, Service]:
    doctor = Doctor.objects.select_related("clinic").filter(pk=doctor_id, is_active=True).first()
    if doctor is None or (clinic is not None and doctor.clinic_id != clinic.pk):
        raise _not_found("doctor", _("No such doctor."))
    service = Service.objects.filter(pk=service_id, is_active=True).first()
    if service is None:
        raise _not_found("service", _("No such service."))
    return doctor, service


def _parse_date(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return client_input.parse_date(value)
    except client_input.ClientInputError as exc:
        raise _not_found(field, exc.message) from None
    except ValueError:
        raise _not_found(field, _("Give the date as YYYY-MM-DD.")) from None


SLOT_TAKEN = refusals(**{"409": "The time was taken meanwhile (or clashes with another visit); `alternatives` lists free ones"})


class VisitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Visits: the patient's own (portal) or the clinic's (staff), with booking, moves, cancellations and attendance."""

    serializer_class = VisitOut
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        visits = selectors.visits_visible(user=self.request.user)
        if self.action != "list":
            return visits
        params = self.request.query_params
        if params.get("upcoming") in ("1", "true"):
            visits = visits.filter(status__in=Visit.UPCOMING, ends_at__gt=timezone.now())
        if date_from := _parse_date(params.get("date_from"), "date_from"):
            visits = visits.filter(starts_at__date__gte=date_from)
        if date_to := _parse_date(params.get("date_to"), "date_to"):
            visits = visits.filter(starts_at__date__lte=date_to)
        if params.get("status") in Visit.Status.values:
            visits = visits.filter(status=params["status"])
        if (doctor_id := client_input.whole_number(params.get("doctor"))) is not None:
            visits = visits.filter(doctor_id=doctor_id)
        return visits.order_by("starts_at", "pk")

    @extend_schema(
        parameters=[
            OpenApiParameter("upcoming", OpenApiTypes.BOOL),
            OpenApiParameter("date_from", OpenApiTypes.DATE),
            OpenApiParameter("date_to", OpenApiTypes.DATE),
            OpenApiParameter("status", OpenApiTypes.STR, enum=Visit.Status.values),
            OpenApiParameter("doctor", OpenApiTypes.INT),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=VisitIn, responses={201: VisitOut, **SLOT_TAKEN}, summary="Book a visit")
    def create(self, request):
        data = VisitIn(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        doctor, service = _doctor_and_service(params["doctor"], params["service"])
        patient = _patient_for(request.user, params.get("patient"))
        thread = None
        if "thread" in params:
            thread = Thread.objects.visible_to(request.user).filter(pk=params["thread"]).first()
            if thread is None:
                raise _not_found("thread", _("No such conversation."))
        offer = None
        if "offer" in params:
            offer = selectors.open_offer(offer_id=params["offer"], patient_id=patient.pk)
            if offer is None:
                raise _not_found("offer", _("This offer was not made to you."))
        source = params.get("source") if portal_holder_id(request.user) is None else None
        visit = services.visit_book(
            actor=request.user,
            clinic=doctor.clinic,
            doctor=doctor,
            service=service,
            patient=patient,
            starts_at=params["starts_at"],
            source=source,
            thread=thread,
            offer=offer,
        )
        return Response(VisitOut(selectors.visit_for(user=request.user, visit_id=visit.pk)).data, status=status.HTTP_201_CREATED)

    def _done(self, visit: Visit, code: int = status.HTTP_200_OK) -> Response:
        return Response(VisitOut(selectors.visit_for(user=self.request.user, visit_id=visit.pk)).data, status=code)

    @extend_schema(request=CancelIn, responses=VisitOut, summary="Cancel a visit")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        data = CancelIn(data=request.data)
        data.is_valid(raise_exception=True)
        return self._done(services.visit_cancel(actor=request.user, visit=self.get_object(), reason=data.validated_data.get("reason", "")))

    @extend_schema(
        request=MoveIn, responses={201: VisitOut, **SLOT_TAKEN}, summary="Move a visit (the old one is cancelled, a new one created)"
    )
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        data = MoveIn(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        visit = self.get_object()
        doctor, service = _doctor_and_service(
            params.get("doctor", visit.doctor_id), params.get("service", visit.service_id), clinic=visit.clinic
        )
        moved = services.visit_reschedule(actor=request.user, visit=visit, starts_at=params["starts_at"], doctor=doctor, service=service)
        return self._done(moved, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=VisitOut, summary="Confirm a visit")
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._done(services.visit_confirm(actor=request.user, visit=self.get_object()))

    @extend_schema(request=MarkIn, responses=VisitOut, summary="Record attendance (staff)")
    @action(detail=True, methods=["post"])
    def mark(self, request, pk=None):
        data = MarkIn(data=request.data)
        data.is_valid(raise_exception=True)
        return self._done(services.visit_mark(actor=request.user, visit=self.get_object(), status=data.validated_data["status"]))

    @extend_schema(responses={(200, "text/calendar"): OpenApiTypes.BINARY}, summary="The visit as an .ics file")
    @action(detail=True, methods=["get"], url_path="calendar")
    def calendar(self, request, pk=None):
        return calendar_response(self.get_object())


def calendar_response(visit: Visit) -> HttpResponse:
    response = HttpResponse(selectors.visit_calendar_file(visit), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="visit-{visit.pk}.ics"'
    return response


# --- slots offered in a conversation -------------------------------------------------------------


class ProposedSlotIn(serializers.Serializer):
    doctor = serializers.IntegerField(min_value=1)
    service = serializers.IntegerField(min_value=1)
    starts_at = MomentField()


class ProposalIn(serializers.Serializer):
    slots = ProposedSlotIn(many=True, allow_empty=False, max_length=6)  # type: ignore[call-arg]  # many=True: ListSerializer's arguments
    text = serializers.CharField(max_length=500, required=False, allow_blank=True)


class ThreadSlotsView(APIView):
    """Staff offer times in a conversation: a message with buttons the patient books with one tap."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=ProposalIn, responses={201: OpenApiTypes.OBJECT}, summary="Offer free times in a thread")
    def post(self, request, pk: int):
        if portal_holder_id(request.user) is not None:
            raise PermissionDenied(_("Only the clinic offers times."))
        thread = get_object_or_404(Thread.objects.visible_to(request.user).select_related("clinic", "patient", "doctor"), pk=pk)
        data = ProposalIn(data=request.data)
        data.is_valid(raise_exception=True)
        slots = []
        for item in data.validated_data["slots"]:
            doctor, service = _doctor_and_service(item["doctor"], item["service"], clinic=thread.clinic)
            slots.append((doctor, service, item["starts_at"]))
        message = services.slots_propose(actor=request.user, thread=thread, slots=slots, text=data.validated_data.get("text", ""))
        return Response(message_item(message, audience=STAFF, thread=thread), status=status.HTTP_201_CREATED)


# --- staff set-up and reports --------------------------------------------------------------------


class ScheduleRuleViewSet(CatalogueViewSet):
    queryset = ScheduleRule.objects.select_related("doctor")
    serializer_class = _serializer(
        ScheduleRule, ("clinic", "doctor", "branch", "room", "weekday", "starts", "ends", "valid_from", "valid_until")
    )


class ScheduleExceptionViewSet(CatalogueViewSet):
    queryset = ScheduleException.objects.select_related("doctor")
    serializer_class = _serializer(
        ScheduleException, ("clinic", "doctor", "kind", "date_from", "date_to", "starts", "ends", "branch", "room", "note")
    )


class BookingRulesViewSet(CatalogueViewSet):
    queryset = BookingRules.objects.order_by("clinic_id")  # one row per clinic; pages need a fixed order
    serializer_class = _serializer(
        BookingRules, ("clinic", "min_notice_minutes", "horizon_days", "late_cancel_hours", "max_upcoming_visits", "default_slot_minutes")
    )


class WaitlistOut(serializers.ModelSerializer):
    patient_name = serializers.CharField(source="patient.full_name")
    doctor_name = serializers.CharField(source="doctor.full_name")
    service_name = serializers.CharField(source="service.name")

    class Meta:
        model = WaitlistEntry
        fields = ("id", "clinic", "doctor", "doctor_name", "patient", "patient_name", "service", "service_name", "created_at", "is_active")


class WaitlistIn(serializers.Serializer):
    doctor = serializers.IntegerField(min_value=1)
    service = serializers.IntegerField(min_value=1)
    patient = serializers.IntegerField(min_value=1, required=False)


class WaitlistViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The waiting list: patients join it for a doctor from the portal; staff add people who called."""

    serializer_class = WaitlistOut
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return selectors.waitlist_for(user=self.request.user)

    @extend_schema(request=WaitlistIn, responses={201: WaitlistOut}, summary="Join the waiting list of a doctor")
    def create(self, request):
        data = WaitlistIn(data=request.data)
        data.is_valid(raise_exception=True)
        doctor, service = _doctor_and_service(data.validated_data["doctor"], data.validated_data["service"])
        patient = _patient_for(request.user, data.validated_data.get("patient"))
        entry = services.waitlist_join(actor=request.user, patient=patient, doctor=doctor, service=service)
        return Response(WaitlistOut(entry).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.waitlist_leave(actor=self.request.user, entry=instance)


class AttendanceRowOut(serializers.Serializer):
    doctor_id = serializers.IntegerField()
    doctor_name = serializers.CharField()
    booked = serializers.IntegerField()
    came = serializers.IntegerField()
    no_show = serializers.IntegerField()
    cancelled_late = serializers.IntegerField()
    cancelled_in_time = serializers.IntegerField()
    upcoming = serializers.IntegerField()
    came_share = serializers.IntegerField(allow_null=True, help_text="Per cent of visits with a known outcome that took place")


class AttendanceView(APIView):
    """Where patients are lost, per doctor and period (owners and managers)."""

    permission_classes = [permissions.IsAuthenticated]
    denied = gettext_lazy("Only the clinic's owner or manager sees attendance.")

    @extend_schema(
        parameters=[
            OpenApiParameter("clinic", OpenApiTypes.INT, required=True),
            OpenApiParameter("date_from", OpenApiTypes.DATE),
            OpenApiParameter("date_to", OpenApiTypes.DATE),
        ],
        responses=AttendanceRowOut(many=True),
        summary="Attendance per doctor",
    )
    def get(self, request):
        from clinics.tenancy import CLINIC_ADMINS

        clinic_id = request.query_params.get("clinic", "")
        allowed = (
            Clinic.objects.all()
            if request.user.is_superuser
            else Clinic.objects.filter(pk__in=clinics_with_role(request.user, CLINIC_ADMINS))
        )
        clinic = allowed.filter(pk=pk).first() if (pk := client_input.whole_number(clinic_id)) is not None else None
        if clinic is None:
            raise PermissionDenied(self.denied)
        today = timezone.localtime(timezone.now(), clinic.tz).date()
        date_to = _parse_date(request.query_params.get("date_to"), "date_to") or today
        date_from = _parse_date(request.query_params.get("date_from"), "date_from") or date_to - timedelta(days=29)
        if date_from > date_to:
            raise _not_found("date_from", _("The start date must not be after the end date."))
        rows = selectors.attendance(user=request.user, clinic=clinic, date_from=date_from, date_to=date_to)
        return Response(AttendanceRowOut(rows, many=True).data)
