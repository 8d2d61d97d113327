/*
 * The sidebar's inbox badge (threads with unread patient messages), kept live on every admin page.
 *
 * The inbox page (inbox.js) already holds a socket and re-fetches its list, which carries the count:
 * it calls InboxBadge.set(n) and this script opens nothing. Other admin pages open the shared socket
 * (realtime/socket.js) and, when a message or a thread change arrives, ask /admin/inbox/badge/ for the count.
 */
(function (global) {
  "use strict";

  // Unfold's "danger"/"solid" badge (unfold/helpers/app_list_badge.html), for when the count appears from zero.
  const CLASSES = "font-semibold h-[18px] leading-[18px] ml-2 px-1 relative rounded-xs text-center text-[11px] whitespace-nowrap uppercase min-w-[18px] text-white text-shadow-xs bg-red-500";

  function inboxLink() {
    // The sidebar item of the inbox (clinics.admin_site._inbox_item links to /admin/inbox/).
    return Array.from(document.querySelectorAll("#nav-sidebar a[href]")).find(function (a) {
      return new URL(a.href, global.location.href).pathname.endsWith("/inbox/");
    }) || null;
  }

  function badgeOf(link) {
    const spans = link.querySelectorAll(":scope > span");
    return spans.length > 2 ? spans[spans.length - 1] : null; // icon, title, then the badge when there is one
  }

  function set(count) {
    const link = inboxLink();
    if (!link) return;
    let badge = badgeOf(link);
    if (!count) { if (badge) badge.remove(); return; }
    if (!badge) {
      badge = document.createElement("span");
      badge.className = CLASSES;
      link.append(badge);
    }
    badge.dataset.inboxBadge = "";
    badge.textContent = String(count);
  }

  global.InboxBadge = { set: set };

  function start() {
    if (document.getElementById("inbox-config")) return; // the inbox page: inbox.js keeps it
    const link = inboxLink();
    if (!link || !global.ClinicRealtime) return; // not a staff page with the inbox in its menu
    const url = new URL("badge/", link.href).toString();
    let timer = null;
    function refresh() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (data) { if (data && typeof data.unread_threads === "number") set(data.unread_threads); })
          .catch(function () { /* the next event tries again */ });
      }, 300);
    }
    const rt = global.ClinicRealtime.connect({});
    let online = false;
    rt.on("status", function (status) {
      if (status.state === "online" && online) refresh(); // back after a drop: whatever came meanwhile
      online = online || status.state === "online";
    });
    rt.on("message.new", refresh);
    rt.on("thread.updated", refresh);
    rt.on("message.read", function (event) { if (event.side === "staff") refresh(); }); // a colleague read a thread
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window);
