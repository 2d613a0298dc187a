// Sets up WeChat's JS-SDK on a fan's page so that sharing it to a chat shows
// the fan's card. Outside WeChat, or when WeChat's script or xgc's signature
// cannot be had, the page simply goes without.
(function () {
  "use strict";
  var share = document.getElementById("wechat-share");
  if (!share || !/micromessenger/i.test(navigator.userAgent)) {
    return;
  }
  // WeChat signs the page's URL without its #fragment.
  var page = location.href.split("#")[0];
  var script = document.createElement("script");
  script.src = share.dataset.sdk;
  script.onload = function () {
    fetch(share.dataset.configUrl + "?url=" + encodeURIComponent(page), { credentials: "same-origin" })
      .then(function (answer) {
        return answer.ok ? answer.json() : Promise.reject(answer.status);
      })
      .then(function (config) {
        window.wx.config({
          debug: false,
          appId: config.appId,
          timestamp: config.timestamp,
          nonceStr: config.nonceStr,
          signature: config.signature,
          jsApiList: ["updateAppMessageShareData"],
        });
        window.wx.ready(function () {
          window.wx.updateAppMessageShareData({
            title: share.dataset.title,
            desc: share.dataset.desc,
            link: page,
            imgUrl: share.dataset.image,
          });
        });
      })
      .catch(function () {});
  };
  document.head.appendChild(script);
})();
