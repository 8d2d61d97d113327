"""Appointment → Visit: the model takes the clinic's word. State only: the table keeps its name, nothing is rebuilt."""

from django.db import migrations


def rename_content_type(old: str, new: str):
    """Admin history hangs on the content type: move it to the new name (Django does it only for a bare RenameModel)."""

    def rename(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        types = ContentType.objects.using(schema_editor.connection.alias)
        if not types.filter(app_label="appointments", model=new).exists():
            types.filter(app_label="appointments", model=old).update(model=new)

    return rename


class Migration(migrations.Migration):
    dependencies = [
        ("appointments", "0002_bookingrules_confirm_hours_before_and_more"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("notifications", "0011_delivery_sending_claim"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterModelTable(name="appointment", table="appointments_appointment"),
                migrations.RenameModel(old_name="Appointment", new_name="Visit"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(rename_content_type("appointment", "visit"), rename_content_type("visit", "appointment")),
    ]
