"""Clinic API: the public catalogue the portal shows, and staff endpoints for set-up.

Staff endpoints go through TenantViewSetMixin (visible_to / editable_by) and
write through clinics.services.catalogue_save.
"""

from django.db import models
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from clinics import selectors
from clinics.models import Branch, Clinic, Doctor, Membership, Service, Specialty, Tag, WorkingHours
from clinics.services import catalogue_delete, catalogue_save, membership_grant
from clinics.tenancy.api import TenantViewSetMixin
from core.api import E164Field

# --- Public catalogue ---------------------------------------------------------------------------


class WorkingHoursOut(serializers.ModelSerializer):
    class Meta:
        model = WorkingHours
        fields = ("weekday", "opens", "closes", "branch")


class DoctorPublicOut(serializers.ModelSerializer):
    specialties: serializers.RelatedField = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Doctor
        fields = ("id", "full_name", "specialties", "bio", "photo")


class ServicePublicOut(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ("id", "name", "duration_minutes", "price_rub")


class ClinicPublicOut(serializers.ModelSerializer):
    phone = E164Field()
    working_hours = WorkingHoursOut(many=True, read_only=True)

    class Meta:
        model = Clinic
        fields = ("slug", "name", "time_zone", "phone", "address", "website", "working_hours")


class ClinicPublicDetailOut(ClinicPublicOut):
    doctors = DoctorPublicOut(many=True, read_only=True)
    services = ServicePublicOut(many=True, read_only=True)

    class Meta(ClinicPublicOut.Meta):
        fields = (*ClinicPublicOut.Meta.fields, "doctors", "services")  # type: ignore[assignment]  # a longer tuple than the base Meta


class PublicClinicListView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=ClinicPublicOut(many=True), summary="Clinics on the platform")
    def get(self, request):
        return Response(ClinicPublicOut(selectors.clinics_public(), many=True).data)


class PublicClinicDetailView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=ClinicPublicDetailOut, summary="A clinic's page: hours, doctors, services")
    def get(self, request, slug: str):
        return Response(ClinicPublicDetailOut(selectors.clinic_get_public(slug=slug)).data)


# --- Staff endpoints --------------------------------------------------------------------------


class CatalogueViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    """CRUD for a set-up model; every write is catalogue_save / catalogue_delete."""

    def _write(self, serializer, *, created: bool):
        data = dict(serializer.validated_data)
        m2m = {f.name: list(data.pop(f.name)) for f in self.queryset.model._meta.many_to_many if f.name in data}
        instance = serializer.instance or self.queryset.model()
        for name, value in data.items():
            setattr(instance, name, value)
        serializer.instance = catalogue_save(actor=self.request.user, instance=instance, created=created, changed=list(data), m2m=m2m)

    def perform_create(self, serializer):
        self._write(serializer, created=True)

    def perform_update(self, serializer):
        self._write(serializer, created=False)

    def perform_destroy(self, instance):
        catalogue_delete(actor=self.request.user, instance=instance)


def _serializer(model: type[models.Model], field_names: tuple[str, ...]) -> type[serializers.ModelSerializer]:
    meta = type("Meta", (), {"model": model, "fields": ("id",) + field_names})
    return type(f"{model.__name__}Staff", (serializers.ModelSerializer,), {"Meta": meta})


class ClinicSerializer(serializers.ModelSerializer):
    class Meta:
        model = Clinic
        fields = ("id", "name", "slug", "time_zone", "phone", "email", "address", "website", "lost_lead_price_rub", "is_active")
        read_only_fields = ("slug", "is_active")


class ClinicViewSet(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    queryset = Clinic.objects.all()
    serializer_class = ClinicSerializer

    def perform_update(self, serializer):
        instance = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(instance, name, value)
        catalogue_save(actor=self.request.user, instance=instance, created=False, changed=list(serializer.validated_data))


class BranchViewSet(CatalogueViewSet):
    queryset = Branch.objects.select_related("clinic")
    serializer_class = _serializer(Branch, ("clinic", "name", "address", "phone"))


class WorkingHoursViewSet(CatalogueViewSet):
    queryset = WorkingHours.objects.all()
    serializer_class = _serializer(WorkingHours, ("clinic", "branch", "weekday", "opens", "closes"))


class SpecialtyViewSet(CatalogueViewSet):
    queryset = Specialty.objects.all()
    serializer_class = _serializer(Specialty, ("clinic", "name"))


class ServiceViewSet(CatalogueViewSet):
    queryset = Service.objects.all()
    serializer_class = _serializer(Service, ("clinic", "name", "specialty", "duration_minutes", "price_rub", "is_active"))


class DoctorViewSet(CatalogueViewSet):
    queryset = Doctor.objects.prefetch_related("specialties", "services")
    serializer_class = _serializer(Doctor, ("clinic", "user", "full_name", "specialties", "services", "bio", "is_active"))


class TagViewSet(CatalogueViewSet):
    queryset = Tag.objects.all()
    serializer_class = _serializer(Tag, ("clinic", "name"))


class MembershipOut(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    full_name = serializers.CharField(source="user.get_full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ("id", "clinic", "username", "full_name", "role", "is_active", "created_at")


class MembershipIn(serializers.Serializer):
    clinic = serializers.PrimaryKeyRelatedField(queryset=Clinic.objects.all())
    role = serializers.ChoiceField(choices=list(Membership._meta.get_field("role").choices or []))
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True)
    first_name = serializers.CharField(required=False, allow_blank=True)
    last_name = serializers.CharField(required=False, allow_blank=True)
    password = serializers.CharField(required=False, write_only=True)


class MembershipViewSet(
    TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipOut

    @extend_schema(request=MembershipIn, responses={201: MembershipOut})
    def create(self, request, *args, **kwargs):
        data = MembershipIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_grant(actor=request.user, **data.validated_data)
        return Response(MembershipOut(membership).data, status=201)
