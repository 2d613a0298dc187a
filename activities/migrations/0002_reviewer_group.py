"""The group "活动审核员": a staff user in it can review and export applications, nothing else."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "活动审核员"
PERMISSIONS = [
    "view_activity",
    "view_application",
    "change_application",
    "review_application",
    "export_application",
]


def create_reviewer_group(apps, schema_editor):
    # Permissions are created by a post_migrate signal, after every migration
    # has run: on a fresh database they do not exist yet, so create them now.
    app_config = apps.get_app_config("activities")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="activities", codename__in=PERMISSIONS
    )
    if len(permissions) != len(PERMISSIONS):
        raise RuntimeError(f"Missing permissions for {GROUP}: found {permissions}")
    group, _ = Group.objects.using(schema_editor.connection.alias).get_or_create(name=GROUP)
    group.permissions.add(*permissions)


def delete_reviewer_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_reviewer_group, delete_reviewer_group)]
