from django import forms
from django.utils.translation import gettext_lazy as _

from notifications.models import PersonalReminder


class PreferenceForm(forms.Form):
    sms = forms.BooleanField(label=_("SMS"), required=False)
    email = forms.BooleanField(label=_("E-mail"), required=False)
    promotions = forms.BooleanField(label=_("Clinics' promotions"), required=False)
    opted_out = forms.BooleanField(label=_("Send me nothing at all (sign-in codes still arrive)"), required=False)


class ReminderForm(forms.Form):
    # Several lines: a text prefilled from a doctor's message is read whole before saving.
    text = forms.CharField(
        label=_("What to remind about"), max_length=200, widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("Take the medicine")})
    )
    clinic = forms.ChoiceField(label=_("Clinic"))
    patient = forms.ChoiceField(label=_("For whom"))
    # ISO values whatever the language: <input type=date|time> understands no other (Russian's 14.03.2026 would show empty).
    day = forms.DateField(label=_("Day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    at = forms.TimeField(label=_("Time"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    repeat = forms.ChoiceField(label=_("Repeat"), choices=PersonalReminder.Repeat.choices)
    repeat_until = forms.DateField(label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def __init__(self, *args, clinics, family, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].choices = [(c.pk, c.name) for c in clinics]
        self.fields["patient"].choices = [(p.pk, p.full_name or str(p)) for p in family]
