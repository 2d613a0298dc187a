from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("wechat/login/", views.login, name="wechat-login"),
    path("wechat/authorize/", views.web_authorization, name="wechat-authorize"),
]
