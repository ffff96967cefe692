// deskprov web UI: progressive enhancement only; every page works without this file.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function post(form) {
    return fetch(form.action, {
      method: "POST", credentials: "same-origin", body: new FormData(form),
      headers: { "X-CSRF-Token": csrf, "X-Requested-With": "fetch" }
    });
  }

  // -- polled fragments (the technician's inbox): re-read every few seconds, never mid-edit ------
  document.querySelectorAll("[data-poll]").forEach(function (holder) {
    var seconds = Math.max(2, parseInt(holder.dataset.pollSeconds || "5", 10));
    function busy() {
      var el = document.activeElement;
      return el && holder.contains(el) && el.closest("form") && (el.tagName === "SELECT" || el.value);
    }
    function poll() {
      if (document.visibilityState !== "visible" || busy()) { return; }
      fetch(holder.dataset.poll, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) {
          if (r.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname)); }
          if (!r.ok) { throw new Error(String(r.status)); }
          return r.text();
        })
        .then(function (html) { if (!busy()) { holder.innerHTML = html; } })
        .catch(function () {});
    }
    window.setInterval(poll, seconds * 1000);
    document.addEventListener("visibilitychange", poll);
  });

  // -- Mina svarsgrupper: toggles without reload, live updates over server-sent events --------
  var box = document.querySelector("[data-live-groups]");
  if (!box) { return; }
  var state = document.getElementById("live-state");
  var refreshButton = document.querySelector("[data-live-refresh]");

  function snapshot() {
    var out = {};
    box.querySelectorAll("[data-member]").forEach(function (el) {
      out[el.closest("[data-group]").dataset.group + "/" + el.dataset.member] = el.dataset.state;
    });
    return out;
  }

  function swap(html) {
    var before = snapshot();
    var focused = document.activeElement && document.activeElement.id;
    box.innerHTML = html;
    box.querySelectorAll("[data-member]").forEach(function (el) {
      var key = el.closest("[data-group]").dataset.group + "/" + el.dataset.member;
      if (before[key] !== undefined && before[key] !== el.dataset.state) { el.classList.add("changed"); }
    });
    if (focused) {
      var again = document.getElementById(focused);
      if (again) { again.focus(); }
    }
  }

  var pending = null;
  function refresh() {
    if (pending) { return pending; }
    if (refreshButton) { refreshButton.classList.add("busy"); }
    pending = fetch(box.dataset.fragment, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/login?next=/groups"); throw new Error("logged out"); }
        return r.text();
      })
      .then(swap)
      .catch(function () {})
      .then(function () { pending = null; if (refreshButton) { refreshButton.classList.remove("busy"); } });
    return pending;
  }

  box.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("[data-toggle]")) { return; }
    event.preventDefault();
    var button = form.querySelector("[role=switch]");
    button.setAttribute("aria-busy", "true");
    button.setAttribute("aria-checked", form.elements.logged_in.value === "1" ? "true" : "false");
    post(form).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.text();
    }).then(swap).catch(function () { refresh(); });
  });

  if (refreshButton) {
    refreshButton.closest("form").addEventListener("submit", function (event) {
      event.preventDefault();
      refresh();
    });
  }

  function live(on) {
    if (!state) { return; }
    state.textContent = on ? state.dataset.liveText : state.dataset.offlineText;
    state.className = "live-state " + (on ? "on" : "off");
  }

  if (window.EventSource) {
    var source = new EventSource(box.dataset.liveGroups);
    var first = true;
    source.addEventListener("ready", function () {
      live(true);
      if (!first) { refresh(); }  // a reconnect may have missed changes
      first = false;
    });
    source.addEventListener("groups", function () { refresh(); });
    source.addEventListener("error", function () { live(false); });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { refresh(); }
  });
})();
