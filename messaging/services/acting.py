"""Who is acting in a thread: the patient's side or the clinic's, decided once for every write."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from clinics.tenancy import acts_for, portal_holder_id, staff_can_view
from messaging.models import Message, Thread


def side_of(user: Any, thread: Thread) -> str:
    """Message.Author.PATIENT or STAFF for a user acting in this thread, or PermissionDenied.

    No query for staff: the thread's clinic (and doctor) against the roles cached on the user.
    """
    if portal_holder_id(user) is not None:
        if acts_for(user, thread.patient):
            return Message.Author.PATIENT
        raise PermissionDenied(_("This conversation is not yours."))
    if staff_can_view(user, thread):
        return Message.Author.STAFF
    raise PermissionDenied(_("This conversation is not in your clinic."))
