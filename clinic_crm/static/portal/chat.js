/*
 * The portal chat page (messaging/templates/messaging/portal_thread.html), on top of the
 * server-rendered history and the plain POST composer, which keep working without it.
 *
 * - Sends over the shared socket (realtime/socket.js): the bubble shows "sending" until the
 *   server acknowledges it (message.ack / message.new with the same client_msg_id); a refusal
 *   (`error` with that ref) puts the text back into the composer with the reason.
 * - Live: new messages, ticks (message.delivered / message.read), "Clinic is typing…",
 *   a banner while the connection is lost; older pages load upward (the page's own bubbles, an htmx request).
 * - A stored message is drawn only by the server (messaging/_portal_message.html): `message.new`
 *   carries it rendered (`fragment`); this script inserts it. Only the bubble of a message still
 *   on its way, and the times offered after a taken one, are built here, with textContent.
 */
(function () {
  "use strict";

  const root = document.getElementById("chat");
  if (!root || root.dataset.live !== "1" || !window.ClinicRealtime) return;

  const threadId = Number(root.dataset.thread);
  const strings = JSON.parse(document.getElementById("chat-strings").textContent);
  const timeZone = root.dataset.timeZone || undefined;
  const lang = document.documentElement.lang === "en" ? "en-GB" : document.documentElement.lang || "ru";
  const list = document.getElementById("bubbles");
  const form = document.getElementById("composer");
  const textarea = document.getElementById("composer-text");
  const fileInput = document.getElementById("composer-file");
  const filesBox = document.getElementById("composer-files");
  const errorBox = document.getElementById("composer-error");
  const banner = document.getElementById("chat-banner");
  const typingBox = document.getElementById("chat-typing");
  const subBox = document.getElementById("chat-sub");
  const earlier = document.getElementById("chat-earlier");
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  let staffDelivered = Number(root.dataset.staffDelivered) || 0;
  let staffRead = Number(root.dataset.staffRead) || 0;
  let readSeq = Number(root.dataset.readSeq) || 0; // what this page has reported read
  let newestSeen = Number(root.dataset.lastSeq) || 0;

  const bySeq = new Map(); // seq -> <li> of a stored message
  const pending = new Map(); // client_msg_id -> {li, text, attachments, ids}
  const dayLabels = {}; // YYYY-MM-DD -> label (the server's, for days it rendered)

  root.dataset.enhanced = "1";

  // --- formatting --------------------------------------------------------------------

  const dayKey = new Intl.DateTimeFormat("en-CA", { timeZone: timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
  const clock = new Intl.DateTimeFormat(lang, { timeZone: timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const dayMonth = new Intl.DateTimeFormat(lang, { timeZone: timeZone, day: "numeric", month: "long" });
  const clock24 = new Intl.DateTimeFormat("en-GB", { timeZone: timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const dayMonthYear = new Intl.DateTimeFormat(lang, { timeZone: timeZone, day: "numeric", month: "long", year: "numeric" });

  function labelFor(day, date) {
    if (dayLabels[day]) return dayLabels[day];
    const today = dayKey.format(new Date());
    const yesterday = dayKey.format(new Date(Date.now() - 86400000));
    if (day === today) return strings.today;
    if (day === yesterday) return strings.yesterday;
    return (day.slice(0, 4) === today.slice(0, 4) ? dayMonth : dayMonthYear).format(date);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- bubbles -----------------------------------------------------------------------

  function ticks(state) {
    const span = el("span", "ticks " + state);
    span.appendChild(el("span", "sr-only", strings[state] || ""));
    return span;
  }

  function tickState(seq) {
    if (seq <= staffRead) return "read";
    if (seq <= staffDelivered) return "delivered";
    return "sent";
  }

  function renderFiles(attachments) {
    const box = el("div", "files");
    attachments.forEach(function (a) {
      if (a.thumbnail_url) {
        const link = el("a", "file-thumb");
        link.href = a.url;
        link.target = "_blank";
        link.rel = "noopener";
        const img = document.createElement("img");
        img.src = a.thumbnail_url;
        img.alt = a.name;
        if (a.width && a.height) { img.width = a.width; img.height = a.height; }
        link.appendChild(img);
        box.appendChild(link);
      } else {
        const link = el("a", "file-link");
        link.href = a.url + "?inline=1";
        link.target = "_blank";
        link.rel = "noopener";
        const kind = el("span", "file-kind", a.content_type === "application/pdf" ? "PDF" : "FILE");
        kind.setAttribute("aria-hidden", "true");
        link.appendChild(kind);
        link.appendChild(el("span", "file-name", a.name));
        box.appendChild(link);
      }
    });
    return box;
  }

  /** A stored message as the server rendered it for this side (message.new's `fragment`), in the page's language. */
  function fragmentNode(html) {
    const chosen = html && (html[document.documentElement.lang] || html[Object.keys(html)[0]]);
    const template = document.createElement("template");
    template.innerHTML = chosen || ""; // rendered by Django templates (autoescaped), as the page itself
    const li = template.content.firstElementChild;
    if (li) {
      const time = li.querySelector("time");
      li._created = time ? new Date(time.dateTime) : new Date();
    }
    return li;
  }

  // --- offered times: one button per slot, booked with one tap ---------------------------

  /** "YYYY-MM-DDTHH:MM" in the clinic's zone: the portal confirm page's `at` (the link without JavaScript). */
  function localAt(date) {
    return dayKey.format(date) + "T" + clock24.format(date);
  }

  /** In the reader's language and the clinic's zone (the stored label is in the operator's language),
   *  with the zone named for a patient whose clinics are in several zones (as the server renders it). */
  function slotLabel(date) {
    return dayMonth.format(date) + ", " + clock24.format(date) + (strings.zone ? " (" + strings.zone + ")" : "");
  }

  /** An offer's buttons stop booking: the reason is said under them (messaging.fragments.offer_closed_reasons). */
  function closeOffer(box, reason) {
    box.classList.add("is-closed");
    box.querySelectorAll(".offer-slot").forEach(function (a) {
      a.setAttribute("aria-disabled", "true");
      a.removeAttribute("href");
    });
    if (reason) showResult(box, reason);
  }

  /** A visit booked, moved or cancelled closes every offer made before it in this conversation. */
  function closeOffersBefore(seq, event) {
    list.querySelectorAll(".offer-slots").forEach(function (box) {
      const li = box.closest("li.msg");
      if (!li || Number(li.dataset.seq) >= seq || box.classList.contains("is-closed")) return;
      if (box.classList.contains("is-done")) { closeOffer(box, ""); return; } // its own "Booked" line stays
      closeOffer(box, strings.offerClosed[event] || strings.offerClosed.booked);
    });
  }

  function slotLink(slot, label) {
    const link = el("a", "offer-slot", label);
    if (new Date(slot.starts_at) <= new Date()) link.setAttribute("aria-disabled", "true"); // as the server renders a past time
    const query = new URLSearchParams({ service: slot.service, doctor: slot.doctor, at: localAt(new Date(slot.starts_at)), for: root.dataset.patient });
    link.href = root.dataset.confirmUrl + "?" + query.toString();
    link.dataset.doctor = slot.doctor;
    link.dataset.service = slot.service;
    link.dataset.startsAt = slot.starts_at;
    if (slot.doctor_name) link.title = slot.doctor_name + (slot.service_name ? ", " + slot.service_name : "");
    return link;
  }

  function showResult(box, text, link) {
    const result = box.querySelector(".offer-result");
    result.textContent = text;
    if (link) {
      result.appendChild(document.createTextNode(" "));
      const a = el("a", "", link.text);
      a.href = link.href;
      result.appendChild(a);
    }
    result.hidden = false;
  }

  /** The nearest free times the server offers when the tapped one was just taken (not part of any offer). */
  function renderAlternatives(box, alternatives, service) {
    const old = box.querySelector(".offer-alternatives");
    if (old) old.remove();
    if (!alternatives.length) return;
    const more = el("div", "offer-slots offer-alternatives");
    alternatives.forEach(function (alt) {
      const when = new Date(alt.starts_at);
      const slot = { doctor: alt.doctor, service: service, starts_at: alt.starts_at, doctor_name: alt.doctor_name };
      more.appendChild(slotLink(slot, slotLabel(when) + " · " + alt.doctor_name));
    });
    const result = el("p", "offer-result");
    result.setAttribute("role", "status");
    result.hidden = true;
    more.appendChild(result);
    box.after(more);
  }

  function book(link) {
    const box = link.closest(".offer-slots");
    if (box.getAttribute("aria-busy") === "true" || box.classList.contains("is-done")) return;
    box.setAttribute("aria-busy", "true");
    link.classList.add("is-busy");
    showResult(box, strings.booking);
    const body = {
      doctor: Number(link.dataset.doctor),
      service: Number(link.dataset.service),
      starts_at: link.dataset.startsAt,
      thread: threadId,
      patient: Number(root.dataset.patient),
    };
    if (box.dataset.offer) body.offer = Number(box.dataset.offer);
    fetch(root.dataset.bookUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
      body: JSON.stringify(body),
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (res) {
        if (res.ok) {
          box.classList.add("is-done");
          link.classList.add("is-booked");
          box.querySelectorAll(".offer-slot").forEach(function (a) { a.setAttribute("aria-disabled", "true"); });
          const alternatives = box.parentNode.querySelector(".offer-alternatives");
          if (alternatives && alternatives !== box) alternatives.remove();
          showResult(box, strings.booked, { text: strings.openVisit, href: root.dataset.visitsUrl + res.data.id + "/" });
          return;
        }
        const data = res.data;
        if (data.code === "consent_required" && data.clinic) {
          showResult(box, data.detail, { text: strings.giveConsent, href: "/portal/clinics/" + data.clinic + "/consent/?next=" + encodeURIComponent(location.pathname) });
        } else if (data.code === "slot_taken" && (data.alternatives || []).length) {
          showResult(box, strings.taken);
        } else {
          showResult(box, data.detail || strings.bookFailed);
        }
        if (data.code === "slot_taken") {
          link.classList.add("is-taken");
          link.setAttribute("aria-disabled", "true");
          renderAlternatives(box, data.alternatives || [], body.service);
        }
      })
      .catch(function () { showResult(box, strings.bookFailed); })
      .finally(function () {
        box.removeAttribute("aria-busy");
        link.classList.remove("is-busy");
      });
  }

  list.addEventListener("click", function (event) {
    const link = event.target.closest("a.offer-slot");
    if (!link || !list.contains(link)) return;
    event.preventDefault();
    if (link.getAttribute("aria-disabled") === "true") return;
    book(link);
  });

  /** The bubble of a message on its way: plain text until the server's copy replaces it. */
  function renderPending(text, attachments) {
    const now = new Date();
    const li = el("li", "msg mine pending");
    li.dataset.day = dayKey.format(now);
    const bubble = el("div", "bubble");
    if (attachments.length) bubble.appendChild(renderFiles(attachments));
    if (text) bubble.appendChild(el("div", "text", text));
    const meta = el("div", "meta");
    meta.appendChild(el("time", "", clock.format(now)));
    meta.appendChild(ticks("sending"));
    bubble.appendChild(meta);
    li.appendChild(bubble);
    li._created = now;
    return li;
  }

  function setTicks(li, state) {
    const old = li.querySelector(".ticks");
    if (old && !old.classList.contains(state)) old.replaceWith(ticks(state));
  }

  function refreshTicks() {
    bySeq.forEach(function (li, seq) {
      if (li.classList.contains("mine")) setTicks(li, tickState(seq));
    });
  }

  /** Keep the list in seq order; bubbles still sending stay at the bottom. */
  function insert(li, seq) {
    const empty = document.getElementById("chat-empty");
    if (empty) empty.remove();
    let next = null;
    for (const node of list.children) {
      if (!node.classList.contains("msg")) continue;
      if (node.classList.contains("pending") || Number(node.dataset.seq) > seq) { next = node; break; }
    }
    list.insertBefore(li, next);
    bySeq.set(seq, li);
    layoutDays();
  }

  /** Day separators between messages of different days (in the clinic's time zone). */
  function layoutDays() {
    list.querySelectorAll("li.day").forEach(function (node) { node.remove(); });
    let previous = null;
    Array.from(list.children).forEach(function (node) {
      if (!node.classList.contains("msg")) return;
      const day = node.dataset.day;
      if (day && day !== previous) {
        const divider = el("li", "day");
        divider.dataset.day = day;
        divider.appendChild(el("span", "", labelFor(day, node._created || new Date(day + "T12:00:00"))));
        // The day's label goes above the "New messages" line, not between it and its message.
        const unread = node.previousElementSibling;
        list.insertBefore(divider, unread && unread.classList.contains("unread-divider") ? unread : node);
      }
      previous = day;
    });
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 160;
  }

  function scrollToBottom() {
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  // --- the page as rendered by the server ---------------------------------------------

  list.querySelectorAll("li.day").forEach(function (node) { dayLabels[node.dataset.day] = node.textContent.trim(); });
  list.querySelectorAll("li.msg").forEach(function (li) {
    bySeq.set(Number(li.dataset.seq), li);
    const time = li.querySelector("time");
    if (time) li._created = new Date(time.dateTime);
  });

  const rt = window.ClinicRealtime.connect({});
  bySeq.forEach(function (_li, seq) { rt.hold(threadId, seq); });
  rt.hold(threadId, newestSeen);
  window.ClinicChat = { realtime: rt }; // tests drop the connection through this

  // --- read markers -------------------------------------------------------------------

  function markRead() {
    if (document.visibilityState !== "visible" || newestSeen <= readSeq) return;
    readSeq = newestSeen;
    rt.send({ type: "read", thread: threadId, seq: newestSeen });
  }

  document.addEventListener("visibilitychange", markRead);
  markRead();

  // --- live events ----------------------------------------------------------------------

  function settle(clientId, seq) {
    const entry = pending.get(clientId);
    if (!entry) return null;
    pending.delete(clientId);
    entry.li.classList.remove("pending");
    entry.li.dataset.seq = seq;
    entry.li.dataset.clientId = clientId;
    entry.li.dataset.provisional = "1";
    setTicks(entry.li, tickState(seq));
    // Keep it in seq order: a staff message may have been stored just before it.
    entry.li.remove();
    insert(entry.li, seq);
    return entry.li;
  }

  rt.on("message.new", function (m) {
    if (m.thread !== threadId) return;
    const mine = m.author === "patient";
    const stick = nearBottom() || mine;
    let li = bySeq.get(m.seq) || (mine && m.client_msg_id ? settle(m.client_msg_id, m.seq) : null);
    const stored = li && !li.dataset.provisional ? null : fragmentNode(m.fragment);
    if (li && stored) {
      // Our own bubble: swap in the server's copy (links made clickable, final time).
      li.replaceWith(stored);
      bySeq.set(m.seq, stored);
      layoutDays();
    } else if (stored) {
      insert(stored, m.seq);
    }
    if (stored && stored.querySelector(".ticks")) setTicks(stored, tickState(m.seq));
    if (m.seq > newestSeen) newestSeen = m.seq;
    if (m.visit_event) closeOffersBefore(m.seq, m.visit_event);
    if (m.author === "staff") {
      // A reply means the clinic has read everything before it (the server records the same).
      staffRead = Math.max(staffRead, m.seq);
      staffDelivered = Math.max(staffDelivered, m.seq);
      refreshTicks();
      showTyping(false);
    }
    if (!mine) {
      if (document.visibilityState === "visible") markRead();
      else rt.sendNow({ type: "delivered", thread: threadId, seq: m.seq });
    }
    if (stick) scrollToBottom();
  });

  rt.on("message.ack", function (ack) {
    if (ack.thread !== threadId) return;
    settle(ack.client_msg_id, ack.seq);
  });

  rt.on("error", function (err) {
    const entry = err.ref && pending.get(err.ref);
    if (!entry) return;
    pending.delete(err.ref);
    entry.li.remove();
    if (!textarea.value.trim()) {
      textarea.value = entry.text;
      autosize();
    }
    entry.attachments.forEach(addReadyChip);
    showError(err.reason || strings.notSent);
  });

  function onMarker(event, apply) {
    if (event.thread !== threadId || event.side !== "staff") return;
    apply(event.seq);
    refreshTicks();
  }
  rt.on("message.delivered", function (e) { onMarker(e, function (seq) { staffDelivered = Math.max(staffDelivered, seq); }); });
  rt.on("message.read", function (e) {
    onMarker(e, function (seq) { staffRead = Math.max(staffRead, seq); staffDelivered = Math.max(staffDelivered, seq); });
  });

  let typingTimer = null;
  function showTyping(on) {
    clearTimeout(typingTimer);
    typingBox.hidden = !on;
    subBox.hidden = on && subBox.textContent.trim() !== "";
    if (on) typingTimer = setTimeout(function () { showTyping(false); }, 6000);
  }
  rt.on("typing", function (e) {
    if (e.thread === threadId && e.side === "staff") showTyping(e.state !== false);
  });

  rt.on("resumed", function (e) {
    if ((e.reload || []).indexOf(threadId) !== -1) { window.location.reload(); return; }
    // A frame may have been lost with the connection: send what is still unconfirmed again
    // (the server stores a client_msg_id once, so a repeat is harmless).
    // Frames typed while offline were queued by socket.js and have just been flushed.
    pending.forEach(function (entry, clientId) {
      if (entry.connection === connection) return;
      const queued = entry.connection === null;
      entry.connection = connection;
      if (queued) return;
      rt.sendNow({ type: "message.send", thread: threadId, text: entry.text, client_msg_id: clientId, attachments: entry.ids });
    });
  });

  // --- connection banner ----------------------------------------------------------------

  let lost = false;
  let bannerTimer = null;
  let connection = null; // a number per socket session while online, null while offline
  function showBanner(text, state) {
    clearTimeout(bannerTimer);
    banner.textContent = text;
    banner.className = "chat-banner " + state;
    banner.hidden = false;
  }
  let sessions = 0;
  rt.on("status", function (s) {
    connection = s.state === "online" ? (sessions += 1) : null;
    if (s.state === "offline" || s.state === "reconnecting") {
      lost = true;
      showBanner(strings.reconnecting, "offline");
    } else if (s.state === "online") {
      if (lost) {
        showBanner(strings.online, "online");
        bannerTimer = setTimeout(function () { banner.hidden = true; }, 2500);
      }
      lost = false;
    } else if (s.state === "signed-out") {
      showBanner(strings.signedOut, "offline");
    }
  });

  // --- composer -------------------------------------------------------------------------

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function autosize() {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight + 2, 160) + "px";
  }

  let typingSentAt = 0;
  let typingOn = false;
  function stopTyping() {
    if (typingOn) rt.sendNow({ type: "typing", thread: threadId, state: false });
    typingOn = false;
    typingSentAt = 0;
  }
  textarea.addEventListener("input", function () {
    autosize();
    if (!textarea.value.trim()) { stopTyping(); return; }
    const now = Date.now();
    if (now - typingSentAt >= 3000 && rt.sendNow({ type: "typing", thread: threadId, state: true })) {
      typingSentAt = now;
      typingOn = true;
    }
  });
  textarea.addEventListener("blur", stopTyping);
  textarea.addEventListener("keydown", function (event) {
    // A keyboard with a mouse sends on Enter (Shift+Enter: new line); a phone keeps Enter for new lines.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && window.matchMedia("(pointer: fine)").matches) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Files are uploaded as soon as they are picked, then sent with the message by id.
  let uploading = 0;
  const ready = []; // attachment payloads waiting for the next message

  function chip(name) {
    const li = el("li", "chip uploading");
    li.appendChild(el("span", "chip-name", name));
    li.appendChild(el("span", "chip-state", strings.uploading));
    filesBox.appendChild(li);
    filesBox.hidden = false;
    return li;
  }

  function addReadyChip(attachment) {
    ready.push(attachment);
    const li = el("li", "chip");
    if (attachment.thumbnail_url) {
      const img = document.createElement("img");
      img.src = attachment.thumbnail_url;
      img.alt = "";
      li.appendChild(img);
    } else {
      const kind = el("span", "file-kind", "PDF");
      kind.setAttribute("aria-hidden", "true");
      li.appendChild(kind);
    }
    li.appendChild(el("span", "chip-name", attachment.name));
    const remove = el("button", "chip-remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", strings.removeFile + ": " + attachment.name);
    remove.addEventListener("click", function () {
      ready.splice(ready.indexOf(attachment), 1);
      li.remove();
      filesBox.hidden = !filesBox.children.length;
    });
    li.appendChild(remove);
    filesBox.appendChild(li);
    filesBox.hidden = false;
    return li;
  }

  function upload(file) {
    const placeholder = chip(file.name);
    const body = new FormData();
    body.append("file", file);
    uploading += 1;
    showError("");
    fetch(root.dataset.uploadUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) throw new Error(data.detail || strings.uploadFailed);
          return data;
        });
      })
      .then(function (attachment) { placeholder.replaceWith(addReadyChip(attachment)); })
      .catch(function (err) {
        placeholder.remove();
        filesBox.hidden = !filesBox.children.length;
        showError(err.message && err.message !== "Failed to fetch" ? err.message : strings.uploadFailed);
      })
      .finally(function () { uploading -= 1; });
  }

  fileInput.addEventListener("change", function () {
    Array.from(fileInput.files).forEach(upload);
    fileInput.value = "";
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (uploading) { showError(strings.waitUpload); return; }
    const text = textarea.value.trim();
    const attachments = ready.splice(0, ready.length);
    if (!text && !attachments.length) { textarea.focus(); return; }
    const ids = attachments.map(function (a) { return a.id; });
    const clientId = rt.newId();
    const li = renderPending(text, attachments);
    pending.set(clientId, { li: li, text: text, attachments: attachments, ids: ids, connection: connection });
    const empty = document.getElementById("chat-empty");
    if (empty) empty.remove();
    list.appendChild(li);
    layoutDays();
    rt.send({ type: "message.send", thread: threadId, text: text, client_msg_id: clientId, attachments: ids });
    textarea.value = "";
    filesBox.textContent = "";
    filesBox.hidden = true;
    showError("");
    stopTyping();
    autosize();
    scrollToBottom();
  });

  // --- earlier messages -----------------------------------------------------------------

  if (earlier) {
    earlier.addEventListener("click", function (event) {
      event.preventDefault();
      if (earlier.getAttribute("aria-busy") === "true") return;
      const first = Math.min.apply(null, Array.from(bySeq.keys()));
      earlier.setAttribute("aria-busy", "true");
      // The page's own history before `first`, only the bubbles (messaging.views._render_thread answers htmx so).
      fetch(root.dataset.pageUrl + "?before=" + first, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (response) {
          if (!response.ok) throw new Error(response.statusText);
          return response.text();
        })
        .then(function (html) {
          const template = document.createElement("template");
          template.innerHTML = html; // server-rendered (escaped by Django templates)
          const height = document.documentElement.scrollHeight;
          const top = window.scrollY;
          const info = template.content.querySelector(".chat-page");
          template.content.querySelectorAll("li.day").forEach(function (node) { dayLabels[node.dataset.day] = node.textContent.trim(); });
          template.content.querySelectorAll("li.msg").forEach(function (li) {
            const seq = Number(li.dataset.seq);
            if (bySeq.has(seq)) return;
            const time = li.querySelector("time");
            li._created = time ? new Date(time.dateTime) : new Date();
            rt.hold(threadId, seq);
            insert(li, seq);
          });
          // Keep the message the reader was looking at where it was.
          window.scrollTo(0, top + document.documentElement.scrollHeight - height);
          if (!info || info.dataset.hasMore !== "1") earlier.parentNode.remove();
        })
        .catch(function () { showError(strings.earlierFailed); })
        .finally(function () { earlier.removeAttribute("aria-busy"); });
    });
  }

  autosize();
  scrollToBottom();
})();
