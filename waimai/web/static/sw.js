// Waimai's service worker (served as /sw.js by waimai/web/pwa.py, scope "/").
// Keeps the app shell, shows the offline page in the page's language when a page cannot be fetched,
// and shows Web Push messages (order updates, incident notices) as notifications.
const SHELL_CACHE = "waimai-shell-v1";
const LANG = new URL(self.location.href).searchParams.get("lang") === "en" ? "en" : "zh_CN";
const OFFLINE = "/offline/" + LANG;
const SHELL = ["/static/app.css", "/static/app.js", "/static/icons/icon-192.png", "/static/icons/icon-512.png",
               "/offline/zh_CN", "/offline/en"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL_CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === "navigate") {
    // Pages are always fresh from the network; only when there is none, the offline page.
    event.respondWith(fetch(req).catch(() => caches.match(OFFLINE)));
    return;
  }
  if (url.pathname.startsWith("/static/")) {
    // The network first (a new release's style and script win), the kept copy when offline.
    event.respondWith(fetch(req).then((res) => {
      if (res.ok) {
        const copy = res.clone();
        caches.open(SHELL_CACHE).then((c) => c.put(req, copy));
      }
      return res;
    }).catch(() => caches.match(req)));
  }
  // Everything else (the API, live updates) goes to the network untouched.
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_err) {
    data = { body: event.data ? event.data.text() : "" };
  }
  const path = typeof data.url === "string" && data.url.startsWith("/") && !data.url.startsWith("//") ? data.url : "/";
  event.waitUntil(self.registration.showNotification(data.title || "外卖 Waimai", {
    body: data.body || "", tag: data.tag || undefined, icon: "/static/icons/icon-192.png",
    badge: "/static/icons/icon-192.png", data: { url: path },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin).href;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((list) => {
    for (const c of list) {
      if (c.url === target && "focus" in c) return c.focus();
    }
    return self.clients.openWindow(target);
  }));
});
