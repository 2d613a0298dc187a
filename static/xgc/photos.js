// The photos of the application form (templates/activities/_photo_picker.html).
//
// Inside WeChat: WeChat's own picker through the JS-SDK. chooseImage hands
// back localIds, uploadImage sends them one at a time (WeChat misbehaves when
// two run at once), and each serverId goes into the form as a media_id that
// xgc downloads when the form is posted. If the script, the signature or
// wx.config fails, the plain file input stays, silently.
// Anywhere: the file input, with previews; a form with files is sent with
// XMLHttpRequest so that a progress bar shows the upload.
// Protocol notes: shared/wechat-protocol.md sections 8, 9 and 11.
(function () {
  "use strict";
  var picker = document.querySelector("[data-photos]");
  if (!picker) {
    return;
  }
  var form = picker.closest("form");
  var input = picker.querySelector("input[type=file]");
  var choose = picker.querySelector(".photo-picker__choose");
  var strip = picker.querySelector(".photo-picker__strip");
  var status = picker.querySelector(".photo-picker__status");
  var progress = picker.querySelector(".photo-picker__progress");
  var limit = parseInt(picker.dataset.limit, 10);
  if (isNaN(limit)) {
    limit = 9;
  }
  var userAgent = navigator.userAgent;
  // WeChat DevTools says wechatdevtools (protocol notes section 9).
  var inWeChat = /micromessenger|wechatdevtools/i.test(userAgent);
  var sandbox = "sandbox" in picker.dataset;
  var wx = null;
  var queue = [];
  var uploading = null;
  var submitWhenUploaded = false;
  // An uploadImage that never answers must not hold the form forever.
  var UPLOAD_GIVE_UP_MS = 60000;

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("field__error", Boolean(isError));
  }

  function mediaCount() {
    return form.querySelectorAll("input[name=media_id]").length;
  }

  function remaining() {
    var files = input.files ? input.files.length : 0;
    return limit - mediaCount() - queue.length - (uploading ? 1 : 0) - files;
  }

  function item(label) {
    var li = document.createElement("li");
    li.className = "photo-picker__item";
    var img = document.createElement("img");
    img.className = "photo-picker__thumb";
    img.alt = label;
    li.appendChild(img);
    strip.appendChild(li);
    return li;
  }

  function removable(li) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "photo-picker__remove";
    button.setAttribute("aria-label", "移除这张照片");
    button.textContent = "×";
    li.appendChild(button);
  }

  // A photo (or a kept id) leaves the form with its media_id.
  strip.addEventListener("click", function (event) {
    var button = event.target.closest(".photo-picker__remove");
    if (button) {
      button.closest(".photo-picker__item").remove();
      say("");
    }
  });

  // -- Any browser: the file input ------------------------------------------

  // A small copy for the strip, as a data: URL (xgc's CSP allows data:
  // images, not blob:), made one photo at a time to spare a phone's memory.
  function thumbnail(file) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onerror = reject;
      reader.onload = function () {
        var image = new Image();
        image.onerror = reject;
        image.onload = function () {
          var scale = Math.min(1, 240 / Math.max(image.width, image.height));
          var canvas = document.createElement("canvas");
          canvas.width = Math.max(1, Math.round(image.width * scale));
          canvas.height = Math.max(1, Math.round(image.height * scale));
          canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
          resolve(canvas.toDataURL("image/jpeg", 0.8));
        };
        image.src = reader.result;
      };
      reader.readAsDataURL(file);
    });
  }

  input.addEventListener("change", function () {
    Array.prototype.forEach.call(strip.querySelectorAll(".photo-picker__item--file"), function (li) {
      li.remove();
    });
    var files = Array.prototype.slice.call(input.files);
    var chain = Promise.resolve();
    files.forEach(function (file, index) {
      var li = item("所选照片 " + (index + 1));
      li.classList.add("photo-picker__item--file");
      chain = chain.then(function () {
        return thumbnail(file).then(
          function (url) {
            li.querySelector("img").src = url;
          },
          function () {
            // HEIC and the like: the browser cannot show it, xgc may still read it.
            li.classList.add("photo-picker__item--blank");
          }
        );
      });
    });
    if (remaining() < 0) {
      say("最多还能添加 " + (limit - mediaCount()) + " 张照片，请少选几张", true);
    } else {
      say(files.length ? "已选 " + files.length + " 张照片" : "");
    }
  });

  // -- Inside WeChat: the JS-SDK --------------------------------------------

  function fallBack(why) {
    if (sandbox && window.console) {
      // Silent for fans; in the sandbox a developer wants to know why.
      window.console.warn("Photos: WeChat's picker is off (" + why + "); the file input stays.");
    }
    wx = null;
    choose.hidden = true;
    input.hidden = false;
  }

  function startWeChat() {
    var script = document.createElement("script");
    script.src = picker.dataset.sdk;
    script.onerror = function () {
      fallBack("the JS-SDK script did not load");
    };
    script.onload = configure;
    document.head.appendChild(script);
  }

  function configure() {
    // WeChat signs the page's URL without its #fragment (protocol notes 8).
    var page = location.href.split("#")[0];
    fetch(picker.dataset.configUrl + "?url=" + encodeURIComponent(page), {
      credentials: "same-origin",
    })
      .then(function (answer) {
        return answer.ok ? answer.json() : Promise.reject("the signature: HTTP " + answer.status);
      })
      .then(function (config) {
        var sdk = window.wx;
        var failed = false;
        sdk.config({
          debug: false,
          appId: config.appId,
          timestamp: config.timestamp,
          nonceStr: config.nonceStr,
          signature: config.signature,
          jsApiList: ["chooseImage", "uploadImage", "getLocalImgData", "previewImage"],
        });
        sdk.error(function (answer) {
          failed = true;
          fallBack(answer && answer.errMsg);
        });
        sdk.ready(function () {
          if (failed) {
            return;
          }
          wx = sdk;
          choose.hidden = false;
          // One way to add photos; files chosen already stay and are sent.
          if (!input.files || !input.files.length) {
            input.hidden = true;
          }
        });
      })
      .catch(function (why) {
        fallBack(String(why));
      });
  }

  // iOS's WKWebView cannot show a localId in <img>; Android's WeChat can.
  function showLocal(img, localId) {
    var viaData = function () {
      wx.getLocalImgData({
        localId: localId,
        success: function (answer) {
          var data = answer.localData || "";
          // Android's WeChat leaves out the data: prefix (protocol notes 11).
          img.src = data.indexOf("data:") === 0 ? data : "data:image/jpeg;base64," + data;
        },
      });
    };
    if (window.__wxjs_is_wkwebview || /iphone|ipad|ipod/i.test(userAgent)) {
      viaData();
      return;
    }
    img.onerror = function () {
      img.onerror = null;
      viaData();
    };
    img.src = localId;
  }

  choose.addEventListener("click", function () {
    var count = Math.min(remaining(), 9);
    if (!wx || count <= 0) {
      say("照片已满，不能再添加", true);
      return;
    }
    wx.chooseImage({
      count: count,
      sizeType: ["original", "compressed"],
      sourceType: ["album", "camera"],
      success: function (answer) {
        (answer.localIds || []).slice(0, Math.max(remaining(), 0)).forEach(function (localId) {
          var li = item("微信照片");
          li.classList.add("photo-picker__item--waiting");
          showLocal(li.querySelector("img"), localId);
          queue.push({ localId: localId, li: li });
        });
        // Old Android builds fail an upload started at once (protocol notes 11).
        setTimeout(uploadNext, 100);
      },
    });
  });

  function uploadNext() {
    if (uploading) {
      return;
    }
    var photo = queue.shift();
    if (!photo) {
      uploaded();
      return;
    }
    uploading = photo;
    say("正在上传照片，还剩 " + (queue.length + 1) + " 张");
    var settled = false;
    var settle = function (serverId) {
      if (settled) {
        return;
      }
      settled = true;
      clearTimeout(giveUp);
      photo.li.classList.remove("photo-picker__item--waiting");
      if (serverId) {
        var field = document.createElement("input");
        field.type = "hidden";
        field.name = "media_id";
        field.value = serverId;
        photo.li.appendChild(field);
      } else {
        photo.li.classList.add("photo-picker__item--failed");
        say("有照片没有传上，请移除后重新选择", true);
      }
      removable(photo.li);
      uploading = null;
      uploadNext();
    };
    var giveUp = setTimeout(settle, UPLOAD_GIVE_UP_MS);
    wx.uploadImage({
      localId: photo.localId,
      isShowProgressTips: 1,
      success: function (answer) {
        settle(answer.serverId);
      },
      fail: function () {
        settle(null);
      },
    });
  }

  function uploaded() {
    var failed = strip.querySelector(".photo-picker__item--failed");
    if (!failed) {
      say(mediaCount() ? "照片已上传" : "");
    }
    if (submitWhenUploaded) {
      submitWhenUploaded = false;
      if (failed) {
        // Let the fan decide: without that photo, or with it chosen again.
        say("有照片没有传上，请移除后重新选择，再提交", true);
        enableButtons();
      } else {
        send();
      }
    }
  }

  // -- Sending the form -----------------------------------------------------

  function enableButtons() {
    Array.prototype.forEach.call(form.querySelectorAll("button[data-label]"), function (button) {
      button.textContent = button.dataset.label;
      button.disabled = false;
    });
  }

  function send() {
    if (input.files && input.files.length && window.FormData) {
      sendWithProgress();
    } else {
      // No submit event: forms.js has already disabled the buttons.
      form.submit();
    }
  }

  function sendWithProgress() {
    var request = new XMLHttpRequest();
    var action = form.action;
    request.open("POST", action);
    progress.hidden = false;
    progress.value = 0;
    say("正在上传照片…");
    request.upload.onprogress = function (event) {
      if (event.lengthComputable) {
        progress.max = event.total;
        progress.value = event.loaded;
      }
    };
    request.upload.onload = function () {
      progress.value = progress.max;
      say("照片已送达，正在处理…");
    };
    request.onload = function () {
      var landed = request.responseURL || action;
      if (landed.split("#")[0] !== action.split("#")[0]) {
        // Redirected (POST/redirect/GET): open that page as a normal visit.
        location.assign(landed);
        return;
      }
      // The form again with its errors, or a page saying why not: show it
      // as if the browser had posted the form itself.
      document.open();
      document.write(request.responseText);
      document.close();
    };
    request.onerror = request.ontimeout = function () {
      progress.hidden = true;
      say("网络出错，照片没有发出，请重试", true);
      enableButtons();
    };
    request.send(new FormData(form));
  }

  form.addEventListener("submit", function (event) {
    if (uploading || queue.length) {
      event.preventDefault();
      submitWhenUploaded = true;
      say("照片上传完后自动提交…");
      return;
    }
    if (input.files && input.files.length && window.FormData) {
      event.preventDefault();
      sendWithProgress();
    }
  });

  if (inWeChat && picker.dataset.sdk && !input.disabled) {
    startWeChat();
  }
})();
