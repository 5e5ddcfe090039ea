/* Sorting and filters for the leaderboard table (inlined into index.html). The table reads
   without this script; reference rows sit in their own tbody and are never sorted or hidden. */
(function () {
  "use strict";
  var table = document.getElementById("board");
  var form = document.getElementById("filters");
  if (!table || !form) {
    return;
  }
  var body = table.querySelector("tbody.models");
  var headers = Array.prototype.slice.call(table.querySelectorAll("thead th[data-sort]"));
  var shown = document.getElementById("shown");
  var state = { key: "rank", dir: 1 };

  function typeOf(key) {
    for (var i = 0; i < headers.length; i++) {
      if (headers[i].getAttribute("data-sort") === key) {
        return headers[i].getAttribute("data-type");
      }
    }
    return "text";
  }

  function valueOf(row, key, numeric) {
    var cell = row.querySelector('[data-key="' + key + '"]');
    var raw = cell ? cell.getAttribute("data-value") : "";
    if (raw === null || raw === "") {
      return null;
    }
    return numeric ? parseFloat(raw) : raw.toLowerCase();
  }

  function rankOf(row) {
    var rank = valueOf(row, "rank", true);
    return rank === null ? Infinity : rank;
  }

  function sortBy(key, dir) {
    var numeric = typeOf(key) === "number";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = valueOf(a, key, numeric);
      var y = valueOf(b, key, numeric);
      if (x === null || y === null) {
        if (x === null && y === null) {
          return rankOf(a) - rankOf(b);
        }
        return x === null ? 1 : -1; // rows without a value go last either way
      }
      if (x < y) {
        return -dir;
      }
      if (x > y) {
        return dir;
      }
      return rankOf(a) - rankOf(b);
    });
    rows.forEach(function (row) {
      body.appendChild(row);
    });
    state = { key: key, dir: dir };
    headers.forEach(function (th) {
      var on = th.getAttribute("data-sort") === key;
      th.setAttribute("aria-sort", on ? (dir > 0 ? "ascending" : "descending") : "none");
    });
    var option = key + ":" + dir;
    var select = form.elements.sort;
    select.value = Array.prototype.some.call(select.options, function (o) {
      return o.value === option;
    })
      ? option
      : "";
  }

  headers.forEach(function (th) {
    var key = th.getAttribute("data-sort");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    while (th.firstChild) {
      button.appendChild(th.firstChild);
    }
    button.setAttribute("title", "Sort by this column");
    th.appendChild(button);
    th.setAttribute("aria-sort", key === state.key ? "ascending" : "none");
    button.addEventListener("click", function () {
      var first = typeOf(key) === "number" && key !== "rank" ? -1 : 1; // scores: best first
      sortBy(key, state.key === key ? -state.dir : first);
    });
  });

  function applyFilters() {
    var template = form.elements.template.value;
    var model = form.elements.model.value;
    var way = form.elements.way.value;
    var query = form.elements.q.value.trim().toLowerCase().replace(/\s+/g, " ");
    var count = 0;
    var rows = body.rows;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var keep =
        (!template || row.getAttribute("data-template") === template) &&
        (!model || row.getAttribute("data-model") === model) &&
        (!way || row.getAttribute("data-way") === way) &&
        (!query || row.getAttribute("data-search").indexOf(query) !== -1);
      row.hidden = !keep;
      count += keep ? 1 : 0;
    }
    shown.textContent = count + " of " + rows.length + " rows shown";
  }

  form.addEventListener("input", function (event) {
    if (event.target.name === "sort") {
      var parts = event.target.value.split(":");
      if (parts.length === 2) {
        sortBy(parts[0], parseInt(parts[1], 10));
      }
      return;
    }
    applyFilters();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
  });
  form.hidden = false;
  applyFilters();

  function openTarget() {
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (target && target.tagName === "DETAILS") {
      target.open = true;
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
