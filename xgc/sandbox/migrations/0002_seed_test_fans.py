from django.db import migrations

# Nicknames in the shapes real fans have: Chinese, emoji, mixed, a long one.
TEST_FANS = [
    ("oSBX0000000000000000000001", "小鸡炖蘑菇🍄", "#07c160"),
    ("oSBX0000000000000000000002", "阿强😎", "#10aeff"),
    ("oSBX0000000000000000000003", "Lily 莉莉🌸", "#fa5151"),
    ("oSBX0000000000000000000004", "一只特别特别长昵称的测试用户🐢🐢", "#fa9d3b"),
]


def seed(apps, schema_editor):
    SandboxFan = apps.get_model("sandbox", "SandboxFan")
    for openid, nickname, colour in TEST_FANS:
        SandboxFan.objects.get_or_create(
            openid=openid,
            defaults={"nickname": nickname, "colour": colour, "unionid": "uSBX" + openid[4:]},
        )


def unseed(apps, schema_editor):
    SandboxFan = apps.get_model("sandbox", "SandboxFan")
    SandboxFan.objects.filter(openid__in=[openid for openid, _, _ in TEST_FANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("sandbox", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
