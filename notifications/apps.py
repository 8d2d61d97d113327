from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from anymail.signals import tracking

        from notifications.receivers import email_tracked
        from notifications.services import codes, personal
        from patients.services import use_code_sender

        tracking.connect(email_tracked, dispatch_uid="notifications.email_tracked")
        # The kinds the outbox owns; messaging, appointments and promotions register theirs in their ready().
        codes.register_kinds()
        use_code_sender(codes.code_notify)  # sign-in and contact-change codes go out through the outbox
        personal.register_kinds()
