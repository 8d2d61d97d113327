from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.destinations import Destination, parse_destination
from patients.models import Patient


class DestinationForm(forms.Form):
    destination = forms.CharField(
        label=_("Phone or e-mail"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "tel email", "inputmode": "email", "placeholder": "+7 912 345-67-89"}),
    )

    def clean_destination(self) -> Destination:
        try:
            return parse_destination(self.cleaned_data["destination"])
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class CodeForm(forms.Form):
    code = forms.RegexField(
        label=_("Code"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": _("The code has 6 digits.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6}),
    )


class ConsentForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    agree = forms.BooleanField(label=_("I have read the text and agree to the processing of my personal data"))


class ProfileForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=200)
    birth_date = forms.DateField(label=_("Date of birth"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


class DependantForm(ProfileForm):
    relation = forms.ChoiceField(
        label=_("Who is this to you"), choices=[c for c in Patient.Relation.choices if c[0] != Patient.Relation.SELF]
    )
