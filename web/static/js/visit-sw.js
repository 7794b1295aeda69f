/* Service worker of the block agent's 上门办 pages (scope /services/visits/, served by
 * GET /services/visits/sw.js): the phone keeps today's visit pages and their static files,
 * so a visit page opens and its form works with no network. Submissions never go through
 * here — visit.js queues them in IndexedDB with a client id and the server answers a resent
 * id the same way, so nothing is lost or stored twice.
 *
 * Pages: network first (fresh state when online); a page is kept only when the server
 * answered it directly (a redirect to /login is a logged-out phone: the kept pages are
 * dropped). Kept pages expire after MAX_AGE_MS and on logout (session.js). Static files
 * (content-versioned URLs): cache first. */
"use strict";
var CACHE = "sp-visits-v1";
var MAX_AGE_MS = 24 * 3600 * 1000;
var NETWORK_WAIT_MS = 6000;
var SCOPE = "/services/visits/";

self.addEventListener("install", function () { self.skipWaiting(); });

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf("sp-visits-") === 0 && n !== CACHE; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function isPage(url) {
  return url.origin === self.location.origin && url.pathname.indexOf(SCOPE) === 0 &&
    !/\/(sw\.js|submit)$/.test(url.pathname);
}
function isStatic(url) { return url.origin === self.location.origin && url.pathname.indexOf("/static/") === 0; }

function stamp(response) {
  // keep the time a page was stored, to refuse stale ones (no personal data kept for long)
  return response.blob().then(function (body) {
    var headers = new Headers(response.headers);
    headers.set("x-sp-stored", String(Date.now()));
    return new Response(body, { status: response.status, statusText: response.statusText, headers: headers });
  });
}

function keep(request, response) {
  if (!response || !response.ok || response.redirected || response.type !== "basic") {
    if (response && response.redirected && /\/login/.test(response.url)) { return caches.delete(CACHE); }
    return Promise.resolve();
  }
  return Promise.all([caches.open(CACHE), stamp(response.clone())]).then(function (r) {
    return r[0].put(request, r[1]);
  });
}

function fromCache(request) {
  return caches.open(CACHE).then(function (cache) {
    return cache.match(request, { ignoreSearch: true }).then(function (hit) {
      if (!hit) { return null; }
      var stored = Number(hit.headers.get("x-sp-stored") || 0);
      if (Date.now() - stored > MAX_AGE_MS) { return cache.delete(request, { ignoreSearch: true }).then(function () { return null; }); }
      return hit;
    });
  });
}

function offlinePage() {
  var html = "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">" +
    "<title>离线</title><h1>网络不可用</h1><p>该页面尚未保存在手机上。请联网后打开「今日上门」，页面会自动保存以便离线使用。</p>" +
    "<p><a href=\"/services/visits/today\">今日上门</a></p></html>";
  return new Response(html, { status: 503, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } });
}

function pageRequest(event) {
  var request = event.request;
  var network = fetch(request).then(function (response) {
    event.waitUntil(keep(request, response.clone()));
    return response;
  });
  var timer;
  var slow = new Promise(function (resolve) { timer = setTimeout(resolve, NETWORK_WAIT_MS); });
  return Promise.race([network.catch(function () { return null; }), slow]).then(function (first) {
    clearTimeout(timer);
    if (first) { return first; }
    return fromCache(request).then(function (hit) {
      return hit || network.catch(function () { return offlinePage(); });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }  // submissions: visit.js's outbox
  var url = new URL(request.url);
  if (isPage(url) && request.mode === "navigate") {
    event.respondWith(pageRequest(event));
  } else if (isStatic(url)) {
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return cache.match(request).then(function (hit) {
        return hit || fetch(request).then(function (response) {
          if (response.ok) { cache.put(request, response.clone()); }
          return response;
        });
      });
    }));
  }
});

// The page asks to keep a list of URLs (today's visit pages, its own static files).
self.addEventListener("message", function (event) {
  var data = event.data || {};
  if (data.type !== "warm" || !Array.isArray(data.urls)) { return; }
  var source = event.source;
  event.waitUntil(Promise.all(data.urls.slice(0, 60).map(function (href) {
    var url = new URL(href, self.location.origin);
    if (!(isPage(url) || isStatic(url))) { return Promise.resolve(false); }
    var request = new Request(url.href, { credentials: "same-origin" });
    return fetch(request).then(function (response) {
      return keep(request, response).then(function () { return response.ok && !response.redirected; });
    }, function () { return false; });
  })).then(function (done) {
    var n = done.filter(Boolean).length;
    if (source) { source.postMessage({ type: "warmed", count: n }); }
  }));
});
