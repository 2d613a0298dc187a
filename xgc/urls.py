from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path(settings.ADMIN_URL, admin.site.urls),
    path("", include("fans.urls")),
    path("", include("activities.urls")),
]

# Never mounted for real fans: see the sandbox.E001 check.
if settings.WECHAT_SANDBOX and (settings.DEBUG or settings.WECHAT_SANDBOX_FORCE):
    urlpatterns.append(path("sandbox/", include("xgc.sandbox.urls")))
