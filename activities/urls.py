from django.urls import path

from . import photo_views, views

urlpatterns = [
    path("activities/", views.activity_list, name="activity-list"),
    path("activities/<int:pk>/", views.activity_detail, name="activity-detail"),
    path("activities/<int:pk>/apply/", views.activity_apply, name="activity-apply"),
    path("applications/", views.application_list, name="application-list"),
    path("applications/<int:pk>/", views.application_detail, name="application-detail"),
    path(
        "applications/<int:pk>/withdraw/", views.application_withdraw, name="application-withdraw"
    ),
    # The only way to a photo: kind is display or thumbnail (photo_views.KINDS).
    # Never serve MEDIA_ROOT itself, e.g. with static(settings.MEDIA_URL, ...)
    # in xgc/urls.py: that would skip the access check and show every fan's photos.
    path("photos/<int:pk>/<str:kind>/", photo_views.photo, name="photo"),
]
