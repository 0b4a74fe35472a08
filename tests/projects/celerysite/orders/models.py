from django.db import models


class Order(models.Model):
    status = models.CharField(max_length=20, default="new")
    #: The worker process that fulfilled it.
    worker_pid = models.IntegerField(null=True)
    seconds = models.FloatField(default=0)
