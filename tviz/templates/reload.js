// `tviz watch` adds this script to every page it serves (the files on disk stay as built).
// It polls the server for the page's version; when it changes it first tries an update in
// place: it fetches the new page and hands it, parsed into an inert document, to the page's
// own `window.tvizUpdate(doc, rest)` (run.js, index.js), which refreshes the data the page
// shows without restarting Vega (a reload of a 16 MB page blanks its charts for over a
// second). Opened from file:// the hook is never called. Without a hook, or when it throws or
// returns false (the page changed shape: other charts), it reloads the page. Before reloading
// it saves the reader's place in sessionStorage, read generically from the DOM: the scroll
// position, which <details> are open and which `aria-expanded` toggles are expanded, selected
// tabs, and the values of inputs with ids; plus whatever the page's own
// `window.tvizState = {get, set}` hooks choose to keep. Elements are named by the ids or first
// data-* attributes of their ancestors (`[data-step="5"] [data-group="2"]`), since pages build
// step lists on the fly without ids. After the reload, once the page's scripts have run, it
// puts everything back, retrying for a moment for content that is filled in asynchronously (a
// step's rollouts are decompressed when it opens).
//
// Kept in its own scope: the Vega bundle declares about 1,500 global names.
// Served inline, so its text never holds a closing script tag or the start of an HTML comment
// (written `<\/` and `\x3c` where needed).
(function () {
  "use strict";
  // Filled in when served (tviz/watch/inject.py), as JSON: the version of this page and
  // {"poll_ms", "endpoint", "header", "compare": {"path", "max_runs"}}.
  var VERSION = "", SETTINGS = {};
  // Tells the page that a server is behind it (it runs after the page's own scripts, hence
  // the event): the index then offers a link that builds a comparison there. Opened from
  // file:// neither exists and the page shows only what works offline.
  window.tvizWatch = {compare: SETTINGS.compare || null};
  dispatchEvent(new Event("tviz-watch"));
  var EVERY = SETTINGS.poll_ms, page = location.pathname;
  var KEY = "tviz-watch:" + page, HOLD_MS = 2000;
  function hooks() {
    var s = window.tvizState;
    return s && typeof s === "object" ? s : null;
  }
  function part(el) {
    if (el.id) return "#" + CSS.escape(el.id);
    for (var i = 0; i < el.attributes.length; i++) {
      var a = el.attributes[i];
      if (a.name.indexOf("data-") === 0) return "[" + a.name + '="' + CSS.escape(a.value) + '"]';
    }
    return "";
  }
  function nameOf(el, self) {
    var own = part(el), tag = el.tagName.toLowerCase();
    if (own.charAt(0) === "#") return own;
    var parts = [own ? tag + own : self || tag];
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      var bit = part(p);
      if (bit) parts.unshift(bit);
      if (bit.charAt(0) === "#") break;
    }
    return parts.join(" ");
  }
  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  // [kind, selector, which match of the selector, open?] for the elements `sel` finds.
  function places(kind, sel, self, isOpen) {
    var seen = {};
    return all(sel).map(function (el) {
      var name = nameOf(el, self), k = seen[name] = (seen[name] || 0) + 1;
      return [kind, name, k - 1, isOpen(el)];
    });
  }
  function save() {
    var st = {x: scrollX, y: scrollY};
    st.places = places("details", "details", "details", function (d) { return d.open; })
      .concat(places("expanded", "[aria-expanded]", "[aria-expanded]", function (el) {
        return el.getAttribute("aria-expanded") === "true";
      }))
      .concat(places("tab", '[role="tab"]', '[role="tab"]', function (el) {
        return el.getAttribute("aria-selected") === "true";
      }));
    st.values = places("value", "input, select, textarea", null, function (el) {
      if (el.type === "password" || el.type === "file" || el.type === "hidden") return null;
      if (el.type === "checkbox" || el.type === "radio") return el.checked;
      // A reader following the newest step keeps following it as steps arrive.
      return el.type === "range" && el.value === el.max ? {max: true} : el.value;
    }).filter(function (item) { return item[3] !== null; });
    try { var h = hooks(); if (h && h.get) st.custom = h.get(); } catch (e) {}
    try { sessionStorage.setItem(KEY, JSON.stringify(st)); } catch (e) {}
  }
  function setValue(el, v) {
    if (!("value" in el)) return;
    if (el.type === "checkbox" || el.type === "radio") {
      if (el.checked === v) return;
      el.checked = v;
    } else {
      if (v && v.max) v = el.max;
      if (el.value === v) return;
      el.value = v;
    }
    el.dispatchEvent(new Event("input", {bubbles: true}));
    el.dispatchEvent(new Event("change", {bubbles: true}));
  }
  function pick(name, k) {
    try { return document.querySelectorAll(name)[k] || null; } catch (e) { return null; }
  }
  // One pass over what is still to restore; returns what is left for the next pass.
  function reopen(todo) {
    return todo.filter(function (item) {
      var el = pick(item[1], item[2]), want = item[3];
      if (!el) return true;
      if (item[0] === "value") setValue(el, want);
      else if (item[0] === "details") { if (el.open !== want) el.open = want; }
      else if (item[0] === "tab") {
        if (want && el.getAttribute("aria-selected") !== "true") el.click();
      } else if ((el.getAttribute("aria-expanded") === "true") !== want) el.click();
      return false;
    });
  }
  function restore() {
    var st = null;
    try { st = JSON.parse(sessionStorage.getItem(KEY)); sessionStorage.removeItem(KEY); }
    catch (e) {}
    if (!st) return;
    // Values first: they may change what is listed (filters, the replayed step).
    var todo = reopen(st.values || []).concat(st.places || []);
    try { var h = hooks(); if (h && h.set && "custom" in st) h.set(st.custom); } catch (e) {}
    // Charts draw asynchronously and move the layout: hold the scroll position for a
    // moment, unless the reader starts scrolling.
    if ("scrollRestoration" in history) history.scrollRestoration = "manual";
    var moved = false, until = Date.now() + HOLD_MS;
    ["wheel", "touchstart", "keydown", "mousedown"].forEach(function (ev) {
      addEventListener(ev, function () { moved = true; }, {once: true, passive: true});
    });
    (function hold() {
      if (todo.length) todo = reopen(todo);
      if (!moved) scrollTo(st.x, st.y);
      if (Date.now() < until && !(moved && !todo.length)) setTimeout(hold, 50);
    })();
  }
  function reload() { save(); location.reload(); }
  // In place when the page can. The new page is fetched and, as soon as the part before its
  // compressed rollouts (the last and largest part of a run page) has arrived, parsed (inert:
  // nothing in it runs) and handed to the page's `window.tvizUpdate(doc, rest)`; `rest` is a
  // promise of the compressed blocks' texts by id, cut out of the rest of the text by string
  // search. The hook returns false (or a promise of false) or throws when it cannot update
  // the page: then, and without a hook, the page reloads.
  var TAG = '\x3cscript type="application/gzip-base64" id="';  // "<" escaped: inline
  function blocksOf(text) {
    var blocks = new Map(), at = text.indexOf(TAG), id, end;
    while (at >= 0) {
      id = text.indexOf('">', at);
      end = text.indexOf("<\/script>", id);  // escaped: this script is inline
      if (id < 0 || end < 0) break;
      blocks.set(text.slice(at + TAG.length, id), text.slice(id + 2, end));
      at = text.indexOf(TAG, end);
    }
    return blocks;
  }
  function update(version) {
    var hook = window.tvizUpdate;
    if (typeof hook !== "function") return reload();
    fetch(page, {cache: "no-store"}).then(function (r) {
      if (!r.ok || !r.body) return reload();
      var reader = r.body.getReader(), decoder = new TextDecoder();
      var head = "", tail = [], hooked = null, done = null;
      var rest = new Promise(function (resolve) { done = resolve; });
      function read() {
        return reader.read().catch(function () { throw lost; }).then(function (got) {
          var text = got.done ? decoder.decode() : decoder.decode(got.value, {stream: true});
          if (hooked) tail.push(text);
          else {
            var cut = (head += text).indexOf(TAG, Math.max(0, head.length - text.length - 64));
            if (cut >= 0 || got.done) {
              if (cut < 0) cut = head.length;
              tail.push(head.slice(cut));
              var doc = new DOMParser().parseFromString(head.slice(0, cut), "text/html");
              hooked = hook(doc, rest);
              if (hooked === false) throw new Error("the page changed shape");
              hooked = Promise.resolve(hooked);
            }
          }
          if (!got.done) return read();
          done(blocksOf(tail.join("")));
          return hooked;
        });
      }
      return read().then(function (ok) {
        if (ok === false) throw new Error("the page changed shape");
        VERSION = r.headers.get(SETTINGS.header) || version;
        later(EVERY);
      });
    }, function () { throw lost; })
      .catch(function (e) {
        // The server went away (restarting): ask again in a moment, which also finishes an
        // update cut short. Anything else: reload.
        if (e === lost) return later(Math.max(EVERY, 1000));
        if (window.console) console.warn("tviz watch: reloading:", e);
        reload();
      });
  }
  var lost = new Error("the server went away");
  function check() {
    fetch(SETTINGS.endpoint + "?page=" + encodeURIComponent(page), {cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (d && d.version && d.version !== VERSION) update(d.version);
        else later(EVERY);
      })
      .catch(function () { later(Math.max(EVERY, 1000)); });  // server restarting: wait
  }
  var timer = null;
  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(check, document.hidden ? Math.max(ms, 2000) : ms);
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) later(0);
  });
  if (document.readyState === "complete") setTimeout(restore, 0);
  else addEventListener("load", function () { setTimeout(restore, 0); });
  later(EVERY);
})();
