// deskprov web UI: progressive enhancement only; every page works without this file.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // -- on a phone the section tabs scroll sideways: show the current one --------------------------
  var current = document.querySelector('.nav [aria-current="page"]');
  if (current && current.scrollIntoView) { current.scrollIntoView({ block: "nearest", inline: "center" }); }

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

// -- voice messages: refuse a file larger than the server takes before it is uploaded -------------
// (the server refuses it too, with the same words; this only saves waiting for the upload)
(function () {
  "use strict";
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    var limit = parseInt(input.dataset.maxBytes, 10);
    var message = document.getElementById(input.id + "-error");
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      var tooLarge = !!file && file.size > limit;
      input.setCustomValidity(tooLarge ? input.dataset.tooLarge : "");
      input.setAttribute("aria-invalid", tooLarge ? "true" : "false");
      if (message) {
        message.textContent = tooLarge ? input.dataset.tooLarge : "";
        message.hidden = !tooLarge;
      }
    });
  });
})();

// -- answer groups, calendars, menus: show only the fields that apply; focus after a move ---------
// (every field is there and labelled without JavaScript; this only hides what does not apply)
(function () {
  "use strict";
  document.querySelectorAll("[data-dest]").forEach(function (box) {
    var select = box.querySelector("[data-dest-select]");
    var number = box.querySelector("[data-dest-number]");
    if (!select || !number) { return; }
    function sync() { number.hidden = select.value !== "external"; }
    select.addEventListener("change", sync);
    sync();
  });

  document.querySelectorAll("[data-entry-form]").forEach(function (form) {
    function checked(name) {
      var el = form.querySelector("input[name=" + name + "]:checked");
      return el ? el.value : "";
    }
    function sync() {
      var when = checked("when"), action = checked("action");
      form.querySelectorAll("[data-when]").forEach(function (el) {
        el.hidden = when !== "" && el.dataset.when.split(" ").indexOf(when) < 0;
      });
      form.querySelectorAll("[data-action]").forEach(function (el) {
        el.hidden = action !== "" && el.dataset.action !== action;
      });
    }
    form.addEventListener("change", sync);
    sync();
  });

  document.querySelectorAll("input[data-reveals]").forEach(function (box) {
    var target = document.getElementById(box.dataset.reveals);
    if (!target) { return; }
    function sync() { target.hidden = !box.checked; }
    box.addEventListener("change", sync);
    sync();
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });

  // after a move the same button keeps the focus (also once the browser has jumped to #entry-N)
  var again = document.querySelector("[data-autofocus]");
  if (again) {
    again.focus();
    window.addEventListener("load", function () { if (document.activeElement !== again) { again.focus(); } });
  }
})();
