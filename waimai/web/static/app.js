// Phones: the header is one row and the links sit behind the menu button; without JavaScript they stay listed.
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.getElementById("menu-toggle");
  const nav = document.getElementById("main-nav");
  if (!toggle || !nav) return;
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
});
// Pages that follow a queue (kitchen, rider, alerts) reload themselves every N seconds, but never
// while someone is typing or choosing in a form on them. Without JavaScript a <noscript> meta refresh does it.
(function () {
  const meta = document.querySelector('meta[name="refresh-after"]');
  const every = meta ? Number(meta.content) * 1000 : 0;
  if (!every) return;
  const tick = () => {
    const a = document.activeElement;
    const busy = a && ["INPUT", "TEXTAREA", "SELECT"].includes(a.tagName) && a.type !== "submit";
    if (busy) { setTimeout(tick, every); } else { location.reload(); }
  };
  setTimeout(tick, every);
})();
// The installable app (waimai/web/pwa.py): the service worker on customer pages, and the push
// notifications switch on "My orders" (hidden where the browser has no Push API).
(function () {
  const root = document.documentElement;
  if (root.dataset.sw !== "1" || !("serviceWorker" in navigator)) return;
  const lang = root.lang === "en" ? "en" : "zh_CN";
  const registered = navigator.serviceWorker.register("/sw.js?lang=" + lang, { scope: "/" });
  registered.catch(() => {});
  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("push");
    if (!box) return;
    const btn = box.querySelector("button");
    const note = box.querySelector("[data-state]");
    box.hidden = false;
    const say = (key) => { note.textContent = box.dataset[key] || ""; };
    if (!("PushManager" in window) || !("Notification" in window)) { btn.hidden = true; say("unsupported"); return; }
    const show = (on) => {
      btn.textContent = on ? box.dataset.turnOff : box.dataset.turnOn;
      btn.setAttribute("aria-pressed", String(on));
      say(on ? "on" : "off");
    };
    const api = (path, body) => fetch(path, {
      method: body ? "POST" : "GET", credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined,
    }).then((r) => { if (!r.ok) throw new Error(String(r.status)); return r.json(); });
    const bytes = (s) => {
      const raw = atob((s + "=".repeat((4 - s.length % 4) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
      return Uint8Array.from(raw, (c) => c.charCodeAt(0));
    };
    registered.then((reg) => reg.pushManager.getSubscription()).then((sub) => show(!!sub)).catch(() => show(false));
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      try {
        const reg = await navigator.serviceWorker.ready;
        const sub = await reg.pushManager.getSubscription();
        if (sub) {
          await api("/api/v1/push/unsubscribe", { endpoint: sub.endpoint }).catch(() => null);
          await sub.unsubscribe();
          show(false);
        } else {
          if (await Notification.requestPermission() !== "granted") { say("blocked"); return; }
          const key = await api("/api/v1/push/public-key");
          const fresh = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key.public_key) });
          await api("/api/v1/push/subscribe", Object.assign(fresh.toJSON(), { locale: lang }));
          show(true);
        }
      } catch (_err) {
        say("failed");
      } finally {
        btn.disabled = false;
      }
    });
  });
})();
