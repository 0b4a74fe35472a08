from django.http import HttpResponse, JsonResponse
from django.urls import path


def home(request):
    return HttpResponse("brokersite home\n", content_type="text/plain")


def whoami(request):
    return JsonResponse({"remote_addr": request.META.get("REMOTE_ADDR"), "is_secure": request.is_secure()})


urlpatterns = [path("", home), path("whoami/", whoami)]
