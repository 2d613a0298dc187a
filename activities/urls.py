from django.urls import path

from . import views

urlpatterns = [
    path("activities/", views.activity_list, name="activity-list"),
    path("activities/<int:pk>/", views.activity_detail, name="activity-detail"),
    path("activities/<int:pk>/apply/", views.activity_apply, name="activity-apply"),
    path("applications/", views.application_list, name="application-list"),
    path("applications/<int:pk>/", views.application_detail, name="application-detail"),
    path(
        "applications/<int:pk>/withdraw/", views.application_withdraw, name="application-withdraw"
    ),
]
