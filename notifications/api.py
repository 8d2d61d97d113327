"""The patient's own reminders over the API: the same rules as the portal page, one call to notifications.services each.

Portal accounts only (staff get 403): a reminder belongs to a family, never to a clinic's records.
Another family's reminder is 404, as if it did not exist.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from clinics.models import Clinic
from core.api import BoundedDateField, MomentField
from notifications import selectors, services
from notifications.models import PersonalReminder
from patients.api import IsPatient


class ReminderClinicOut(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    time_zone = serializers.CharField()


class ReminderPersonOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="full_name")


class ReminderOut(serializers.ModelSerializer):
    patient = ReminderPersonOut()
    clinic = ReminderClinicOut()
    next_at = serializers.SerializerMethodField()

    class Meta:
        model = PersonalReminder
        fields = ("id", "patient", "clinic", "text", "next_at", "repeat", "repeat_until", "is_active")

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_next_at(self, reminder: PersonalReminder) -> str:
        """In the clinic's zone with its offset: the reminder goes out on the clinic's clock."""
        return reminder.local_next_at.isoformat()


class ReminderIn(serializers.Serializer):
    text = serializers.CharField(max_length=200, help_text="What to remind about, as it will be sent")
    clinic = serializers.IntegerField(min_value=1, help_text="The clinic whose notice it arrives as (its consent is needed)")
    patient = serializers.IntegerField(min_value=1, required=False, help_text="Default: yourself; or one of your dependants")
    next_at = MomentField(help_text="ISO 8601 with the offset, e.g. 2026-12-14T10:00:00+03:00; in the future")
    repeat = serializers.ChoiceField(choices=PersonalReminder.Repeat.choices, default=PersonalReminder.Repeat.ONCE)
    repeat_until = BoundedDateField(required=False, allow_null=True, help_text="The last day of a daily or weekly reminder")


class ReminderViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Reminders the signed-in patient set for themselves and their dependants."""

    serializer_class = ReminderOut
    permission_classes = [IsPatient]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PersonalReminder.objects.none()
        everything = self.action == "list" and self.request.query_params.get("all") in ("1", "true")
        return selectors.reminders_of(patient=self.request.patient, include_inactive=everything)

    @extend_schema(
        parameters=[OpenApiParameter("all", OpenApiTypes.BOOL, description="Also ended and removed reminders (default: active only)")],
        summary="My reminders",
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ReminderIn, responses={201: ReminderOut}, summary="Set a reminder")
    def create(self, request):
        data = ReminderIn(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        family = selectors.reminder_family(patient=request.patient)
        person_id = params.get("patient", request.patient.pk)
        person = next((p for p in family if p.pk == person_id), None)
        if person is None:
            raise serializers.ValidationError({"patient": [_("This person is not in your family.")]})
        clinic = Clinic.objects.filter(pk=params["clinic"], is_active=True).first()
        if clinic is None:
            raise serializers.ValidationError({"clinic": [_("No such clinic.")]})
        reminder = services.personal_reminder_add(
            actor=request.user,
            patient=person,
            clinic=clinic,
            text=params["text"],
            next_at=params["next_at"],
            repeat=params["repeat"],
            repeat_until=params.get("repeat_until"),
        )
        return Response(ReminderOut(reminder).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, summary="Remove a reminder (nothing more is sent)")
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.personal_reminder_cancel(actor=self.request.user, reminder=instance)
