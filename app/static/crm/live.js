/* Live notifications (app/comms/live.py): keeps the navbar bell's count current and shows a
   toast for a new notification, from a Server-Sent Events stream, or by polling when the
   server has no stream (embedded mode). No inline script: this file is the whole of it. */
(function () {
  "use strict";
  var bell = document.getElementById("notification-bell");
  if (!bell) { return; }
  var badge = document.getElementById("unread-count");
  var newest = null;  // the newest unread id seen; null until the first state arrives

  function toast(state) {
    var box = document.getElementById("crm-toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "crm-toast";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      box.className = "alert alert-info";
      box.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2000;max-width:360px";
      document.body.appendChild(box);
    }
    box.textContent = "";
    var link = document.createElement("a");
    link.href = state.link || bell.getAttribute("href");
    link.textContent = state.title || "New notification";
    box.appendChild(document.createTextNode("New: "));
    box.appendChild(link);
    box.style.display = "block";
    clearTimeout(box.hideTimer);
    box.hideTimer = setTimeout(function () { box.style.display = "none"; }, 8000);
  }

  function show(state) {
    badge.textContent = String(state.unread);
    if (newest !== null && state.id !== null && state.id > newest) { toast(state); }
    if (state.id !== null && (newest === null || state.id > newest)) { newest = state.id; }
    if (newest === null) { newest = 0; }
    bell.setAttribute("data-live-state", "current");
  }

  function poll() {
    fetch(bell.getAttribute("data-latest-url"), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (answer) {
      if (answer.ok) { return answer.json().then(show); }
    }).catch(function () { /* offline: try again on the next tick */ });
  }

  function startPolling() {
    bell.setAttribute("data-live", "polling");
    poll();
    setInterval(poll, Number(bell.getAttribute("data-poll-seconds") || 5) * 1000);
  }

  var streamUrl = bell.getAttribute("data-stream-url");
  if (!streamUrl || !window.EventSource) { startPolling(); return; }
  var opened = false;
  var source = new EventSource(streamUrl);
  source.onmessage = function (event) {
    opened = true;
    bell.setAttribute("data-live", "stream");
    show(JSON.parse(event.data));
  };
  source.onerror = function () {
    // Reconnecting after a stream ends is EventSource's own work; a stream that never
    // opened (no Redis on the server: 404) means polling instead.
    if (!opened) { source.close(); startPolling(); }
  };
})();
