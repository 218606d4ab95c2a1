/* tokbench leaderboard: renders the inlined results data. No network, no dependencies.
 * Every string from the results is inserted as text (textContent / append of strings), never
 * as HTML, so names such as "<script>" show as text. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("tokbench-data").textContent);
  var KIND_ORDER = ["reference", "acoustic", "semantic", "hybrid"];
  var KIND_LABELS = DATA.kinds || {};

  var state = {
    task: null, dataset: null, protocol: null, part: null,
    kinds: null,           // Set of kinds shown (null until a table is chosen)
    kbpsMin: null, kbpsMax: null, search: "", reported: true,
    sort: null             // {key: string, dir: 1 | -1}
  };

  function $(id) { return document.getElementById(id); }

  /* el("td", {class: "x", title: "y"}, child, "text", ...): strings become text nodes. */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) { return; }
        if (key === "class") { node.className = value; }
        else if (key === "text") { node.textContent = String(value); }
        else { node.setAttribute(key, String(value)); }
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) { continue; }
      node.append(child);
    }
    return node;
  }

  function kindLabel(kind) { return KIND_LABELS[kind] || kind || "other"; }
  function kindRank(kind) { var i = KIND_ORDER.indexOf(kind); return i < 0 ? KIND_ORDER.length : i; }
  function uniq(values) { return values.filter(function (v, i) { return values.indexOf(v) === i; }); }
  function isNum(x) { return typeof x === "number" && isFinite(x); }
  function safeUrl(url) { return /^https?:\/\//i.test(url || "") ? url : null; }

  /* ------------------------------------------------------------------ table choice */

  function tablesFor(task, dataset) {
    return DATA.tables.filter(function (t) {
      return (task === null || t.task === task) && (dataset === null || t.dataset === dataset);
    });
  }

  function fillSelect(select, values, current) {
    select.textContent = "";
    values.forEach(function (v) { select.append(el("option", {value: v, text: v})); });
    var chosen = values.indexOf(current) >= 0 ? current : (values.length ? values[0] : null);
    if (chosen !== null) { select.value = chosen; }
    select.disabled = values.length <= 1;
    return chosen;
  }

  function syncSelectors() {
    var tasks = uniq(DATA.tables.map(function (t) { return t.task; }));
    state.task = fillSelect($("f-task"), tasks, state.task);
    var datasets = uniq(tablesFor(state.task, null).map(function (t) { return t.dataset; }));
    state.dataset = fillSelect($("f-dataset"), datasets, state.dataset);
    var protocols = uniq(tablesFor(state.task, state.dataset).map(function (t) { return t.protocol_id; }));
    state.protocol = fillSelect($("f-protocol"), protocols, state.protocol);
    // The main table of a protocol ("") and its by-param tables (per codebook, per vocabulary).
    var parts = tablesFor(state.task, state.dataset).filter(function (t) {
      return t.protocol_id === state.protocol;
    }).map(function (t) { return t.part; });
    state.part = fillSelect($("f-part"), parts, state.part);
    Array.prototype.forEach.call($("f-part").options, function (o) {
      o.textContent = o.value ? o.value + " (by param)" : "results";
    });
  }

  function currentTable() {
    var found = DATA.tables.filter(function (t) {
      return t.task === state.task && t.dataset === state.dataset &&
        t.protocol_id === state.protocol && t.part === state.part;
    });
    return found.length ? found[0] : null;
  }

  function syncKinds(table) {
    var box = $("f-kinds");
    Array.prototype.slice.call(box.querySelectorAll("label")).forEach(function (n) { n.remove(); });
    var kinds = uniq(table.rows.map(function (r) { return r.kind; }));
    kinds.sort(function (a, b) { return kindRank(a) - kindRank(b); });
    if (state.kinds === null) { state.kinds = new Set(kinds); }
    kinds.forEach(function (kind) {
      var input = el("input", {type: "checkbox", value: kind, "data-kind": kind});
      input.checked = state.kinds.has(kind);
      input.addEventListener("change", function () {
        if (input.checked) { state.kinds.add(kind); } else { state.kinds.delete(kind); }
        renderTable();
      });
      box.append(el("label", null, input, kindLabel(kind)));
    });
    var hasReported = table.rows.some(function (r) { return r.reported !== null; });
    $("f-reported-label").hidden = !hasReported;
  }

  /* ------------------------------------------------------------------ the results table */

  function columnsOf(table) {
    var cols = [
      {key: "kind", label: "kind", cls: "text"},
      {key: "tokenizer", label: "tokenizer", cls: "text"}
    ];
    if (table.rows.some(function (r) { return r.param !== null; })) {
      cols.push({key: "param", label: "param", cls: "text"});
    }
    cols.push({key: "kbps", label: "kbps", unit: "nominal"});
    cols.push({key: "token_rate", label: "tok/s"});
    table.columns.forEach(function (c) {
      cols.push({key: "m:" + c.metric, metric: c, label: c.metric + (c.arrow ? " " + c.arrow : ""),
                 unit: c.unit});
    });
    return cols;
  }

  function sortValue(row, key) {
    if (key === "kind") { return kindRank(row.kind); }
    if (key === "tokenizer") { return row.label.toLowerCase(); }
    if (key === "param") { return row.param === null ? null : row.param; }
    if (key === "kbps") { return isNum(row.kbps) ? row.kbps : null; }
    if (key === "token_rate") { return isNum(row.token_rate) ? row.token_rate : null; }
    var cell = row.cells[key.slice(2)];
    return cell && isNum(cell.mean) ? cell.mean : null;
  }

  function visibleRows(table) {
    var q = state.search.trim().toLowerCase();
    var rows = table.rows.filter(function (r) {
      if (!state.kinds.has(r.kind)) { return false; }
      if (r.reported !== null && !state.reported) { return false; }
      if (q && r.label.toLowerCase().indexOf(q) < 0 && r.tokenizer.toLowerCase().indexOf(q) < 0) { return false; }
      if (state.kbpsMin !== null || state.kbpsMax !== null) {
        if (!isNum(r.kbps)) { return false; }
        if (state.kbpsMin !== null && r.kbps < state.kbpsMin) { return false; }
        if (state.kbpsMax !== null && r.kbps > state.kbpsMax) { return false; }
      }
      return true;
    });
    if (state.sort) {
      var key = state.sort.key, dir = state.sort.dir;
      rows = rows.map(function (r, i) { return {r: r, i: i}; });
      rows.sort(function (a, b) {
        var va = sortValue(a.r, key), vb = sortValue(b.r, key);
        if (va === null && vb === null) { return a.i - b.i; }
        if (va === null) { return 1; }   // missing values always last
        if (vb === null) { return -1; }
        if (va < vb) { return -dir; }
        if (va > vb) { return dir; }
        return a.i - b.i;
      });
      rows = rows.map(function (x) { return x.r; });
    }
    return rows;
  }

  function onHeaderClick(col) {
    if (state.sort && state.sort.key === col.key) {
      state.sort = {key: col.key, dir: -state.sort.dir};
    } else {
      // Metrics sort best first, by their declared direction; other columns ascending.
      var dir = col.metric && col.metric.direction === "higher" ? -1 : 1;
      state.sort = {key: col.key, dir: dir};
    }
    renderTable();
  }

  function renderHead(table, cols) {
    var tr = el("tr");
    cols.forEach(function (col) {
      var th = el("th", {
        class: col.cls || null, scope: "col", "data-key": col.key, tabindex: "0",
        title: col.metric ? col.metric.description + (col.metric.range ? " (range " + col.metric.range.join(" to ") + ")" : "") : null,
        "aria-sort": state.sort && state.sort.key === col.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none"
      }, col.label);
      if (col.unit) { th.append(el("span", {class: "unit", text: col.unit})); }
      th.addEventListener("click", function () { onHeaderClick(col); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onHeaderClick(col); }
      });
      tr.append(th);
    });
    var thead = $("results").tHead;
    thead.textContent = "";
    thead.append(tr);
  }

  function metricCell(row, metric) {
    var cell = row.cells[metric.metric];
    if (!cell) {
      var why = row.reported !== null ? "no comparable published figure (see Reported figures)"
                                      : "not recorded by this run";
      return el("td", {class: "gap", title: why}, "–");
    }
    if (!isNum(cell.mean)) {
      return el("td", {class: "na", title: cell.reason || "not computable"}, cell.text || "n/a",
                cell.n ? el("span", {class: "sub", text: cell.n}) : null);
    }
    var td = el("td", {class: cell.best ? "best" : null, title: cell.note || null},
                el("span", {class: "mean", text: cell.text + (cell.best ? " ★" : "")}));
    var sub = [cell.ci, cell.n].filter(function (s) { return s; }).join(" ");
    if (sub) { td.append(el("span", {class: "sub", text: sub})); }
    return td;
  }

  function renderTable() {
    var table = currentTable();
    var tbody = $("results").tBodies[0];
    tbody.textContent = "";
    if (!table) { return; }
    var cols = columnsOf(table);
    renderHead(table, cols);
    var rows = visibleRows(table);
    var previousKind = null;
    rows.forEach(function (row) {
      var cls = [];
      if (row.reported !== null) { cls.push("reported"); }
      if (!state.sort && previousKind !== null && row.kind !== previousKind) { cls.push("kind-start"); }
      previousKind = row.kind;
      var tr = el("tr", {class: cls.join(" ") || null, "data-kind": row.kind});
      tr.append(el("td", {class: "text col-kind", text: kindLabel(row.kind)}));
      var name = el("td", {class: "text col-tokenizer"});
      if (row.run !== null) {
        name.append(el("a", {href: "#run-" + row.run, title: "provenance of this run", text: row.label}));
      } else {
        name.append(row.label);
      }
      if (!row.status && row.status_reason) {
        name.append(el("span", {class: "badge partial", title: row.status_reason}, "partial"));
      }
      if (row.reported !== null) {
        name.append(el("a", {class: "badge reported", href: "#ref-" + row.reported,
                             title: DATA.references[row.reported].citation}, "reported [" + (row.reported + 1) + "]"));
      }
      tr.append(name);
      if (cols.some(function (c) { return c.key === "param"; })) {
        tr.append(el("td", {class: "text", text: row.param === null ? "" : row.param}));
      }
      tr.append(el("td", {class: "col-kbps", text: row.kbps_text}));
      tr.append(el("td", {text: row.token_rate_text}));
      var metricCols = cols.filter(function (c) { return c.metric; });
      if (row.status) {
        tr.append(el("td", {class: "unsupported", colspan: Math.max(1, metricCols.length),
                            title: row.status_reason || null},
                     row.status + (row.status_reason ? ": " + row.status_reason : "")));
      } else {
        metricCols.forEach(function (c) { tr.append(metricCell(row, c.metric)); });
      }
      tbody.append(tr);
    });
    $("row-count").textContent = "showing " + rows.length + " of " + table.rows.length + " rows";
    var empty = $("empty");
    empty.hidden = rows.length > 0;
    empty.textContent = rows.length ? "" : "No row matches the filters.";
  }

  function renderCharts(table) {
    var box = $("charts");
    box.textContent = "";
    if (!table || !table.charts.length) {
      box.append(el("p", {class: "chart-message", text: "No charts were generated for this table."}));
      return;
    }
    table.charts.forEach(function (chart) {
      var title = chart.title || chart.chart;
      if (chart.files && chart.files.svg) {
        var fig = el("figure", {"data-chart": chart.chart},
                     el("img", {src: chart.files.svg, alt: title + ": " + table.title, loading: "lazy"}),
                     el("figcaption", null, title + " ",
                        chart.files.png ? el("a", {href: chart.files.png, text: "PNG"}) : null, " ",
                        el("a", {href: chart.files.svg, text: "SVG"})));
        box.append(fig);
      } else {
        box.append(el("p", {class: "chart-message", "data-chart": chart.chart},
                      title + ": " + (chart.message || "not drawn")));
      }
    });
  }

  function renderAll() {
    var table = currentTable();
    if (!table) {
      $("table-title").textContent = "";
      $("empty").hidden = false;
      $("empty").textContent = "No results yet: run `tokbench run ...`, then `tokbench leaderboard`.";
      renderCharts(null);
      return;
    }
    $("table-title").textContent = table.title;
    syncKinds(table);
    renderTable();
    renderCharts(table);
  }

  /* ------------------------------------------------------------------ other sections */

  function comparableBadge(c) {
    var text = {yes: "comparable", caveats: "comparable with caveats", no: "not comparable",
                rate: "rate"}[c.comparable] || c.comparable;
    return el("span", {class: "badge comparable-" + c.comparable, text: text});
  }

  function renderReferences() {
    var box = $("references");
    box.textContent = "";
    if (!DATA.references.length) {
      box.append(el("p", {class: "meta", text: "No published figures (results/reference/) were found."}));
      return;
    }
    DATA.references.forEach(function (ref, i) {
      var section = el("div", {id: "ref-" + i, class: "reference"});
      var url = safeUrl(ref.url);
      section.append(el("h3", null, "[" + (i + 1) + "] ",
                        url ? el("a", {href: url, rel: "noopener", text: ref.citation}) : ref.citation));
      section.append(el("p", {class: "meta"},
                        [ref.table, ref.dataset_label, "task " + ref.task].filter(Boolean).join(" · ") +
                        ". " + (ref.notes || "") + " Source file: " + ref.file + "."));
      var mapping = el("table", {class: "mapping"},
                       el("thead", null, el("tr", null, el("th", {class: "text", text: "column"}),
                          el("th", {class: "text", text: "tokbench metric"}),
                          el("th", {class: "text", text: "comparable"}), el("th", {class: "text", text: "note"}))));
      var mb = el("tbody");
      ref.columns.forEach(function (c) {
        mb.append(el("tr", null, el("td", {class: "text", text: c.name}),
                     el("td", {class: "text", text: c.metric || "none"}),
                     el("td", {class: "text"}, comparableBadge(c)),
                     el("td", {class: "text", text: c.note || ""})));
      });
      mapping.append(mb);
      section.append(el("h3", {text: "How the columns relate to tokbench's metrics"}), mapping);
      var values = el("table", {class: "reference-values"});
      var head = el("tr");
      ref.label_columns.concat(["kind"]).forEach(function (name) { head.append(el("th", {class: "text", text: name})); });
      ref.columns.forEach(function (c) {
        var relation = !c.metric ? "no counterpart" : c.comparable === "no" ? "≠ " + c.metric + " (not comparable)" : "→ " + c.metric;
        head.append(el("th", {title: c.note || null}, c.name, el("span", {class: "unit", text: relation})));
      });
      values.append(el("thead", null, head));
      var vb = el("tbody");
      ref.rows.forEach(function (row) {
        var tr = el("tr", {class: "reported"});
        ref.label_columns.forEach(function (name) { tr.append(el("td", {class: "text", text: row[name] === null ? "" : row[name]})); });
        tr.append(el("td", {class: "text", text: kindLabel(row.kind)}));
        ref.columns.forEach(function (c) {
          var v = row.values[c.name];
          tr.append(el("td", {text: v === null || v === undefined ? "–" : v}));
        });
        vb.append(tr);
      });
      values.append(vb);
      section.append(el("h3", {text: "Figures as reported"}), el("div", {class: "table-wrap"}, values));
      if (ref.kinds_note) { section.append(el("p", {class: "meta", text: "Kinds: " + ref.kinds_note})); }
      box.append(section);
    });
  }

  function runLabel(i) {
    var run = DATA.runs[i];
    return run ? run.variant + " · " + run.task + " · " + run.dataset : "run " + i;
  }

  function renderExamples() {
    var box = $("examples");
    box.textContent = "";
    if (!DATA.examples.length) {
      box.append(el("p", {class: "meta", text: "No run kept audio examples (run with --set keep_audio=N)."}));
      return;
    }
    DATA.examples.forEach(function (ex) {
      box.append(el("div", {class: "example"},
        el("div", null, el("a", {href: "#run-" + ex.run, text: runLabel(ex.run)}),
           el("div", {class: "label", text: ex.utterance_id})),
        el("div", null, el("div", {class: "label", text: "original"}),
           el("audio", {controls: "", preload: "none", src: ex.original})),
        el("div", null, el("div", {class: "label", text: "reconstruction"}),
           el("audio", {controls: "", preload: "none", src: ex.reconstruction}))));
    });
  }

  function details(summary, value) {
    return el("details", null, el("summary", {text: summary}),
              el("pre", {text: JSON.stringify(value, null, 2)}));
  }

  function renderProvenance() {
    var box = $("provenance");
    box.textContent = "";
    if (!DATA.runs.length) {
      box.append(el("p", {class: "meta", text: "No runs found."}));
      return;
    }
    var table = el("table", {id: "runs"});
    var head = el("tr");
    ["run", "status", "dataset", "model", "tokbench", "date", "settings"].forEach(function (h) {
      head.append(el("th", {class: "text", text: h}));
    });
    table.append(el("thead", null, head));
    var body = el("tbody");
    DATA.runs.forEach(function (run, i) {
      var model = [run.model_repo || "(no weights)",
                   run.model_revision ? "requested " + run.model_revision : null,
                   run.model_resolved ? "resolved " + run.model_resolved : null].filter(Boolean).join(", ");
      body.append(el("tr", {id: "run-" + i},
        el("td", {class: "text"}, el("strong", {text: run.variant + " (" + run.tokenizer + ")"}),
           el("span", {class: "sub", text: run.run_id})),
        el("td", {class: "text", text: run.status + (run.status_reason ? ": " + run.status_reason : "")}),
        el("td", {class: "text", text: run.dataset + (run.dataset_revision ? " @ " + run.dataset_revision : "")}),
        el("td", {class: "text", text: model}),
        el("td", {class: "text", text: (run.tokbench_version || "?") + (run.git_revision ? " (git " + run.git_revision + ")" : "")}),
        el("td", {class: "text", text: [run.created, run.finished ? "finished " + run.finished : null].filter(Boolean).join(", ")}),
        el("td", {class: "text"},
           details("protocol " + run.protocol_id, run.protocol),
           details("task " + run.task + " v" + run.task_version + " options", run.task_options),
           details("tokenizer options", run.tokenizer_options),
           details("packages" + (run.device ? " · device " + run.device : ""), run.packages))));
    });
    table.append(body);
    box.append(el("div", {class: "table-wrap"}, table));
  }

  /* ------------------------------------------------------------------ wiring */

  function readNumber(input) {
    var v = input.value.trim() === "" ? NaN : Number(input.value);
    return isFinite(v) ? v : null;
  }

  function bind() {
    $("f-task").addEventListener("change", function (e) {
      state.task = e.target.value; state.dataset = null; state.protocol = null; state.part = null;
      state.kinds = null;
      state.sort = null; syncSelectors(); renderAll();
    });
    $("f-dataset").addEventListener("change", function (e) {
      state.dataset = e.target.value; state.protocol = null; state.part = null; state.kinds = null;
      state.sort = null;
      syncSelectors(); renderAll();
    });
    $("f-protocol").addEventListener("change", function (e) {
      state.protocol = e.target.value; state.part = null; state.kinds = null; state.sort = null;
      syncSelectors(); renderAll();
    });
    $("f-part").addEventListener("change", function (e) {
      state.part = e.target.value; state.kinds = null; state.sort = null; renderAll();
    });
    $("f-kbps-min").addEventListener("input", function (e) { state.kbpsMin = readNumber(e.target); renderTable(); });
    $("f-kbps-max").addEventListener("input", function (e) { state.kbpsMax = readNumber(e.target); renderTable(); });
    $("f-search").addEventListener("input", function (e) { state.search = e.target.value; renderTable(); });
    $("f-reported").addEventListener("change", function (e) { state.reported = e.target.checked; renderTable(); });
  }

  $("meta").textContent = "generated " + DATA.generated + " by tokbench " + DATA.tokbench_version +
    " · " + DATA.runs.length + " runs · " + DATA.tables.length + " tables";
  bind();
  syncSelectors();
  renderAll();
  renderReferences();
  renderExamples();
  renderProvenance();
}());
