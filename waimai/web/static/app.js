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
