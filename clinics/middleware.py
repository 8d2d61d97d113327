"""Show staff every time in their clinic's zone (times are stored in UTC)."""

from django.utils import timezone

from clinics.selectors import staff_clinics


class StaffTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/admin/") and getattr(request, "user", None) and request.user.is_authenticated:
            clinics = staff_clinics(user=request.user)
            if clinics:
                timezone.activate(clinics[0].tz)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
