"""Portal API: sign-in by code, profile, family, consent and clinic contacts.

Views only translate HTTP to service calls; errors become 4xx in clinic_crm.api.
"""

from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.destinations import parse_destination
from clinics.models import Clinic
from core.api import BoundedDateField, E164Field
from core.openapi import RETRY_AFTER, refusals
from core.requests import client_ip, user_agent
from patients import selectors, services
from patients.models import ConsentRecord, Patient


class IsPatient(permissions.BasePermission):
    message = gettext_lazy("Sign in to the patient portal first.")

    def has_permission(self, request, view) -> bool:
        request.patient = selectors.patient_for_user(request.user)
        return request.patient is not None


def _destination(raw: str):
    try:
        return parse_destination(raw)
    except ValidationError as exc:
        raise ValidationError({"destination": exc.messages}) from None


class PatientOut(serializers.ModelSerializer):
    phone = E164Field(allow_null=True)

    class Meta:
        model = Patient
        fields = ("id", "full_name", "birth_date", "phone", "email", "relation")


class DestinationIn(serializers.Serializer):
    destination = serializers.CharField(help_text="Phone (+7…) or e-mail", max_length=254)


class CodeIn(DestinationIn):
    code = serializers.CharField(max_length=12)


class CodeSentOut(serializers.Serializer):
    channel = serializers.CharField()
    destination = serializers.CharField()
    expires_in = serializers.IntegerField()


CODE_LIMITS = refusals(**{"429": "Too many codes asked for or wrong codes typed: wait Retry-After seconds"})


class CodeRequestView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=DestinationIn,
        responses={202: CodeSentOut, **CODE_LIMITS},
        parameters=[RETRY_AFTER],
        summary="Send a sign-in code by SMS or e-mail",
    )
    def post(self, request):
        data = DestinationIn(data=request.data)
        data.is_valid(raise_exception=True)
        destination = _destination(data.validated_data["destination"])
        issued = services.portal_code_request(destination=destination, ip=client_ip(request))
        return Response(
            {"channel": destination.channel, "destination": destination.value, "expires_in": issued.expires_in},
            status=status.HTTP_202_ACCEPTED,
        )


class CodeVerifyView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=CodeIn,
        responses={
            200: inline_serializer("SignedIn", {"patient": PatientOut(), "created": serializers.BooleanField()}),
            **CODE_LIMITS,
        },
        parameters=[RETRY_AFTER],
        summary="Sign in (or sign up) with the code",
    )
    def post(self, request):
        data = CodeIn(data=request.data)
        data.is_valid(raise_exception=True)
        destination = _destination(data.validated_data["destination"])
        patient, created = services.portal_sign_in(destination=destination, code=data.validated_data["code"], ip=client_ip(request))
        login(request, patient.user, backend="django.contrib.auth.backends.ModelBackend")
        return Response({"patient": PatientOut(patient).data, "created": created})


class LogoutView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileIn(serializers.Serializer):
    full_name = serializers.CharField(max_length=200)
    birth_date = BoundedDateField(required=False, allow_null=True)


class MeView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(responses=PatientOut)
    def get(self, request):
        return Response(PatientOut(request.patient).data)

    @extend_schema(request=ProfileIn, responses=PatientOut)
    def patch(self, request):
        data = ProfileIn(data=request.data)
        data.is_valid(raise_exception=True)
        patient = services.patient_update_profile(
            patient=request.patient,
            actor=request.user,
            full_name=data.validated_data["full_name"],
            birth_date=data.validated_data.get("birth_date"),
        )
        return Response(PatientOut(patient).data)


class ContactChangeRequestView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        request=DestinationIn,
        responses={202: CodeSentOut, **CODE_LIMITS},
        parameters=[RETRY_AFTER],
        summary="Send a code to a new phone or e-mail",
    )
    def post(self, request):
        data = DestinationIn(data=request.data)
        data.is_valid(raise_exception=True)
        destination = _destination(data.validated_data["destination"])
        issued = services.patient_contact_change_request(patient=request.patient, destination=destination, ip=client_ip(request))
        return Response(
            {"channel": destination.channel, "destination": destination.value, "expires_in": issued.expires_in},
            status=status.HTTP_202_ACCEPTED,
        )


class ContactChangeConfirmView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        request=CodeIn, responses={200: PatientOut, **CODE_LIMITS}, parameters=[RETRY_AFTER], summary="Switch to the new phone or e-mail"
    )
    def post(self, request):
        data = CodeIn(data=request.data)
        data.is_valid(raise_exception=True)
        destination = _destination(data.validated_data["destination"])
        patient = services.patient_contact_change_confirm(
            patient=request.patient, destination=destination, code=data.validated_data["code"], ip=client_ip(request)
        )
        return Response(PatientOut(patient).data)


class DependantIn(serializers.Serializer):
    full_name = serializers.CharField(max_length=200)
    birth_date = BoundedDateField(required=False, allow_null=True)
    relation = serializers.ChoiceField(choices=[c for c in Patient.Relation.choices if c[0] != Patient.Relation.SELF])


class DependantListView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(responses=PatientOut(many=True))
    def get(self, request):
        return Response(PatientOut(selectors.patient_family(patient=request.patient)[1:], many=True).data)

    @extend_schema(request=DependantIn, responses={201: PatientOut})
    def post(self, request):
        data = DependantIn(data=request.data)
        data.is_valid(raise_exception=True)
        dependant = services.dependant_add(guardian=request.patient, **_dependant_kwargs(data.validated_data))
        return Response(PatientOut(dependant).data, status=status.HTTP_201_CREATED)


def _dependant_kwargs(data: dict) -> dict:
    return {"full_name": data["full_name"], "birth_date": data.get("birth_date"), "relation": data["relation"]}


class DependantDetailView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(request=DependantIn, responses=PatientOut)
    def patch(self, request, pk: int):
        dependant = selectors.patient_dependant_get(guardian=request.patient, dependant_id=pk)
        data = DependantIn(data=request.data)
        data.is_valid(raise_exception=True)
        dependant = services.dependant_update(dependant=dependant, **_dependant_kwargs(data.validated_data))
        return Response(PatientOut(dependant).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        dependant = selectors.patient_dependant_get(guardian=request.patient, dependant_id=pk)
        services.dependant_remove(dependant=dependant)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExportView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(responses={200: dict}, summary="Download everything we hold about you (JSON)")
    def get(self, request):
        response = JsonResponse(selectors.patient_export(patient=request.patient), json_dumps_params={"ensure_ascii": False, "indent": 2})
        response["Content-Disposition"] = 'attachment; filename="my-data.json"'
        return response


class ConsentDocumentOut(serializers.Serializer):
    clinic = serializers.CharField(source="clinic.slug")
    version = serializers.IntegerField()
    title = serializers.CharField()
    text = serializers.CharField()
    text_sha256 = serializers.CharField()
    published_at = serializers.DateTimeField()


class ConsentIn(serializers.Serializer):
    version = serializers.IntegerField(help_text="The version of the text the patient read")


class ConsentRecordOut(serializers.ModelSerializer):
    class Meta:
        model = ConsentRecord
        fields = ("action", "document_version", "text_sha256", "at", "channel")


class ClinicConsentView(APIView):
    """GET the current text (public); POST to accept it; DELETE to withdraw."""

    def get_permissions(self):
        return [permissions.AllowAny()] if self.request.method == "GET" else [IsPatient()]

    @extend_schema(responses=ConsentDocumentOut)
    def get(self, request, slug: str):
        clinic = get_object_or_404(Clinic, slug=slug, is_active=True)
        document = selectors.consent_current_document(clinic=clinic)
        if document is None:
            return Response({"code": "not_found", "detail": _("This clinic has not published its consent text yet.")}, status=404)
        return Response(ConsentDocumentOut(document).data)

    @extend_schema(
        request=ConsentIn,
        responses={
            201: ConsentRecordOut,
            **refusals(**{"409": "The clinic has published a newer text than the version given: read it first"}),
        },
    )
    def post(self, request, slug: str):
        clinic = get_object_or_404(Clinic, slug=slug, is_active=True)
        data = ConsentIn(data=request.data)
        data.is_valid(raise_exception=True)
        record = services.consent_grant(
            patient=request.patient,
            clinic=clinic,
            document_version=data.validated_data["version"],
            ip=client_ip(request),
            user_agent=user_agent(request),
            channel=ConsentRecord.Channel.API,
        )
        return Response(ConsentRecordOut(record).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ConsentRecordOut})
    def delete(self, request, slug: str):
        clinic = get_object_or_404(Clinic, slug=slug, is_active=True)
        record = services.consent_withdraw(
            patient=request.patient, clinic=clinic, ip=client_ip(request), user_agent=user_agent(request), channel=ConsentRecord.Channel.API
        )
        return Response(ConsentRecordOut(record).data)


class ContactIn(serializers.Serializer):
    person = serializers.IntegerField(required=False, help_text="A family member's id; yourself when omitted")
    utm_source = serializers.CharField(required=False, max_length=100)
    utm_medium = serializers.CharField(required=False, max_length=100)
    utm_campaign = serializers.CharField(required=False, max_length=100)
    utm_content = serializers.CharField(required=False, max_length=100)
    utm_term = serializers.CharField(required=False, max_length=100)
    referrer = serializers.URLField(required=False, max_length=500)


class ContactOut(serializers.Serializer):
    clinic = serializers.CharField(source="clinic.slug")
    clinic_name = serializers.CharField(source="clinic.name")
    person = serializers.IntegerField(source="patient_id")
    person_name = serializers.CharField(source="patient.full_name")
    first_contact_at = serializers.DateTimeField()
    source_channel = serializers.CharField()


class ClinicContactView(APIView):
    """Become a contact of the clinic (yourself or a family member). Needs consent first."""

    permission_classes = [IsPatient]

    @extend_schema(request=ContactIn, responses={201: ContactOut, 200: ContactOut, 403: dict})
    def post(self, request, slug: str):
        clinic = get_object_or_404(Clinic, slug=slug, is_active=True)
        data = ContactIn(data=request.data)
        data.is_valid(raise_exception=True)
        person = request.patient
        if "person" in data.validated_data and data.validated_data["person"] != person.pk:
            person = selectors.patient_dependant_get(guardian=request.patient, dependant_id=data.validated_data["person"])
        attribution = services.Attribution.from_query(data.validated_data, referrer=data.validated_data.get("referrer", ""))
        contact, created = services.contact_start(patient=person, clinic=clinic, attribution=attribution)
        return Response(ContactOut(contact).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MyClinicsView(APIView):
    permission_classes = [IsPatient]

    @extend_schema(responses=ContactOut(many=True))
    def get(self, request):
        return Response(ContactOut(selectors.patient_clinics(patient=request.patient), many=True).data)
