"""E-mail delivery reports, as django-anymail hands them over after checking the provider's webhook auth."""

from notifications import services

DELIVERED = {"delivered"}
FAILED = {"bounced", "rejected", "failed", "complained"}


def email_tracked(sender, event, esp_name, **kwargs) -> None:
    if event.event_type not in DELIVERED | FAILED or not event.message_id:
        return  # opened, clicked, queued…: not a final delivery state
    services.delivery_report(
        provider="email",
        provider_message_id=str(event.message_id),
        delivered=event.event_type in DELIVERED,
        error=f"{esp_name}: {event.event_type} {event.description or ''}".strip(),
    )
