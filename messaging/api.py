"""Conversations API, for staff and patients alike: the tenancy layer decides what each sees.

Threads list/detail, messages (paged by seq), send, mark read, attachments.
Views translate HTTP to selectors and services; refusals become 4xx in clinic_crm.api.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from clinics.api import CatalogueViewSet
from clinics.models import Clinic, Doctor, Tag
from clinics.tenancy import is_staff_member, portal_holder_id
from clinics.tenancy.api import ClinicRolePermission, TenantViewSetMixin
from core.api import BoundedDateTimeField
from core.client_input import whole_number
from core.openapi import RETRY_AFTER, refusals
from core.parsers import JSONParser
from messaging import selectors, services
from messaging.models import CannedAnswer, Message, Team, Thread, ThreadAccess
from messaging.payloads import PATIENT, STAFF, AttachmentOut, MessageOut, ThreadOut, attachment_payload, message_item, thread_payload
from patients.models import Patient
from patients.services import Attribution


def _audience(request) -> str:
    return STAFF if is_staff_member(request.user) else PATIENT


class ThreadPage(CursorPagination):
    ordering = ("-last_activity_at", "-pk")
    page_size = 30


class ThreadOpenIn(serializers.Serializer):
    clinic = serializers.SlugField(help_text="The clinic's slug")
    doctor = serializers.IntegerField(required=False, allow_null=True, help_text="Write to this doctor of the clinic")
    patient = serializers.IntegerField(required=False, allow_null=True, help_text="A dependant's id to write on their behalf")


class ThreadUpdateIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=Thread.Status.choices, required=False)
    snoozed_until = BoundedDateTimeField(required=False, allow_null=True)
    assigned_to = serializers.IntegerField(required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.IntegerField(), required=False)
    priority = serializers.ChoiceField(choices=Thread.Priority.choices, required=False)
    team = serializers.IntegerField(required=False, allow_null=True)
    sensitive = serializers.BooleanField(required=False)


class MessageIn(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=20000)
    client_msg_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    attachments = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=10)
    note = serializers.BooleanField(required=False, default=False, help_text="Staff only: a private note the patient never sees")


class ReadIn(serializers.Serializer):
    seq = serializers.IntegerField(required=False, min_value=0)


class UploadIn(serializers.Serializer):
    file = serializers.FileField(help_text="JPEG, PNG, WebP, HEIC or PDF, at most 10 MB")


class MessagesPageOut(serializers.Serializer):
    results = MessageOut(many=True)
    has_more = serializers.BooleanField(help_text="Older messages exist: ask again with before=<first seq of this page>")


class ThreadViewSet(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Threads of the caller: a clinic's staff see their clinic's (a doctor their own), a patient their family's."""

    queryset = Thread.objects.select_related("patient", "clinic", "doctor", "assigned_to", "team").prefetch_related("tags")
    serializer_class = ThreadOut
    pagination_class = ThreadPage
    # Writes are actions of participants; the services decide who may do what.
    permission_classes = [permissions.IsAuthenticated, ClinicRolePermission]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_permissions(self):
        if self.action in ("create", "messages", "read", "attachments", "partial_update"):
            return [permissions.IsAuthenticated()]
        return super().get_permissions()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "audience": _audience(self.request)}

    def get_queryset(self):
        if self.action == "list" and _audience(self.request) == STAFF:
            filters = selectors.InboxFilter.from_params(self.request.query_params)
            return selectors.inbox_threads(user=self.request.user, filters=filters)
        return super().get_queryset()

    def _thread(self) -> Thread:
        # The router's lookup takes any path segment: "/threads/null/" is a thread that does not exist.
        try:
            thread_id = int(self.kwargs["pk"])
        except ValueError:
            raise NotFound from None
        return selectors.thread_for(user=self.request.user, thread_id=thread_id)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "scope",
                str,
                enum=list(selectors.SCOPES),
                description="Staff: mine = assigned to me, unassigned = nobody assigned, all (default)",
            ),
            OpenApiParameter("mine", str, enum=["1"], description="Staff: older spelling of scope=mine", deprecated=True),
            OpenApiParameter("unassigned", str, enum=["1"], description="Staff: older spelling of scope=unassigned", deprecated=True),
            OpenApiParameter("status", str, enum=Thread.Status.values, description="Staff: only threads in this status"),
            OpenApiParameter("channel", str, enum=Thread.Channel.values, description="Staff: only threads that came by this channel"),
            OpenApiParameter("tag", int, description="Staff: only threads with this tag (id)"),
            OpenApiParameter("clinic", int, description="Staff of several clinics: only this clinic's threads (id)"),
            OpenApiParameter("q", str, description="Staff: patient name, phone or e-mail contains this"),
        ],
        description="Staff filters combine; unknown values are ignored. Patients always get their family's threads.",
        summary="Threads, newest activity first",
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One thread (a staff read is written to the access log)")
    def retrieve(self, request, *args, **kwargs):
        thread = self._thread()
        if _audience(request) == STAFF:
            services.thread_access_record(thread=thread, actor=request.user, via="api")
        return Response(thread_payload(thread, audience=_audience(request)))

    @extend_schema(
        request=ThreadOpenIn,
        responses={201: ThreadOut, 200: ThreadOut, **refusals(**{"404": "No such clinic"})},
        summary="Patient: open (or find) the thread with a clinic or doctor",
    )
    def create(self, request, *args, **kwargs):
        data = ThreadOpenIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        holder_id = portal_holder_id(request.user)
        if holder_id is None:
            return Response({"code": "patients_only", "detail": _("Only patients start conversations.")}, status=status.HTTP_403_FORBIDDEN)
        holder = Patient.objects.get(pk=holder_id)
        patient = holder
        if values.get("patient") and values["patient"] != holder.pk:
            patient = Patient.objects.filter(pk=values["patient"], guardian=holder).first()
            if patient is None:
                raise ValidationError({"patient": _("This person is not in your family.")})
        clinic = get_object_or_404(Clinic, slug=values["clinic"], is_active=True)
        doctor = None
        if values.get("doctor"):
            doctor = Doctor.objects.filter(pk=values["doctor"], clinic=clinic, is_active=True).first()
            if doctor is None:
                raise ValidationError({"doctor": _("There is no such doctor in this clinic.")})
        thread, created = services.thread_open(
            patient=patient, clinic=clinic, doctor=doctor, actor=request.user, attribution=Attribution(source_channel="web")
        )
        thread = selectors.thread_for(user=request.user, thread_id=thread.pk)
        return Response(thread_payload(thread, audience=PATIENT), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=ThreadUpdateIn, responses=ThreadOut, summary="Staff: status, assignment, tags, priority, team, sensitive")
    def partial_update(self, request, *args, **kwargs):
        thread = self._thread()
        data = ThreadUpdateIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = request.user
        if "assigned_to" in values:
            assignee = None
            if values["assigned_to"] is not None:
                from django.contrib.auth import get_user_model

                assignee = get_user_model().objects.filter(pk=values["assigned_to"], is_active=True).first()
                if assignee is None:
                    raise ValidationError({"assigned_to": _("No such staff member.")})
            thread = services.thread_assign(actor=user, thread=thread, assignee=assignee)
        if "status" in values:
            thread = services.thread_set_status(
                actor=user, thread=thread, status=values["status"], snoozed_until=values.get("snoozed_until")
            )
        extra = {}
        if "tags" in values:
            tags = list(Tag.objects.filter(pk__in=values["tags"]))
            if len(tags) != len(set(values["tags"])):
                raise ValidationError({"tags": _("Unknown tag.")})
            extra["tags"] = tags
        if "priority" in values:
            extra["priority"] = values["priority"]
        if "team" in values:
            extra["team"] = None if values["team"] is None else get_object_or_404(Team, pk=values["team"], clinic_id=thread.clinic_id)
        if "sensitive" in values:
            extra["sensitive"] = values["sensitive"]
        if extra:
            thread = services.thread_update(actor=user, thread=thread, **extra)
        return Response(thread_payload(selectors.thread_for(user=user, thread_id=thread.pk), audience=STAFF))

    @extend_schema(
        methods=["GET"],
        parameters=[
            OpenApiParameter("before", int, description="Messages with seq below this (scroll up)"),
            OpenApiParameter("after", int, description="Messages with seq above this (catch up)"),
            OpenApiParameter("limit", int, description="At most 100"),
        ],
        responses=MessagesPageOut,
        summary="Messages of a thread, oldest first within the page",
    )
    @extend_schema(
        methods=["POST"],
        request=MessageIn,
        responses={201: MessageOut, 200: MessageOut, **refusals(**{"429": "Sending too fast: wait Retry-After seconds"})},
        parameters=[RETRY_AFTER],
        summary="Send a message",
    )
    @action(detail=True, methods=["get", "post"])
    def messages(self, request, pk=None):
        thread = self._thread()
        audience = _audience(request)
        if request.method == "POST":
            data = MessageIn(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            message, created = services.send_message(
                thread=thread,
                actor=request.user,
                text=values.get("text", ""),
                kind=Message.Kind.NOTE if values.get("note") else Message.Kind.TEXT,
                client_msg_id=values.get("client_msg_id", ""),
                attachment_ids=values.get("attachments", []),
            )
            message = Message.objects.select_related("sender").prefetch_related("attachments").get(pk=message.pk)
            return Response(
                message_item(message, audience=audience, thread=thread),
                status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            )
        params = request.query_params
        try:
            limit = max(1, min(int(params.get("limit", selectors.PAGE)), 100))
            before = int(params["before"]) if params.get("before") else None
            after = int(params["after"]) if params.get("after") else None
        except ValueError:
            raise ValidationError(_("before, after and limit must be whole numbers.")) from None
        page = selectors.thread_messages(user=request.user, thread=thread, before_seq=before, after_seq=after, limit=limit + 1)
        if after is not None:
            has_more, page = len(page) > limit, page[:limit]
        else:
            has_more, page = len(page) > limit, page[-limit:]
        if audience == STAFF and after is None and before is None:
            services.thread_access_record(thread=thread, actor=request.user, via="api")
        return Response({"results": [message_item(m, audience=audience, thread=thread) for m in page], "has_more": has_more})

    @extend_schema(request=ReadIn, responses=ThreadOut, summary="Mark the thread read up to seq (default: everything)")
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        data = ReadIn(data=request.data)
        data.is_valid(raise_exception=True)
        thread = services.thread_mark_read(thread=self._thread(), actor=request.user, seq=data.validated_data.get("seq"))
        return Response(thread_payload(selectors.thread_for(user=request.user, thread_id=thread.pk), audience=_audience(request)))

    @extend_schema(
        request={"multipart/form-data": UploadIn}, responses={201: AttachmentOut}, summary="Upload a file to send in this thread"
    )
    @action(detail=True, methods=["post"])
    def attachments(self, request, pk=None):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": _("Choose a file to upload.")})
        attachment = services.attachment_upload(thread=self._thread(), actor=request.user, upload=upload)
        return Response(attachment_payload(attachment), status=status.HTTP_201_CREATED)

    @extend_schema(
        responses=inline_serializer(
            "CannedOut",
            {"shortcode": serializers.CharField(), "title": serializers.CharField(), "text": serializers.CharField()},
            many=True,
        ),
        summary="Staff: canned answers with this thread's variables filled in",
    )
    @action(detail=True, methods=["get"], pagination_class=None)  # the whole list, as its schema says
    def canned(self, request, pk=None):
        thread = self._thread()
        if _audience(request) != STAFF:
            return Response(
                {"code": "staff_only", "detail": _("Only the clinic's staff use canned answers.")}, status=status.HTTP_403_FORBIDDEN
            )
        portal = request.build_absolute_uri("/")
        return Response(
            [
                {
                    "shortcode": a.shortcode,
                    "title": a.title,
                    "text": selectors.canned_answer_render(answer=a, thread=thread, portal_url=portal),
                }
                for a in selectors.canned_answers_for(user=request.user, thread=thread)
            ]
        )


# --- staff-only catalogue: canned answers, teams, access log -----------------------------


class CannedAnswerSerializer(serializers.ModelSerializer):
    class Meta:
        model = CannedAnswer
        fields = ("id", "clinic", "shortcode", "title", "text")


class CannedAnswerViewSet(CatalogueViewSet):
    queryset = CannedAnswer.objects.select_related("clinic")
    serializer_class = CannedAnswerSerializer


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ("id", "clinic", "name", "members")


class TeamViewSet(CatalogueViewSet):
    queryset = Team.objects.prefetch_related("members")
    serializer_class = TeamSerializer


class ThreadAccessOut(serializers.ModelSerializer):
    user_name = serializers.CharField(source="user.username")

    class Meta:
        model = ThreadAccess
        fields = ("id", "thread", "user", "user_name", "at", "via")


class ThreadAccessViewSet(TenantViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Who opened which thread and when: for the clinic's owner and managers."""

    queryset = ThreadAccess.objects.select_related("user")
    serializer_class = ThreadAccessOut

    def get_queryset(self):
        rows = super().get_queryset()
        thread = self.request.query_params.get("thread", "")
        return rows.filter(thread_id=thread_id) if (thread_id := whole_number(thread)) is not None else rows
