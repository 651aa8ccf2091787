/*
 * courriel on-site tracker (docs/tracker.md). No cookies, no third-party code.
 *
 *   <script>window.courriel=window.courriel||[];["identify","track"].forEach(function(m){
 *     courriel[m]=courriel[m]||function(){courriel.push([m].concat([].slice.call(arguments)))}})</script>
 *   <script src="https://mail.shop.example/t/tracker.js" data-site="PUBLIC_KEY" async></script>
 *
 *   courriel.identify({email: "ana@example.com", first_name: "Ana"});
 *   courriel.track("Viewed Product", {ProductID: "42", ProductName: "Mug", Price: 12.5});
 *
 * Each browser gets a random 128-bit id (hex) in localStorage, sent with every call, so
 * that what it did before identify is merged into the contact. "Active on Site" is sent
 * once per browser session. Calls queued before the script loaded are replayed in order.
 */
(function (w, d) {
  "use strict";
  var script = d.currentScript || d.querySelector("script[data-site]");
  var queued = w.courriel;
  if (!script || (queued && queued.loaded)) {
    return;
  }
  var site = script.getAttribute("data-site") || "";
  var base = (script.getAttribute("data-endpoint") || new URL(script.src, d.baseURI).origin)
    .replace(/\/+$/, "");

  function store(kind) {
    try {
      var s = w[kind];
      s.setItem("courriel.test", "1");
      s.removeItem("courriel.test");
      return s;
    } catch (e) {
      return null; // disabled storage or private mode: keep the id for this page only
    }
  }

  function randomHex() {
    var bytes = new Uint8Array(16);
    w.crypto.getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return out;
  }

  var local = store("localStorage");
  var session = store("sessionStorage");
  var browserId = local && local.getItem("courriel.browser_id");
  if (!/^[0-9a-f]{32}$/.test(browserId || "")) {
    browserId = randomHex();
    if (local) {
      local.setItem("courriel.browser_id", browserId);
    }
  }

  function send(call, body) {
    body.anonymous_id = browserId;
    var url = base + "/t/v1/" + call + "?site=" + encodeURIComponent(site);
    var text = JSON.stringify(body);
    // text/plain keeps the request CORS-simple (no preflight); keepalive lets it outlive
    // the page, like sendBeacon, which is the fallback where fetch is missing.
    if (w.fetch) {
      return w.fetch(url, {
        method: "POST",
        body: text,
        keepalive: true,
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "text/plain;charset=UTF-8" }
      }).then(function (response) {
        return response.ok;
      }, function () {
        return false;
      });
    }
    var sent = !!(w.navigator.sendBeacon && w.navigator.sendBeacon(url, text));
    return w.Promise ? w.Promise.resolve(sent) : sent;
  }

  var api = {
    loaded: true,
    browserId: function () {
      return browserId;
    },
    identify: function (profile) {
      return send("identify", { profile: profile || {} });
    },
    track: function (name, properties, value) {
      var body = { event: String(name), properties: properties || {}, event_id: randomHex() };
      if (typeof value === "number") {
        body.value = value;
      }
      return send("track", body);
    },
    // window.courriel.push([...]) keeps working after the script has loaded.
    push: function (call) {
      if (call && typeof api[call[0]] === "function" && call[0] !== "push") {
        api[call[0]].apply(api, Array.prototype.slice.call(call, 1));
      }
    }
  };
  w.courriel = api;

  if (!session || !session.getItem("courriel.active")) {
    if (session) {
      session.setItem("courriel.active", "1");
    }
    api.track("Active on Site", { URL: w.location.href, Referrer: d.referrer || null });
  }
  if (queued && queued.length) {
    for (var i = 0; i < queued.length; i++) {
      api.push(queued[i]);
    }
  }
})(window, document);
