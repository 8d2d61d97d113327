/*
 * The operator inbox (/admin/inbox/): keeps the server-rendered page live.
 *
 * - One socket (ClinicRealtime from realtime/socket.js). A `message.new` carries the message and
 *   its thread's list row rendered by the server (messaging.fragments): the message goes into the
 *   open thread, the row replaces or tops the list (if the list's filters hold it); only the filter
 *   counts are re-fetched (/admin/inbox/list/filters/). Other changes (thread.updated, a resumed
 *   connection) re-fetch the list (/admin/inbox/list/) and the patient card (…/card/).
 * - Fetches are htmx requests (HX-Request, django-htmx's request.htmx on the server); "Load more"
 *   under the list is htmx itself (hx-get of /admin/inbox/list/more/?after=<cursor>).
 * - The open thread: live messages inserted as the server rendered them, read receipts, the
 *   patient's typing, presence of colleagues ("Mark is also viewing", "Mark is replying…"),
 *   older pages upward.
 * - The composer: replies and private notes over the socket (idempotent by client_msg_id),
 *   canned answers ("/" + shortcode or the dropdown), attachments through the REST API.
 * - Offering times: the form of /admin/calendar/offer/<thread>/ as a panel above the composer.
 * - On a phone the three panes are shown one at a time (data-view on #inbox: list, thread, card);
 *   the card is #card in the address, so the browser's Back returns to the conversation.
 * - The sidebar's inbox badge follows the count the list fragment carries (badge.js).
 */
(function () {
  "use strict";

  const configNode = document.getElementById("inbox-config");
  if (!configNode) return;
  const config = JSON.parse(configNode.textContent);
  const t = config.i18n;
  const me = config.me;
  const thread = config.thread; // null when no conversation is open

  // --- small helpers ----------------------------------------------------------------------------

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key] === undefined ? "" : values[key]; });
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function cookie(name) {
    const found = document.cookie.split("; ").find(function (row) { return row.startsWith(name + "="); });
    return found ? decodeURIComponent(found.split("=")[1]) : "";
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return (input && input.value) || cookie("csrftoken");
  }

  function fetchHtml(url, options) {
    const init = Object.assign({ credentials: "same-origin" }, options || {});
    init.headers = Object.assign({ "HX-Request": "true" }, init.headers || {});
    return fetch(url, init).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    });
  }

  /** The server's rendering of a message or a row, in the page's language: one <li>. */
  function fragmentNode(html) {
    const lang = document.documentElement.lang || "";
    const chosen = html && (html[lang] || html[lang.split("-")[0]] || html[Object.keys(html)[0]]);
    const template = document.createElement("template");
    template.innerHTML = chosen || ""; // rendered by Django templates (autoescaped), as the page itself
    return template.content.firstElementChild;
  }

  // --- waiting labels tick forward ----------------------------------------------------------------

  function waitingLabel(since) {
    const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 60000));
    if (minutes < 60) return fmt(t.waitingMin, { minutes: minutes });
    if (minutes < 24 * 60) return fmt(t.waitingHours, { hours: Math.floor(minutes / 60), minutes: minutes % 60 });
    return fmt(t.waitingDays, { days: Math.floor(minutes / (24 * 60)) });
  }

  function tickWaiting() {
    document.querySelectorAll(".inbox-waiting[data-since]").forEach(function (node) {
      node.textContent = waitingLabel(node.dataset.since);
    });
  }
  setInterval(tickWaiting, 30000);

  // --- one pane at a time on a phone (window.history: `history` below is the messages pane) --------

  const inboxNode = document.getElementById("inbox");

  function viewFromAddress() {
    if (!thread) return "list";
    return window.location.hash === "#card" ? "card" : "thread";
  }

  function setView(view) {
    if (!inboxNode || inboxNode.dataset.view === view) return;
    inboxNode.dataset.view = view;
    document.dispatchEvent(new CustomEvent("inbox:view", { detail: view }));
  }

  function placeInbox() {
    // The panes fill the screen under Unfold's header: the composer stays at the bottom, the history scrolls.
    if (inboxNode) inboxNode.style.setProperty("--inbox-top", Math.max(0, Math.round(inboxNode.getBoundingClientRect().top + window.scrollY)) + "px");
  }
  placeInbox();
  window.addEventListener("resize", placeInbox);

  setView(viewFromAddress());
  window.addEventListener("popstate", function () { setView(viewFromAddress()); });

  document.addEventListener("click", function (event) {
    const target = event.target instanceof Element ? event.target : null;
    if (!target || !thread) return;
    if (target.closest("[data-inbox-view=card]")) {
      event.preventDefault();
      if (window.location.hash !== "#card") window.history.pushState({ inboxView: "card" }, "", "#card");
      setView("card");
    } else if (target.closest("[data-inbox-back=thread]")) {
      event.preventDefault();
      if (window.history.state && window.history.state.inboxView === "card") window.history.back(); // the same step as the browser's Back
      else {
        window.history.replaceState(null, "", window.location.pathname + window.location.search);
        setView("thread");
      }
    }
  });

  // --- the sidebar badge ---------------------------------------------------------------------------

  function updateBadge() {
    const facets = document.getElementById("inbox-facets");
    if (facets && window.InboxBadge && facets.dataset.unreadThreads !== undefined) window.InboxBadge.set(Number(facets.dataset.unreadThreads));
  }

  // --- the thread list ----------------------------------------------------------------------------

  const left = document.getElementById("inbox-left-live");
  let listTimer = null;
  let listLoading = false;
  let listAgain = false;

  function refreshList() {
    clearTimeout(listTimer);
    listTimer = setTimeout(loadList, 250);
  }

  function loadList() {
    if (!left) return;
    if (listLoading) { listAgain = true; return; }
    listLoading = true;
    const url = new URL(left.dataset.url, window.location.href);
    if (thread) url.searchParams.set("current", thread.id);
    // As many rows as are shown ("load more" may have added pages), so that a refresh does not cut them.
    url.searchParams.set("shown", left.querySelectorAll(".inbox-row").length);
    fetchHtml(url.toString())
      .then(function (html) {
        const list = document.getElementById("inbox-list");
        const scroll = list ? list.scrollTop : 0;
        left.innerHTML = html;
        const fresh = document.getElementById("inbox-list");
        if (fresh) fresh.scrollTop = scroll;
        if (window.htmx) window.htmx.process(left); // the new "load more" link
        tickWaiting();
        updateBadge();
      })
      .catch(function () { /* the next event or reconnect tries again */ })
      .finally(function () {
        listLoading = false;
        if (listAgain) { listAgain = false; refreshList(); }
      });
  }

  // The row a message.new carries: replace it or put it on top (the list is newest activity first),
  // if this list's filters hold it; the counts above the list are then fetched alone.
  const listConfig = config.list || { filters: {}, query: "" };

  function rowBelongs(row) {
    const f = listConfig.filters;
    if (f.scope === "mine" && row.assignee !== me.id) return false;
    if (f.scope === "unassigned" && row.assignee !== null) return false;
    if (f.status && row.status !== f.status) return false;
    if (f.channel && row.channel !== f.channel) return false;
    if (f.tag && row.tags && row.tags.indexOf(f.tag) === -1) return false;
    if (f.clinic && row.clinic !== f.clinic) return false;
    return true;
  }

  function placeRow(row) {
    const rows = document.getElementById("inbox-list");
    if (!rows || !row) return;
    // A search, or a tag filter when the event does not know the thread's tags: the server decides what matches.
    if (listConfig.filters.query || (listConfig.filters.tag && !row.tags)) { refreshList(); return; }
    const shown = rows.querySelector('.inbox-row[data-thread="' + row.id + '"]');
    if (shown) shown.closest("li").remove();
    if (!rowBelongs(row)) return;
    const li = fragmentNode(row.html);
    if (!li) return;
    const link = li.querySelector(".inbox-row");
    link.setAttribute("href", link.getAttribute("href") + listConfig.query);
    if (thread && row.id === thread.id) {
      link.classList.add("is-current");
      link.setAttribute("aria-current", "page");
    }
    if (!listConfig.severalClinics) li.querySelectorAll(".inbox-clinic").forEach(function (node) { node.remove(); });
    const empty = rows.querySelector(".inbox-list-empty");
    if (empty) empty.remove();
    rows.insertBefore(li, rows.firstElementChild);
    tickWaiting();
  }

  let countsTimer = null;
  function refreshCounts() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(function () {
      const url = new URL(config.filtersUrl, window.location.href);
      url.search = listConfig.query;
      fetchHtml(url.toString())
        .then(function (html) {
          const facets = document.getElementById("inbox-facets");
          if (!facets) return;
          const template = document.createElement("template");
          template.innerHTML = html; // server-rendered (escaped by Django templates)
          const fresh = template.content.querySelector("#inbox-facets");
          if (fresh) facets.replaceWith(fresh);
          updateBadge();
        })
        .catch(function () { /* the next event tries again */ });
    }, 500);
  }

  // --- forms: auto-submitting selects, card actions through fetch ---------------------------------

  const cardPane = document.getElementById("inbox-card-live");
  let cardStale = false; // a refresh waited while a form of the card was in use

  function replaceCard(html) {
    if (!cardPane) return;
    cardPane.innerHTML = html;
  }

  function refreshCard() {
    if (!thread || !cardPane) return;
    if (cardPane.contains(document.activeElement) && document.activeElement !== document.body) {
      cardStale = true; // do not yank a form being used: refresh when the focus leaves the card
      return;
    }
    cardStale = false;
    fetchHtml(thread.cardUrl).then(replaceCard).catch(function () {});
  }
  if (cardPane) {
    cardPane.addEventListener("focusout", function (event) {
      if (cardStale && !cardPane.contains(event.relatedTarget)) setTimeout(refreshCard, 0);
    });
  }

  function submitCardForm(form) {
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const body = new FormData(form);
    const controls = form.querySelectorAll("select, input, button");
    controls.forEach(function (node) { node.disabled = true; });
    // getAttribute: the forms have an input named "action", which shadows form.action.
    fetchHtml(form.getAttribute("action"), { method: "POST", body: body, headers: { "X-CSRFToken": csrfToken() } })
      .then(function (html) { replaceCard(html); refreshList(); })
      .catch(function () {
        controls.forEach(function (node) { node.disabled = false; });
        HTMLFormElement.prototype.submit.call(form); // the plain POST shows the result after a reload
      });
  }

  document.addEventListener("change", function (event) {
    const target = event.target;
    if (!(target instanceof HTMLElement) || !target.hasAttribute("data-autosubmit")) return;
    const form = target.form;
    if (!form) return;
    if (form.hasAttribute("data-card-form")) submitCardForm(form);
    else HTMLFormElement.prototype.submit.call(form);
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.hasAttribute("data-card-form")) {
      event.preventDefault();
      submitCardForm(form);
    } else if (form.hasAttribute("data-merge-search") && thread) {
      event.preventDefault();
      const url = new URL(thread.cardUrl, window.location.href);
      url.searchParams.set("merge_q", new FormData(form).get("merge_q") || "");
      fetchHtml(url.toString()).then(function (html) {
        replaceCard(html);
        const input = cardPane.querySelector("[data-merge-search] input[name=merge_q]");
        if (input) input.focus();
      });
    }
  });

  if (!window.ClinicRealtime) return;

  // --- the socket -----------------------------------------------------------------------------------

  const cursors = {};
  if (thread) cursors[thread.id] = thread.lastSeq;
  const rt = window.ClinicRealtime.connect({ cursors: cursors });
  if (thread) rt.hold(thread.id, thread.lastSeq);

  const conn = document.getElementById("inbox-conn");
  const connText = { online: t.online, connecting: t.connecting, reconnecting: t.offline, offline: t.offline, "signed-out": t.signedOut };

  rt.on("status", function (status) {
    if (conn) {
      conn.dataset.state = status.state;
      conn.textContent = connText[status.state] || status.state;
    }
    if (status.state === "online") {
      refreshList(); // whatever changed while we were away
      if (thread) viewing(true);
    }
  });
  rt.on("message.new", onMessage);
  rt.on("thread.updated", function (event) {
    refreshList();
    if (thread && event.id === thread.id) {
      receipts(event.patient_read_seq, event.patient_delivered_seq);
      refreshCard();
    }
  });
  rt.on("mention", refreshList);
  rt.on("message.read", function (event) { if (event.side === "staff") refreshList(); }); // unread counts and the badge

  if (!thread) return;

  // --- the open thread ------------------------------------------------------------------------------

  const history = document.getElementById("inbox-history");
  const list = document.getElementById("inbox-messages");
  const typingNode = document.getElementById("inbox-typing");
  const presenceNode = document.getElementById("inbox-presence");
  const pending = new Map(); // client_msg_id -> frame, until the server's message.new

  function nearBottom() {
    return history.scrollHeight - history.scrollTop - history.clientHeight < 80;
  }
  function toBottom() { history.scrollTop = history.scrollHeight; }
  toBottom();
  document.addEventListener("inbox:view", function (event) { if (event.detail === "thread") toBottom(); }); // a hidden pane does not scroll

  function setReceipt(node, seq) {
    if (seq <= thread.patientReadSeq) {
      node.className = "msg-receipt is-read"; node.textContent = "✓✓"; node.title = t.read;
    } else if (seq <= thread.patientDeliveredSeq) {
      node.className = "msg-receipt is-delivered"; node.textContent = "✓✓"; node.title = t.delivered;
    } else {
      node.className = "msg-receipt"; node.textContent = "✓"; node.title = t.sent;
    }
  }

  function receipts(readSeq, deliveredSeq) {
    if (typeof readSeq === "number") thread.patientReadSeq = Math.max(thread.patientReadSeq, readSeq);
    if (typeof deliveredSeq === "number") thread.patientDeliveredSeq = Math.max(thread.patientDeliveredSeq, deliveredSeq, thread.patientReadSeq);
    list.querySelectorAll(".msg[data-seq] .msg-receipt").forEach(function (node) {
      setReceipt(node, Number(node.closest(".msg").dataset.seq));
    });
  }

  function insertBySeq(node, seq) {
    const after = Array.from(list.querySelectorAll(".msg[data-seq]")).find(function (li) { return Number(li.dataset.seq) > seq; });
    const pendingFirst = list.querySelector(".msg.is-pending");
    list.insertBefore(node, after || pendingFirst || null);
  }

  function onMessage(m) {
    if (m.row) {
      placeRow(m.row);
      refreshCounts();
    }
    if (!thread) return;
    // A visit booked, moved or cancelled (appointments.services._tell_thread) for this patient: the card lists visits.
    const data = m.data || {};
    if (data.visit_event && (m.thread === thread.id || data.patient === thread.patientId)) refreshCard();
    if (m.thread !== thread.id) return;
    if (m.seq > thread.lastSeq) thread.lastSeq = m.seq;
    if (list.querySelector('.msg[data-seq="' + m.seq + '"]')) return; // shown already
    const stick = nearBottom();
    const node = fragmentNode(m.fragment);
    if (!node) return;
    node.querySelectorAll(".msg-receipt").forEach(function (receipt) { setReceipt(receipt, m.seq); }); // as read now
    const own = m.client_msg_id ? list.querySelector('.msg.is-pending[data-client-id="' + CSS.escape(m.client_msg_id) + '"]') : null;
    if (own) {
      own.replaceWith(node);
      pending.delete(m.client_msg_id);
    } else {
      insertBySeq(node, m.seq);
    }
    const empty = list.querySelector(".inbox-no-messages");
    if (empty) empty.remove();
    if (m.author === "patient") {
      receipts(m.seq, m.seq); // the patient's own message means they have read everything before it
      showTyping(false);
      markRead(m.seq);
    }
    if (stick || own) toBottom();
  }

  function markRead(seq) {
    if (document.visibilityState === "visible") rt.sendNow({ type: "read", thread: thread.id, seq: seq });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") markRead(thread.lastSeq);
  });

  rt.on("message.read", function (event) {
    if (event.thread === thread.id && event.side === "patient") receipts(event.seq, event.seq);
  });
  rt.on("message.delivered", function (event) {
    if (event.thread === thread.id && event.side === "patient") receipts(undefined, event.seq);
  });
  rt.on("resumed", function (event) {
    if ((event.reload || []).indexOf(thread.id) !== -1) window.location.reload();
  });

  // The patient is typing.
  let typingTimer = null;
  function showTyping(on) {
    clearTimeout(typingTimer);
    typingNode.hidden = !on;
    typingNode.textContent = on ? t.typing : "";
    if (on) typingTimer = setTimeout(function () { showTyping(false); }, 6000);
  }
  rt.on("typing", function (event) {
    if (event.thread === thread.id && event.side === "patient") showTyping(event.state !== false);
  });

  // Colleagues on the same thread (the soft lock).
  function presence(viewers, replying) {
    const others = (viewers || []).filter(function (name) { return name !== me.name; });
    const busy = (replying || []).filter(function (name) { return name !== me.name; });
    if (busy.length) {
      presenceNode.textContent = fmt(t.replying, { names: busy.join(", ") });
      presenceNode.className = "inbox-presence is-replying";
      presenceNode.hidden = false;
    } else if (others.length) {
      presenceNode.textContent = fmt(t.alsoViewing, { names: others.join(", ") });
      presenceNode.className = "inbox-presence";
      presenceNode.hidden = false;
    } else {
      presenceNode.hidden = true;
      presenceNode.textContent = "";
    }
  }
  if (thread.viewers) presence(thread.viewers.viewers, thread.viewers.replying);
  rt.on("presence", function (event) {
    if (event.thread === thread.id) presence(event.viewers, event.replying);
  });

  function viewing(on) {
    rt.sendNow({ type: "viewing", thread: thread.id, state: on });
  }
  setInterval(function () { viewing(true); }, 20000);
  window.addEventListener("pagehide", function () { viewing(false); });

  // Older messages, upward.
  let loadingOlder = false;
  function loadOlder() {
    const marker = list.querySelector(".inbox-older");
    if (!marker || loadingOlder) return;
    loadingOlder = true;
    const url = new URL(thread.messagesUrl, window.location.href);
    url.searchParams.set("before", marker.dataset.firstSeq);
    fetchHtml(url.toString())
      .then(function (html) {
        const template = document.createElement("template");
        template.innerHTML = html; // server-rendered history (escaped by Django templates)
        const before = history.scrollHeight;
        marker.remove();
        list.insertBefore(template.content, list.firstChild);
        history.scrollTop += history.scrollHeight - before;
      })
      .finally(function () { loadingOlder = false; });
  }
  list.addEventListener("click", function (event) {
    if (event.target.closest(".inbox-older-btn")) loadOlder();
  });
  history.addEventListener("scroll", function () {
    if (history.scrollTop < 40) loadOlder();
  });

  // --- the composer -----------------------------------------------------------------------------------

  const form = document.getElementById("inbox-composer");
  const textarea = document.getElementById("inbox-text");
  const noteBox = document.getElementById("inbox-note");
  const noteHint = document.getElementById("inbox-note-hint");
  const errorNode = document.getElementById("inbox-composer-error");
  const fileInput = document.getElementById("inbox-file");
  const filesNode = document.getElementById("inbox-files");
  const cannedSelect = document.getElementById("inbox-canned");
  const suggest = document.getElementById("inbox-suggest");
  let files = []; // uploaded, waiting to be sent: {id, name}

  function showError(text) {
    errorNode.textContent = text || "";
    errorNode.hidden = !text;
    if (text) showStatus("");
  }

  const statusNode = document.getElementById("inbox-composer-status");
  function showStatus(text) {
    statusNode.textContent = text || "";
    statusNode.hidden = !text;
  }

  noteBox.addEventListener("change", function () {
    const note = noteBox.checked;
    form.classList.toggle("is-note", note);
    noteHint.hidden = !note;
    textarea.placeholder = note ? textarea.dataset.placeholderNote : textarea.dataset.placeholderReply;
    if (note) typing(false);
    textarea.focus();
  });

  // Typing frames: the patient sees "typing", colleagues see "replying" (not for private notes).
  let typingSentAt = 0;
  let typingIdle = null;
  function typing(on) {
    clearTimeout(typingIdle);
    if (on) {
      if (Date.now() - typingSentAt > 3000) {
        rt.sendNow({ type: "typing", thread: thread.id, state: true });
        typingSentAt = Date.now();
      }
      typingIdle = setTimeout(function () { typing(false); }, 5000);
    } else if (typingSentAt) {
      rt.sendNow({ type: "typing", thread: thread.id, state: false });
      typingSentAt = 0;
    }
  }

  textarea.addEventListener("input", function () {
    showError("");
    showStatus("");
    if (!noteBox.checked && textarea.value.trim()) typing(true);
    cannedSuggest();
  });

  textarea.addEventListener("keydown", function (event) {
    if (!suggest.hidden) {
      const items = Array.from(suggest.querySelectorAll("li[data-index]"));
      let index = items.findIndex(function (li) { return li.getAttribute("aria-selected") === "true"; });
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        index = (index + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
        items.forEach(function (li, i) { li.setAttribute("aria-selected", i === index ? "true" : "false"); });
        return;
      }
      if ((event.key === "Enter" || event.key === "Tab") && items.length) {
        event.preventDefault();
        useCanned(shown[Math.max(0, index)]);
        return;
      }
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        refuseShortcode(textarea.value.trim());
        return;
      }
      if (event.key === "Escape") { suggest.hidden = true; return; }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });

  function appendPending(frame) {
    const li = el("li", "msg msg--staff is-pending" + (frame.note ? " msg--note" : ""));
    li.dataset.clientId = frame.client_msg_id;
    const bubble = el("div", "msg-bubble");
    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-author", me.name));
    if (frame.note) meta.append(el("span", "msg-note-label", t.privateNote));
    bubble.append(meta);
    if (frame.text) bubble.append(el("div", "msg-text", frame.text));
    (frame.files || []).forEach(function (f) { bubble.append(el("div", "msg-file", f.name)); });
    const foot = el("div", "msg-foot");
    foot.append(el("span", "msg-state", t.sending));
    bubble.append(foot);
    li.append(bubble);
    list.append(li);
    const empty = list.querySelector(".inbox-no-messages");
    if (empty) empty.remove();
    toBottom();
  }

  // "/" + letters of any alphabet ("/адрес" as well as "/address"); JavaScript's \w alone knows only Latin.
  const SHORTCODE = /^\/([\p{L}\p{N}_-]*)$/u;

  function refuseShortcode(text) {
    suggest.hidden = true;
    showError(t.shortcodeNotSent.replace("%(shortcode)s", text));
  }

  function send() {
    const text = textarea.value.trim();
    if (!text && !files.length) return;
    // A lone "/word" is a shortcode that matched nothing: it is never sent to the patient as text.
    if (!noteBox.checked && !files.length && text.length > 1 && SHORTCODE.test(text)) {
      refuseShortcode(text);
      return;
    }
    const frame = { type: "message.send", thread: thread.id, text: text, client_msg_id: rt.newId() };
    if (noteBox.checked) frame.note = true;
    if (files.length) frame.attachments = files.map(function (f) { return f.id; });
    pending.set(frame.client_msg_id, frame);
    appendPending(Object.assign({ files: files.slice() }, frame));
    rt.send(frame);
    textarea.value = "";
    files = [];
    renderFiles();
    suggest.hidden = true;
    typing(false);
    showError("");
    textarea.focus();
  }

  rt.on("error", function (event) {
    if (!event.ref || !pending.has(event.ref)) {
      if (event.frame === "message.send") showError(event.reason);
      return;
    }
    const node = list.querySelector('.msg.is-pending[data-client-id="' + CSS.escape(event.ref) + '"]');
    if (!node) return;
    node.classList.add("is-failed");
    const foot = node.querySelector(".msg-foot");
    foot.textContent = "";
    foot.append(el("span", "msg-error", t.failed + ": " + (event.reason || "")), " ");
    const retry = el("button", "inbox-older-btn", t.retry);
    retry.type = "button";
    retry.addEventListener("click", function () {
      const frame = pending.get(event.ref);
      node.classList.remove("is-failed");
      foot.textContent = "";
      foot.append(el("span", "msg-state", t.sending));
      rt.send(frame);
    });
    foot.append(retry);
  });

  // Attachments: uploaded at once through the API, sent with the next message.
  function renderFiles() {
    filesNode.textContent = "";
    files.forEach(function (f, index) {
      const chip = el("span", "inbox-file-chip");
      chip.append(el("span", "", f.name));
      const remove = el("button", "", "×");
      remove.type = "button";
      remove.title = t.remove;
      remove.setAttribute("aria-label", t.remove + " " + f.name);
      remove.addEventListener("click", function () { files.splice(index, 1); renderFiles(); });
      chip.append(remove);
      filesNode.append(chip);
    });
  }

  fileInput.addEventListener("change", function () {
    const file = fileInput.files && fileInput.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("file", file);
    showError("");
    fetch(thread.uploadUrl, { method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.detail || (data.file && data.file.join(" ")) || t.uploadFailed);
          return data;
        });
      })
      .then(function (data) { files.push({ id: data.id, name: data.name }); renderFiles(); textarea.focus(); })
      .catch(function (err) { showError(t.uploadFailed + " " + (err.message || "")); })
      .finally(function () { fileInput.value = ""; });
  });

  // Offering times: the calendar's offer form as a panel above the composer (the link opens it as a page).
  const offerPanel = document.getElementById("inbox-offer");
  const offerOpen = document.getElementById("inbox-offer-open");

  let offerPicked = ""; // the service, doctor and day the panel shows: choosing them again keeps the ticks

  function pickedOf(form) {
    return new URLSearchParams(new FormData(form)).toString();
  }

  function showOffer(html) {
    offerPanel.innerHTML = html; // server-rendered (appointments/_offer_panel.html, escaped by Django)
    const pick = offerPanel.querySelector("[data-offer-pick]");
    offerPicked = pick ? pickedOf(pick) : "";
    const root = offerPanel.querySelector("[data-offer]");
    if (root && root.dataset.sent) {
      const flash = root.querySelector(".offer-flash li");
      closeOffer(); // the offer itself arrives in the history over the socket
      showStatus(flash ? flash.textContent : "");
    }
  }

  function loadOffer(url, init) {
    offerPanel.setAttribute("aria-busy", "true");
    // fetchHtml's HX-Request header: the calendar's offer view answers with the panel alone (appointments.admin_calendar).
    return fetchHtml(url, init)
      .then(showOffer)
      .catch(function () { window.location.href = offerOpen.href; }) // the same form as a page
      .finally(function () { offerPanel.removeAttribute("aria-busy"); });
  }

  function closeOffer() {
    offerPanel.hidden = true;
    offerPanel.textContent = "";
    offerOpen.setAttribute("aria-expanded", "false");
    textarea.focus();
  }

  if (offerPanel && offerOpen) {
    offerOpen.setAttribute("aria-expanded", "false");
    offerOpen.addEventListener("click", function (event) {
      event.preventDefault();
      if (!offerPanel.hidden) { closeOffer(); return; }
      offerPanel.hidden = false;
      offerOpen.setAttribute("aria-expanded", "true");
      loadOffer(offerOpen.href);
    });
    offerPanel.addEventListener("change", function (event) {
      const target = event.target;
      if (!(target instanceof HTMLElement) || !target.hasAttribute("data-offer-refresh")) return;
      const picked = pickedOf(target.form);
      if (picked === offerPicked) return; // shown or on its way (a date field fires both input-driven and change events)
      offerPicked = picked;
      const url = new URL(offerOpen.href, window.location.href);
      new FormData(target.form).forEach(function (value, key) { if (value) url.searchParams.set(key, value); });
      loadOffer(url.toString());
    });
    offerPanel.addEventListener("submit", function (event) {
      const form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      event.preventDefault();
      if (form.hasAttribute("data-offer-send")) {
        const body = new FormData(form);
        body.set("send", "1");
        loadOffer(offerOpen.href, { method: "POST", body: body, headers: { "X-CSRFToken": csrfToken() } });
      }
    });
    offerPanel.addEventListener("click", function (event) {
      if (event.target instanceof Element && event.target.closest("[data-offer-close]")) closeOffer();
    });
  }

  // Canned answers: "/" + shortcode in the composer, or the dropdown.
  let canned = null;
  let shown = [];
  function loadCanned() {
    if (canned) return Promise.resolve(canned);
    return fetch(thread.cannedUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (data) {
        canned = Array.isArray(data) ? data : data.results || [];
        canned.forEach(function (answer, index) {
          const option = el("option", "", "/" + answer.shortcode + " — " + answer.title);
          option.value = String(index);
          cannedSelect.append(option);
        });
        return canned;
      })
      .catch(function () { canned = []; return canned; });
  }
  loadCanned();

  function useCanned(answer) {
    if (!answer) return;
    const current = textarea.value;
    textarea.value = current.trim() === "" || SHORTCODE.test(current.trim()) ? answer.text : current.replace(/\s*$/, " ") + answer.text;
    suggest.hidden = true;
    cannedSelect.value = "";
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
    if (!noteBox.checked) typing(true);
  }

  cannedSelect.addEventListener("change", function () {
    if (cannedSelect.value !== "" && canned) useCanned(canned[Number(cannedSelect.value)]);
  });

  function cannedSuggest() {
    const match = SHORTCODE.exec(textarea.value);
    if (!match) { suggest.hidden = true; return; }
    loadCanned().then(function (answers) {
      const prefix = match[1].toLowerCase();
      shown = answers.filter(function (a) { return a.shortcode.toLowerCase().startsWith(prefix); });
      suggest.textContent = "";
      if (!shown.length) {
        suggest.append(el("li", "", t.noCanned));
      }
      shown.forEach(function (answer, index) {
        const li = el("li");
        li.dataset.index = String(index);
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", index === 0 ? "true" : "false");
        li.append(el("code", "", "/" + answer.shortcode), " ", el("span", "", answer.title));
        li.addEventListener("mousedown", function (event) { event.preventDefault(); useCanned(answer); });
        suggest.append(li);
      });
      suggest.hidden = false;
    });
  }
})();
