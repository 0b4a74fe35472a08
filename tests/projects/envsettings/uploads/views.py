import os

from django.core.files.storage import default_storage
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def home(request):
    return HttpResponse("envsite home\n", content_type="text/plain")


@csrf_exempt  # an API endpoint: token-authenticated in real life
@require_POST
def upload(request):
    """Store the uploaded file under MEDIA_ROOT (Django streams it to a temp file above 2.5 MB)."""
    upload = request.FILES.get("file")
    if upload is None:
        return HttpResponseBadRequest("no file")
    name = default_storage.save(f"uploads/{upload.name}", upload)
    return JsonResponse({"name": name, "size": upload.size})


def whoami(request):
    return JsonResponse(
        {"remote_addr": request.META.get("REMOTE_ADDR"), "is_secure": request.is_secure(), "pid": os.getpid()}
    )
