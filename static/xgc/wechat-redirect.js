// WeChat's authorize URL ends in #wechat_redirect, and a browser keeps a URL's
// fragment through redirects whose Location has none: after signing in, the
// fan's address bar would read /#wechat_redirect. Drop it, keeping the path
// and the query (no reload, no new history entry).
(function () {
  "use strict";
  if (location.hash === "#wechat_redirect" && window.history && history.replaceState) {
    history.replaceState(history.state, "", location.pathname + location.search);
  }
})();
