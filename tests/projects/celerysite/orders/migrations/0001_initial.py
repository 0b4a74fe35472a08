import os
import time

from django.db import migrations, models


def record(apps, schema_editor):
    """Appends this process's pid to RELEASE_RECORD (the tests count how often the migration ran)."""
    path = os.environ.get("RELEASE_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
        # Long enough that a second release started at the same moment arrives while this one runs.
        time.sleep(float(os.environ.get("RELEASE_RECORD_SLEEP", "0")))


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("status", models.CharField(default="new", max_length=20)),
                ("worker_pid", models.IntegerField(null=True)),
                ("seconds", models.FloatField(default=0)),
            ],
        ),
        migrations.RunPython(record, migrations.RunPython.noop),
    ]
