from django.http import JsonResponse

from .models import Order
from .tasks import fulfil


def new_order(request):
    order = Order.objects.create(seconds=float(request.GET.get("seconds", 0)))
    fulfil.delay(order.pk)
    return JsonResponse({"id": order.pk})


def order(request, pk):
    o = Order.objects.get(pk=pk)
    return JsonResponse({"id": o.pk, "status": o.status, "worker_pid": o.worker_pid})
