/*
 * The one WebSocket of a signed-in page (/ws/), shared by the portal chat and the admin inbox.
 *
 * - Reconnects with backoff after a drop and sends `resume` with the last seq it holds per
 *   thread, so the server sends exactly what was missed; no page reload needed.
 * - Keeps messages by (thread, seq): a live event that overlaps the catch-up is dropped.
 * - Heartbeat: a ping every `heartbeat` seconds (the server tells it in `hello`).
 * - Emits DOM-free events to subscribers: on("message.new", fn), on("status", fn) …
 *
 * Usage: const rt = ClinicRealtime.connect({cursors: {12: 40}}); rt.on("message.new", m => …);
 *        rt.send({type: "message.send", thread: 12, text: "…", client_msg_id: rt.newId()});
 */
(function (global) {
  "use strict";

  function connect(options) {
    options = options || {};
    const listeners = {};
    const cursors = Object.assign({}, options.cursors || {}); // thread id -> highest seq held
    const outbox = []; // frames typed while offline, sent on reconnect
    let socket = null;
    let attempts = 0;
    let heartbeat = null;
    let retry = null; // the pending reconnect, if any
    let closedByUs = false;

    function emit(type, payload) {
      (listeners[type] || []).forEach(function (fn) {
        try { fn(payload); } catch (err) { console.error(err); }
      });
      (listeners["*"] || []).forEach(function (fn) { fn(payload); });
    }

    function url() {
      const scheme = global.location.protocol === "https:" ? "wss://" : "ws://";
      return scheme + global.location.host + (options.path || "/ws/");
    }

    function open() {
      // One socket at a time: the browser's "online" event may come while a retry is pending.
      clearTimeout(retry);
      retry = null;
      if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) return;
      emit("status", { state: attempts ? "reconnecting" : "connecting" });
      socket = new WebSocket(url());
      socket.onopen = function () {
        attempts = 0;
      };
      socket.onmessage = function (event) {
        let data;
        try { data = JSON.parse(event.data); } catch (err) { return; }
        if (data.type === "hello") {
          emit("status", { state: "online", as: data.as });
          clearInterval(heartbeat);
          heartbeat = setInterval(function () { raw({ type: "ping" }); }, (data.heartbeat || 25) * 1000);
          raw({ type: "resume", cursors: cursors });
          while (outbox.length) raw(outbox.shift());
          return;
        }
        if (data.type === "message.new") {
          const held = cursors[data.thread] || 0;
          if (data.seq <= held && options.dedupe !== false) {
            if (seen(data.thread, data.seq)) return; // already shown (catch-up and live overlap)
          }
          remember(data.thread, data.seq);
          if (data.seq > held) cursors[data.thread] = data.seq;
        }
        emit(data.type, data);
      };
      socket.onclose = function (event) {
        clearInterval(heartbeat);
        if (closedByUs) return;
        if (event.code === 4401) { emit("status", { state: "signed-out" }); return; }
        attempts += 1;
        const delay = Math.min(15000, 500 * Math.pow(2, attempts - 1)) * (0.75 + Math.random() / 2);
        emit("status", { state: "offline", retryIn: Math.round(delay / 1000) });
        retry = setTimeout(open, delay);
      };
    }

    // Seqs shown per thread, so that a resent live event never duplicates a bubble.
    const shown = {};
    function remember(thread, seq) { (shown[thread] = shown[thread] || new Set()).add(seq); }
    function seen(thread, seq) { return shown[thread] && shown[thread].has(seq); }

    function raw(frame) {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(frame));
        return true;
      }
      return false;
    }

    open();
    global.addEventListener("online", function () {
      if (!socket || socket.readyState === WebSocket.CLOSED) { attempts = 0; open(); }
    });

    return {
      on: function (type, fn) { (listeners[type] = listeners[type] || []).push(fn); return this; },
      /** Send now, or queue until the socket is back (message.send is idempotent by client_msg_id). */
      send: function (frame) { if (!raw(frame)) outbox.push(frame); },
      /** Send only if online (typing, viewing): stale presence is worse than none. */
      sendNow: raw,
      /** The page already shows messages up to seq (from server-rendered history). */
      hold: function (thread, seq) {
        if (seq > (cursors[thread] || 0)) cursors[thread] = seq;
        remember(thread, seq);
      },
      cursor: function (thread) { return cursors[thread] || 0; },
      newId: function () {
        return (global.crypto && global.crypto.randomUUID) ? global.crypto.randomUUID()
          : Date.now().toString(36) + Math.random().toString(36).slice(2);
      },
      close: function () { closedByUs = true; clearInterval(heartbeat); clearTimeout(retry); if (socket) socket.close(); },
      /** For tests: drop the connection as a network failure would. */
      _drop: function () { if (socket) socket.close(4000); },
    };
  }

  global.ClinicRealtime = { connect: connect };
})(window);
