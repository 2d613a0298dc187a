from django.urls import path, re_path

from . import jssdk, server, views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    # People type the server URL into WeChat's console with or without the
    # slash, and WeChat does not follow the redirect APPEND_SLASH would send.
    re_path(r"^wechat/?$", server.wechat_server, name="wechat-server"),
    path("wechat/login/", views.login, name="wechat-login"),
    path("wechat/authorize/", views.web_authorization, name="wechat-authorize"),
    path("wechat/jssdk/config", jssdk.config, name="wechat-jssdk-config"),
    re_path(r"^MP_verify_(?P<code>[A-Za-z0-9]+)\.txt$", server.mp_verify, name="wechat-mp-verify"),
]
