"""Staff API over patients: contacts of the caller's clinics, read-only people and logs."""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.models import AuditEvent
from clinics.models import Tag
from clinics.tenancy.api import TenantViewSetMixin
from core.api import E164Field
from patients.models import ConsentDocument, ConsentRecord, Contact, ContactChange, Patient
from patients.services import contact_update, contacts_merge


class PatientStaffOut(serializers.ModelSerializer):
    phone = E164Field(allow_null=True)

    class Meta:
        model = Patient
        fields = ("id", "full_name", "birth_date", "phone", "email", "relation", "guardian")


@extend_schema_serializer(component_name="StaffContactOut")
class ContactOut(serializers.ModelSerializer):
    patient = PatientStaffOut(read_only=True)
    tags: "serializers.SlugRelatedField[Any]" = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Contact
        fields = (
            "id", "clinic", "patient", "first_contact_at", "source_channel", "utm_source", "utm_medium",
            "utm_campaign", "utm_content", "utm_term", "referrer", "tags", "notes", "assigned_operator",
        )  # fmt: skip


@extend_schema_serializer(component_name="StaffContactIn")
class ContactIn(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    tags = serializers.PrimaryKeyRelatedField(many=True, required=False, queryset=Tag.objects.all())
    assigned_operator = serializers.PrimaryKeyRelatedField(required=False, allow_null=True, queryset=get_user_model().objects.all())


class MergeIn(serializers.Serializer):
    other = serializers.IntegerField(help_text="The other card of the same person; its threads move to this one")


class ContactViewSet(
    TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    queryset = Contact.objects.select_related("patient", "clinic", "assigned_operator").prefetch_related("tags")
    serializer_class = ContactOut

    def get_serializer_class(self):
        return ContactIn if self.request.method in ("PUT", "PATCH") else ContactOut

    def update(self, request, *args, **kwargs):
        contact = self.get_object()
        data = ContactIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        contact = contact_update(
            actor=request.user,
            contact=contact,
            notes=values.get("notes", contact.notes),
            tags=list(values["tags"]) if "tags" in values else list(contact.tags.all()),
            assigned_operator=values.get("assigned_operator", contact.assigned_operator),
        )
        return Response(ContactOut(self.get_queryset().get(pk=contact.pk)).data)

    @extend_schema(request=MergeIn, responses=ContactOut, summary="Merge another card of the same person into this one")
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        keep = self.get_object()
        data = MergeIn(data=request.data)
        data.is_valid(raise_exception=True)
        other = self.get_queryset().get(pk=data.validated_data["other"])
        merged = contacts_merge(actor=request.user, keep=keep, merge=other)
        return Response(ContactOut(self.get_queryset().get(pk=merged.pk)).data)


class PatientViewSet(TenantViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Patient.objects.all()
    serializer_class = PatientStaffOut


class ContactChangeOut(serializers.ModelSerializer):
    class Meta:
        model = ContactChange
        fields = ("id", "patient", "field", "old_value", "new_value", "changed_at")


class ContactChangeViewSet(TenantViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = ContactChange.objects.all()
    serializer_class = ContactChangeOut


@extend_schema_serializer(component_name="StaffConsentRecordOut")
class ConsentRecordOut(serializers.ModelSerializer):
    class Meta:
        model = ConsentRecord
        fields = ("id", "patient", "clinic", "action", "document_version", "text_sha256", "at", "ip", "user_agent", "channel")


class ConsentRecordViewSet(TenantViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = ConsentRecord.objects.all()
    serializer_class = ConsentRecordOut


class AuditEventOut(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ("id", "at", "actor", "clinic", "patient", "action", "target", "data")


class AuditEventViewSet(TenantViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventOut


@extend_schema_serializer(component_name="StaffConsentDocumentOut")
class ConsentDocumentOut(serializers.ModelSerializer):
    class Meta:
        model = ConsentDocument
        fields = ("id", "clinic", "version", "title", "text", "text_sha256", "published_at")


class ConsentDocumentViewSet(TenantViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = ConsentDocument.objects.all()
    serializer_class = ConsentDocumentOut
