"""The group "活动审核员" may see the photos of the applications it reviews."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "活动审核员"
PERMISSION = "view_photo"


def add_view_photo(apps, schema_editor):
    # As in 0002: on a fresh database the permissions of Photo (0004) are
    # created by post_migrate, after every migration: create them now.
    app_config = apps.get_app_config("activities")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    permission = Permission.objects.using(db).get(
        content_type__app_label="activities", codename=PERMISSION
    )
    group, _ = Group.objects.using(db).get_or_create(name=GROUP)
    group.permissions.add(permission)


def remove_view_photo(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    db = schema_editor.connection.alias
    for group in Group.objects.using(db).filter(name=GROUP):
        group.permissions.remove(*group.permissions.filter(codename=PERMISSION))


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0004_photo"),
        ("activities", "0002_reviewer_group"),
    ]

    operations = [migrations.RunPython(add_view_photo, remove_view_photo)]
