// Live updates for StackDock's pages: one EventSource on the API's event stream (the session
// cookie authenticates it) changes rows, the state, the provider calls and the deploy log in
// place. Every page works without this script; it only saves a reload.
(function () {
  "use strict";
  var list = document.querySelector('[data-live="list"]');
  var one = document.querySelector('[data-live="resource"]');
  if (!list && !one) return;

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setState(el, state) {
    if (!el) return;
    setText(el, state);
    el.className = "state state-" + state;
  }

  // Resources made since the page was read that its filters would show: counted, with a
  // link to the first page of the same listing. (The dock filter names a dock the event does not, so
  // a resource on any dock counts while it is set; the page then shows what matches.)
  var fresh = {};
  function matches(r) {
    var q = new URLSearchParams(location.search);
    var name = (q.get("name") || "").toLowerCase();
    if (name && r.name.toLowerCase().indexOf(name) < 0) return false;
    if (q.get("kind") && q.get("kind") !== r.kind) return false;
    if (q.get("provider") && q.get("provider") !== r.provider) return false;
    if (q.get("state") && q.get("state") !== r.provisioning_state) return false;
    if (q.get("source") && q.get("source") !== r.provisioning_source) return false;
    return true;
  }
  function noteNew(r) {
    if (fresh[r.id] || !matches(r)) return;
    fresh[r.id] = true;
    var n = Object.keys(fresh).length;
    var q = new URLSearchParams(location.search);
    q.delete("cursor");
    var link = document.getElementById("new-rows-link");
    var query = q.toString();
    link.href = location.pathname + (query ? "?" + query : "");
    setText(link, n === 1 ? "1 new resource: show it" : n + " new resources: show them");
    document.getElementById("new-rows").hidden = false;
  }

  function updateRow(r) {
    var row = document.getElementById("r-" + r.id);
    if (!row) {
      // Version 1 is the row as first written: a resource made (or found) since the page
      // was read, not an older one on another page.
      if (r.version === 1) noteNew(r);
      return;
    }
    setState(row.querySelector('[data-field="state"]'), r.provisioning_state);
    setText(row.querySelector('[data-field="status"]'), r.status || "");
  }

  function refreshCalls() {
    var url = "/api/v1/" + one.dataset.collection + "/" + one.dataset.id + "/api-calls?limit=500";
    fetch(url, { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (page) {
        if (!page) return;
        var body = document.querySelector("#timeline tbody");
        if (!body) return;
        var rows = page.items.map(function (c) {
          var tr = document.createElement("tr");
          var status = c.status != null ? String(c.status) : (c.error || "no answer");
          // As the server renders it: to the second, in UTC.
          var at = String(c.at).slice(0, 19).replace("T", " ") + " UTC";
          var cells = [at, c.method, c.path, status, c.duration_ms + " ms"];
          cells.forEach(function (text, i) {
            var td = document.createElement("td");
            td.textContent = text;
            if (i === 2) td.className = "path";
            tr.appendChild(td);
          });
          return tr;
        });
        body.replaceChildren.apply(body, rows);
      })
      .catch(function () {});
  }

  function updateResource(r) {
    if (r.id !== one.dataset.id) return;
    setState(document.getElementById("state"), r.provisioning_state);
    setText(document.getElementById("status"), r.status || "");
    setText(document.getElementById("provider-id"), r.provider_resource_id || "");
    var box = document.getElementById("error");
    if (box) {
      box.hidden = !r.error;
      setText(document.getElementById("error-code"), r.error ? r.error.code : "");
      setText(document.getElementById("error-message"), r.error ? r.error.message : "");
    }
    document.querySelectorAll("form[data-states]").forEach(function (f) {
      f.hidden = f.dataset.states.split(" ").indexOf(r.provisioning_state) < 0;
    });
    refreshCalls();
  }

  // The dashboard follows the feed from where it stood when its rows were read. The resource
  // page follows its resource (and its whole deploy log, less the lines shown) and reads the
  // resource again each time the stream opens, for what changed before it did.
  var url = one
    ? "/api/v1/events?resource_id=" + encodeURIComponent(one.dataset.id)
    : "/api/v1/events?after=" + encodeURIComponent(list.dataset.after || "0");
  var source = new EventSource(url);
  if (one) {
    source.addEventListener("open", function () {
      fetch("/api/v1/resources/" + encodeURIComponent(one.dataset.id), { credentials: "same-origin" })
        .then(function (resp) { return resp.ok ? resp.json() : null; })
        .then(function (r) { if (r) updateResource(r); })
        .catch(function () {});
    });
  }
  source.addEventListener("resource", function (e) {
    var change = JSON.parse(e.data);
    if (list) updateRow(change.resource);
    if (one) updateResource(change.resource);
  });
  source.addEventListener("log", function (e) {
    var log = document.getElementById("log");
    if (!one || !log) return;
    var line = JSON.parse(e.data);
    if (line.resource_id !== one.dataset.id) return;
    if (line.seq <= Number(log.dataset.seq || "0")) return;
    log.dataset.seq = String(line.seq);
    log.appendChild(document.createTextNode(line.line + "\n"));
  });
  document.documentElement.dataset.live = "connected";
})();
