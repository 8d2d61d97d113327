"""PatientInClinic → Contact: the model takes the clinic's word. State only: the table keeps its name, nothing is rebuilt."""

import django.db.models.deletion
from django.db import migrations, models


def rename_content_type(old: str, new: str):
    """Admin history hangs on the content type: move it to the new name (Django does it only for a bare RenameModel)."""

    def rename(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        types = ContentType.objects.using(schema_editor.connection.alias)
        if not types.filter(app_label="patients", model=new).exists():
            types.filter(app_label="patients", model=old).update(model=new)

    return rename


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0003_patientinclinic_merged_into"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("messaging", "0004_canned_answer_owner_unicode_shortcode"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterModelTable(name="patientinclinic", table="patients_patientinclinic"),
                migrations.RenameModel(old_name="PatientInClinic", new_name="Contact"),
                migrations.AlterField(
                    model_name="contact",
                    name="patient",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="contacts", to="patients.patient", verbose_name="patient"
                    ),
                ),
                migrations.AlterField(
                    model_name="contact",
                    name="merged_into",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="merged_contacts",
                        to="patients.contact",
                        verbose_name="merged into",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE patients_patientinclinic_tags RENAME COLUMN patientinclinic_id TO contact_id",
                    "ALTER TABLE patients_patientinclinic_tags RENAME COLUMN contact_id TO patientinclinic_id",
                ),
            ],
        ),
        migrations.RunPython(rename_content_type("patientinclinic", "contact"), rename_content_type("contact", "patientinclinic")),
    ]
