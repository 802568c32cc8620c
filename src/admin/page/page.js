// Live refresh: every 2 s fetch this page again and swap in its <main> when it changed, so edits
// on disk and sidecar states show without a reload; ages ("3 s ago") are kept current in between.
(function () {
  "use strict";
  var main = document.getElementById("topology");
  var live = document.getElementById("live");
  var last = main.innerHTML;
  var refreshes = 0;
  function ago(s) {
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 129600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function ages() {
    var now = Date.now();
    main.querySelectorAll("time[datetime]").forEach(function (t) {
      var age = t.nextElementSibling;
      if (!age || !age.classList.contains("age")) {
        age = document.createElement("span");
        age.className = "age";
        t.after(age);
      }
      var s = Math.max(0, Math.round((now - Date.parse(t.dateTime)) / 1000));
      age.textContent = " (" + ago(s) + ")";
    });
  }
  function tick() {
    fetch(location.href, { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var next = doc.getElementById("topology");
        if (next && next.innerHTML !== last) {
          last = next.innerHTML;
          main.innerHTML = last;
        }
        refreshes += 1;
        document.body.setAttribute("data-refreshes", String(refreshes));
        live.className = "live";
        live.textContent = "live · updated " + new Date().toLocaleTimeString();
      })
      .catch(function (e) {
        live.className = "live down";
        live.textContent = "meshplane unreachable (" + e.message + "): showing the last state";
      })
      .finally(function () {
        ages();
        setTimeout(tick, 2000);
      });
  }
  live.textContent = "live · refreshes every 2 s";
  ages();
  setTimeout(tick, 2000);
})();
