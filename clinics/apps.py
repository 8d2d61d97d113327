from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClinicsConfig(AppConfig):
    name = "clinics"
    verbose_name = _("Clinic")

    def ready(self) -> None:
        from clinics import services
        from clinics.tenancy import admin

        admin.use_row_writers(save=services.catalogue_save, delete=services.catalogue_delete)
