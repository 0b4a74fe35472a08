import os
import time

from celery import shared_task

from .models import Order


@shared_task
def fulfil(order_id):
    order = Order.objects.get(pk=order_id)
    Order.objects.filter(pk=order_id).update(status="working")
    time.sleep(order.seconds)
    Order.objects.filter(pk=order_id).update(status="done", worker_pid=os.getpid())
