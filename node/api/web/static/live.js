// Live updates: follow the node's event stream (SSE) and refresh the
// regions of the page that changed, without a reload. The page works
// without this script; it only saves pressing reload.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource || !window.fetch) return;
  var topics = main.getAttribute("data-live").split(" ");
  var after = main.getAttribute("data-after") || "0";
  var note = document.getElementById("live-note");
  var timer = null;

  // dirty reports whether a region holds a form the reader is using.
  function dirty(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    var fields = el.querySelectorAll("textarea, input[type=text]");
    for (var i = 0; i < fields.length; i++) if (fields[i].value !== fields[i].defaultValue) return true;
    return false;
  }

  function refresh() {
    timer = null;
    fetch(location.pathname + location.search, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var changed = 0;
        doc.querySelectorAll("[data-region]").forEach(function (fresh) {
          var old = document.getElementById(fresh.id);
          if (!old || old.innerHTML === fresh.innerHTML || dirty(old)) return;
          old.innerHTML = fresh.innerHTML;
          old.classList.remove("new"); void old.offsetWidth; old.classList.add("new");
          changed++;
        });
        if (changed && note) note.textContent = note.getAttribute("data-new");
      })
      .catch(function () {});
  }

  var es = new EventSource("/api/v1/events?after=" + encodeURIComponent(after));
  es.addEventListener("open", function () { main.setAttribute("data-live-state", "open"); });
  es.addEventListener("record", function (e) {
    var rec;
    try { rec = JSON.parse(e.data); } catch (err) { return; }
    if (topics.indexOf(rec.topic) < 0 && topics.indexOf("*") < 0) return;
    if (!timer) timer = setTimeout(refresh, 250);
  });
})();
