// Stands in for WeChat's JS-SDK (res.wx.qq.com/open/js/jweixin-1.6.0.js) on
// the sandbox's phone, in any browser. Served at /sandbox/jweixin.js; pages
// load it instead of WeChat's script only where the sandbox is mounted
// (fans.jssdk.jssdk_script_url).
//
// Like WeChat's: wx.config is checked by the sandbox against its latest
// jsapi_ticket and the page's URL without #; ready callbacks run after
// success, error callbacks get {errMsg: "config:invalid signature"}; an API
// called before that, or missing from jsApiList, fails. chooseImage opens a
// file input and hands back localIds; uploadImage sends one photo at a time
// (a second call while one runs fails: WeChat misbehaves then) and answers
// a serverId that /sandbox/cgi-bin/media/get serves for 3 days.
// Rules: shared/wechat-protocol.md sections 8 and 11.
(function () {
  "use strict";
  var here = document.currentScript ? document.currentScript.src : location.href;
  var PREVERIFY = new URL("jssdk/preverify", here).href;
  var UPLOAD_IMAGE = new URL("jssdk/upload_image", here).href;
  var isIOS = /iphone|ipad|ipod/i.test(navigator.userAgent);

  var state = "new"; // then "checking", "ready" or "failed"
  var failure = null;
  var allowed = [];
  var readyCallbacks = [];
  var errorCallbacks = [];
  var files = {};
  var lastLocalId = 0;
  var uploading = false;
  var chooser = null;
  // What the page handed the stand-in, for a developer's console and the
  // browser tests: wx.config's argument and the last share data.
  var recorded = (window.recorded = window.recorded || {});

  function later(callback, answer) {
    if (typeof callback === "function") {
      setTimeout(function () {
        callback(answer);
      }, 0);
    }
  }

  // WeChat's callbacks: success, fail or cancel, then complete.
  function answer(options, outcome, result) {
    later(options[outcome], result);
    later(options.complete, result);
  }

  function permitted(api, options) {
    if (state !== "ready") {
      answer(options, "fail", { errMsg: api + ":the permission value is offline verifying" });
      return false;
    }
    if (allowed.indexOf(api) < 0) {
      answer(options, "fail", { errMsg: api + ":permission denied" });
      return false;
    }
    return true;
  }

  function config(options) {
    recorded.config = options;
    state = "checking";
    allowed = (options && options.jsApiList) || [];
    var body = new URLSearchParams({
      appId: options.appId || "",
      timestamp: String(options.timestamp),
      nonceStr: options.nonceStr || "",
      signature: options.signature || "",
      url: location.href.split("#")[0],
    });
    fetch(PREVERIFY, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (reply) {
        return reply.json();
      })
      .then(function (result) {
        if (result.errMsg === "config:ok") {
          configured();
        } else {
          configFailed({ errMsg: result.errMsg }, result.reason);
        }
      })
      .catch(function () {
        configFailed({ errMsg: "config:fail" }, "the sandbox did not answer");
      });
  }

  function configured() {
    state = "ready";
    readyCallbacks.splice(0).forEach(function (callback) {
      later(callback);
    });
  }

  function configFailed(result, reason) {
    state = "failed";
    failure = result;
    window.console.warn("Sandbox JS-SDK: wx.config failed: " + (reason || result.errMsg));
    errorCallbacks.splice(0).forEach(function (callback) {
      later(callback, result);
    });
  }

  function ready(callback) {
    if (state === "ready") {
      later(callback);
    } else {
      readyCallbacks.push(callback);
    }
  }

  function error(callback) {
    if (state === "failed") {
      later(callback, failure);
    } else {
      errorCallbacks.push(callback);
    }
  }

  function chooseImage(options) {
    options = options || {};
    if (!permitted("chooseImage", options)) {
      return;
    }
    var count = Math.min(Math.max(parseInt(options.count, 10) || 9, 1), 9);
    if (!chooser) {
      chooser = document.createElement("input");
      chooser.type = "file";
      chooser.accept = "image/*";
      chooser.multiple = true;
      chooser.hidden = true;
      chooser.className = "sandbox-wx-chooser";
      document.body.appendChild(chooser);
    }
    chooser.onchange = function () {
      var chosen = Array.prototype.slice.call(chooser.files, 0, count);
      chooser.value = "";
      var localIds = chosen.map(function (file) {
        lastLocalId += 1;
        var localId = "wxLocalResource://" + lastLocalId;
        files[localId] = file;
        return localId;
      });
      answer(options, "success", { errMsg: "chooseImage:ok", localIds: localIds });
    };
    chooser.oncancel = function () {
      answer(options, "cancel", { errMsg: "chooseImage:cancel" });
    };
    chooser.click();
  }

  function tip(text) {
    var box = document.createElement("div");
    box.textContent = text;
    // Styles through the CSSOM: xgc's CSP refuses style attributes.
    Object.assign(box.style, {
      position: "fixed",
      left: "50%",
      top: "40%",
      transform: "translate(-50%, -50%)",
      padding: "16px 24px",
      borderRadius: "8px",
      background: "rgba(17, 17, 17, 0.7)",
      color: "#fff",
      zIndex: "5000",
    });
    document.body.appendChild(box);
    return box;
  }

  function uploadImage(options) {
    options = options || {};
    if (!permitted("uploadImage", options)) {
      return;
    }
    var file = files[options.localId];
    if (!file) {
      answer(options, "fail", { errMsg: "uploadImage:fail, invalid localId" });
      return;
    }
    if (uploading) {
      window.console.error("Sandbox JS-SDK: uploadImage called while another upload runs");
      answer(options, "fail", { errMsg: "uploadImage:fail, another upload is running" });
      return;
    }
    uploading = true;
    var box = options.isShowProgressTips === 0 ? null : tip("上传中");
    var body = new FormData();
    body.append("media", file, file.name);
    var finish = function (outcome, result) {
      uploading = false;
      if (box) {
        box.remove();
      }
      answer(options, outcome, result);
    };
    fetch(UPLOAD_IMAGE, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (reply) {
        return reply.json();
      })
      .then(function (result) {
        if (result.serverId) {
          finish("success", { errMsg: "uploadImage:ok", serverId: result.serverId });
        } else {
          finish("fail", { errMsg: result.errMsg || "uploadImage:fail" });
        }
      })
      .catch(function () {
        finish("fail", { errMsg: "uploadImage:fail" });
      });
  }

  function getLocalImgData(options) {
    options = options || {};
    if (!permitted("getLocalImgData", options)) {
      return;
    }
    var file = files[options.localId];
    if (!file) {
      answer(options, "fail", { errMsg: "getLocalImgData:fail, invalid localId" });
      return;
    }
    var reader = new FileReader();
    reader.onload = function () {
      // Android's WeChat answers the base64 without its data: prefix.
      var data = isIOS ? reader.result : reader.result.replace(/^data:[^,]*,/, "");
      answer(options, "success", { errMsg: "getLocalImgData:ok", localData: data });
    };
    reader.onerror = function () {
      answer(options, "fail", { errMsg: "getLocalImgData:fail" });
    };
    reader.readAsDataURL(file);
  }

  function previewImage(options) {
    options = options || {};
    if (!permitted("previewImage", options)) {
      return;
    }
    var url = options.current || (options.urls || [])[0] || "";
    // Only photos already on a server: localIds are refused, as by WeChat.
    if (!/^https?:\/\//i.test(url)) {
      answer(options, "fail", { errMsg: "previewImage:fail, invalid url" });
      return;
    }
    var overlay = document.createElement("div");
    overlay.className = "sandbox-wx-preview";
    Object.assign(overlay.style, {
      position: "fixed",
      inset: "0",
      display: "flex",
      alignItems: "center",
      justifyContent: "center",
      background: "#000",
      zIndex: "5000",
    });
    var image = document.createElement("img");
    image.src = url;
    image.alt = "";
    Object.assign(image.style, { maxWidth: "100%", maxHeight: "100%" });
    overlay.appendChild(image);
    overlay.addEventListener("click", function () {
      overlay.remove();
    });
    document.body.appendChild(overlay);
    answer(options, "success", { errMsg: "previewImage:ok" });
  }

  function share(api) {
    return function (options) {
      options = options || {};
      if (permitted(api, options)) {
        recorded.share = options;
        answer(options, "success", { errMsg: api + ":ok" });
      }
    };
  }

  window.wx = window.jWeixin = {
    config: config,
    ready: ready,
    error: error,
    chooseImage: chooseImage,
    uploadImage: uploadImage,
    getLocalImgData: getLocalImgData,
    previewImage: previewImage,
    updateAppMessageShareData: share("updateAppMessageShareData"),
    updateTimelineShareData: share("updateTimelineShareData"),
  };
})();
