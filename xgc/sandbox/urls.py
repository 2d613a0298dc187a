"""Both WeChat hosts under /sandbox/: open.weixin.qq.com and api.weixin.qq.com."""

from django.urls import path, re_path

from . import api, console, jssdk, messages, oauth, platform, stats

urlpatterns = [
    path("", console.index, name="sandbox-index"),
    path("faults", console.faults, name="sandbox-faults"),
    path("stats", stats.stats, name="sandbox-stats"),
    path("ping", stats.ping, name="sandbox-ping"),
    path("phone", oauth.phone, name="sandbox-phone"),
    path("messages", messages.inbox, name="sandbox-messages"),
    path("mmopen/<str:openid>/132", oauth.avatar, name="sandbox-avatar"),
    # res.wx.qq.com's JS-SDK, and what it asks WeChat's client on the phone
    path("jweixin.js", jssdk.jweixin, name="sandbox-jweixin"),
    path("jssdk/preverify", jssdk.preverify, name="sandbox-jssdk-preverify"),
    path("jssdk/upload_image", jssdk.upload_image, name="sandbox-jssdk-upload-image"),
    # open.weixin.qq.com
    path("connect/oauth2/authorize", oauth.authorize, name="sandbox-authorize"),
    # api.weixin.qq.com
    path("sns/oauth2/access_token", oauth.access_token),
    path("sns/oauth2/refresh_token", oauth.refresh_token),
    path("sns/auth", oauth.auth),
    path("sns/userinfo", oauth.userinfo),
    path("cgi-bin/token", platform.token),
    path("cgi-bin/stable_token", platform.stable_token),
    path("cgi-bin/menu/create", platform.menu_create),
    path("cgi-bin/menu/get", platform.menu_get),
    path("cgi-bin/menu/delete", platform.menu_delete),
    path("cgi-bin/ticket/getticket", platform.getticket),
    path("cgi-bin/message/template/send", messages.template_send),
    path("cgi-bin/media/get", jssdk.media_get),
    # Last: any other path on the API host gets WeChat's JSON, not Django's 404.
    re_path(r"^(?P<prefix>cgi-bin|sns)(?:/.*)?$", api.unknown_api),
]
