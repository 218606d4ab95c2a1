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
    allColumns: false,     // false: the compact set of columns papers report
    sort: null,            // {key: string, dir: 1 | -1}
    pareto: null,          // the metric of the Pareto chart shown
    utterance: null        // the utterance whose audio is shown
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
  function safeColour(c) { return /^#[0-9a-fA-F]{6}$/.test(c || "") ? c : null; }

  /* A small square in the row's family colour (the colour its charts use). */
  function swatch(colour, title) {
    var s = el("span", {class: "swatch", title: title || null, "aria-hidden": "true"});
    var c = safeColour(colour);
    if (c) { s.style.backgroundColor = c; } else { s.className += " none"; }
    return s;
  }

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
      o.textContent = o.value ? o.value + " (by param)" : "main results";
    });
  }

  function currentTable() {
    var found = DATA.tables.filter(function (t) {
      return t.task === state.task && t.dataset === state.dataset &&
        t.protocol_id === state.protocol && t.part === state.part;
    });
    return found.length ? found[0] : null;
  }

  function openDefault() {
    var chosen = DATA.tables.filter(function (t) { return t.id === DATA.default_table; })[0];
    if (chosen) {
      state.task = chosen.task; state.dataset = chosen.dataset;
      state.protocol = chosen.protocol_id; state.part = chosen.part;
    }
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

  /* The metric columns shown: in compact mode the computed ones a paper reports (when the
   * table has any), else all; columns no run computed come last (the data orders them). */
  function metricColumns(table) {
    var compact = table.columns.filter(function (c) { return c.compact && c.computed; });
    if (state.allColumns || !compact.length) { return table.columns; }
    return compact;
  }

  function columnsOf(table) {
    var cols = [
      {key: "tokenizer", label: "tokenizer", cls: "text col-tokenizer"},
      {key: "kind", label: "kind", cls: "text col-kind"}
    ];
    if (table.rows.some(function (r) { return r.param !== null; })) {
      cols.push({key: "param", label: "param", cls: "text"});
    }
    cols.push({key: "kbps", label: "kbps", unit: "nominal"});
    if (state.allColumns) { cols.push({key: "token_rate", label: "tok/s"}); }
    metricColumns(table).forEach(function (c) {
      cols.push({key: "m:" + c.metric, metric: c, label: c.metric + (c.arrow ? " " + c.arrow : ""),
                 unit: c.unit, cls: c.computed ? null : "not-computed"});
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
      var title = null;
      if (col.metric) {
        title = col.metric.description + (col.metric.range ? " (range " + col.metric.range.join(" to ") + ")" : "") +
          (col.metric.computed ? "" : ". No run in this table computed it.");
      }
      var th = el("th", {
        class: col.cls || null, scope: "col", "data-key": col.key, tabindex: "0", title: title,
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

  function publishedLine(pub) {
    var ref = DATA.references[pub.reference];
    var verdict = pub.in_ci === null ? "" : pub.in_ci ? ", in our CI" : ", outside our CI";
    var text = "reported " + pub.text + (pub.diff_text ? " (Δ " + pub.diff_text + verdict + ")" : "");
    var cls = "published" + (pub.in_ci === true ? " in-ci" : pub.in_ci === false ? " out-ci" : "");
    return el("a", {class: cls, href: "#ref-" + pub.reference,
                    title: (ref ? "[" + (pub.reference + 1) + "] " + ref.citation + ": " + pub.label + ". " : "") +
                           (pub.comparable === "caveats" ? "Comparable with caveats: " : "Comparable: ") + pub.note +
                           ". Δ = ours − reported."}, text + (pub.comparable === "caveats" ? " ≈" : ""));
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
    var cls = [cell.best ? "best" : null, cell.partial ? "partial" : null].filter(Boolean).join(" ");
    var td = el("td", {class: cls || null, title: cell.note || null},
                el("span", {class: "mean", text: cell.text + (cell.best ? " ★" : "")}));
    // n scored of N recorded, for every per-utterance figure (corpus figures have no n).
    var n = metric.per_utterance && isNum(cell.n_total) ? "n=" + cell.n_scored + "/" + cell.n_total : cell.n;
    var sub = [cell.ci, n].filter(function (s) { return s; }).join(" ");
    if (sub) { td.append(el("span", {class: "sub" + (cell.partial ? " partial" : ""), text: sub,
                                     title: cell.partial ? "scored on " + cell.n_scored + " of " + cell.n_total + " utterances" : null})); }
    if (cell.published) { td.append(publishedLine(cell.published)); }
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
      var tr = el("tr", {class: cls.join(" ") || null, "data-kind": row.kind, "data-family": row.family});
      var name = el("td", {class: "text col-tokenizer"});
      if (row.reported === null) { name.append(swatch(row.colour, row.family)); }
      if (row.run !== null) {
        name.append(el("a", {href: "#run-" + row.run, title: "provenance of this run", text: row.label}));
      } else {
        name.append(el("span", {class: "label", text: row.label}));
      }
      if (row.coverage && row.coverage.partial) {
        name.append(el("span", {class: "badge partial", title: (row.status_reason ? row.status_reason + ". " : "") +
                                "Some cells cover fewer utterances than the run recorded."},
                       "partial " + row.coverage.text));
      } else if (!row.status && row.status_reason) {
        name.append(el("span", {class: "badge partial", title: row.status_reason}, "partial"));
      }
      if (row.reported !== null) {
        name.append(el("a", {class: "badge reported", href: "#ref-" + row.reported,
                             title: DATA.references[row.reported].citation}, "reported [" + (row.reported + 1) + "]"));
      }
      tr.append(name);
      tr.append(el("td", {class: "text col-kind", text: kindLabel(row.kind)}));
      if (cols.some(function (c) { return c.key === "param"; })) {
        tr.append(el("td", {class: "text", text: row.param === null ? "" : row.param}));
      }
      tr.append(el("td", {class: "col-kbps", text: row.kbps_text}));
      if (state.allColumns) { tr.append(el("td", {text: row.token_rate_text})); }
      var metricCols = cols.filter(function (c) { return c.metric; });
      if (row.status) {
        tr.append(el("td", {class: "unsupported", colspan: Math.max(1, metricCols.length),
                            title: row.status_reason || null},
                     el("span", {class: "status-text", text: row.status + (row.status_reason ? ": " + row.status_reason : "")})));
      } else {
        metricCols.forEach(function (c) { tr.append(metricCell(row, c.metric)); });
      }
      tbody.append(tr);
    });
    $("row-count").textContent = "showing " + rows.length + " of " + table.rows.length + " rows";
    var hidden = table.columns.length - metricColumns(table).length;
    var toggle = $("f-columns");
    toggle.checked = state.allColumns;
    $("f-columns-text").textContent = state.allColumns ? "all columns (uncheck for the compact view)"
      : "all columns (" + hidden + " more)";
    $("f-columns-label").hidden = !state.allColumns && hidden === 0;
    var empty = $("empty");
    empty.hidden = rows.length > 0;
    empty.textContent = rows.length ? "" : "No row matches the filters.";
  }

  function chartFigure(chart, table) {
    var title = chart.title || chart.chart;
    if (!(chart.files && chart.files.svg)) {
      return el("p", {class: "chart-message", "data-chart": chart.chart},
                title + ": not drawn: " + (chart.message || "no reason recorded"));
    }
    var links = el("figcaption", null, title + " · ");
    ["png", "svg", "pdf"].forEach(function (fmt) {
      if (chart.files[fmt]) { links.append(el("a", {href: chart.files[fmt], text: fmt.toUpperCase()}), " "); }
    });
    return el("figure", {"data-chart": chart.chart},
              el("img", {src: chart.files.svg, alt: title + ": " + table.title}), links);
  }

  function renderPareto(table) {
    var box = $("pareto");
    box.textContent = "";
    var charts = table ? table.charts.filter(function (c) { return c.chart.indexOf("pareto") === 0; }) : [];
    var select = $("f-pareto");
    select.textContent = "";
    var drawn = charts.filter(function (c) { return c.metric; });
    drawn.forEach(function (c) { select.append(el("option", {value: c.metric, text: c.metric})); });
    $("f-pareto-label").hidden = drawn.length <= 1;
    if (!charts.length) {
      box.append(el("p", {class: "chart-message", "data-chart": "pareto",
                          text: table && table.part ? "The Pareto view is drawn for main tables only."
                                                    : "No Pareto chart was generated for this table (charts off?)."}));
      return;
    }
    var metrics = drawn.map(function (c) { return c.metric; });
    if (metrics.indexOf(state.pareto) < 0) { state.pareto = metrics.length ? metrics[0] : null; }
    if (state.pareto !== null) { select.value = state.pareto; }
    var chart = charts.filter(function (c) { return c.metric === state.pareto; })[0] || charts[0];
    box.append(chartFigure(chart, table));
  }

  function renderCharts(table) {
    var box = $("charts");
    box.textContent = "";
    var charts = table ? table.charts.filter(function (c) { return c.chart.indexOf("pareto") !== 0; }) : [];
    if (!charts.length) {
      box.append(el("p", {class: "chart-message", text: table && table.part
        ? "Tables by param have no charts: a radar over codebooks would compare nothing meaningful."
        : "No charts were generated for this table (the site was built with --no-charts?)."}));
      return;
    }
    charts.forEach(function (chart) { box.append(chartFigure(chart, table)); });
  }

  function renderAll() {
    var table = currentTable();
    if (!table) {
      $("table-title").textContent = "";
      $("empty").hidden = false;
      $("empty").textContent = "No results yet: run `tokbench run ...`, then `tokbench leaderboard`.";
      renderCharts(null);
      renderPareto(null);
      renderExamples(null);
      return;
    }
    $("table-title").textContent = table.title;
    syncKinds(table);
    renderTable();
    renderPareto(table);
    renderCharts(table);
    renderExamples(table);
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

  var INPUT_ROLES = ["original", "source", "prompt"];
  var ROLE_LABELS = {original: "original", source: "source (input)", prompt: "prompt (target speaker)",
                     reconstruction: "reconstruction", converted: "converted"};

  function player(file, label) {
    return el("div", {class: "player"}, el("div", {class: "label", text: label}),
              el("audio", {controls: "", preload: "none", src: file.src}));
  }

  /* For the chosen utterance: the inputs once (the same recording kept by several runs is one
   * file), then one row per run with what its tokenizer produced, in the table's row order. */
  function renderExamples(table) {
    var box = $("examples");
    box.textContent = "";
    var select = $("f-utterance");
    select.textContent = "";
    if (!DATA.examples.length) {
      box.append(el("p", {class: "meta", text: "No run kept audio examples (run with --set keep_audio=N)."}));
      $("f-utterance-label").hidden = true;
      return;
    }
    var rowOf = {};
    if (table) {
      table.rows.forEach(function (r) { if (r.run !== null && !(r.run in rowOf)) { rowOf[r.run] = r; } });
    }
    var examples = DATA.examples.filter(function (ex) { return ex.run in rowOf; });
    if (!examples.length) {
      box.append(el("p", {class: "meta", text: "No run of this table kept audio examples (" +
        DATA.examples.length + " examples belong to other tables)."}));
      $("f-utterance-label").hidden = true;
      return;
    }
    var ids = uniq(examples.map(function (ex) { return ex.utterance_id; })).sort();
    ids.forEach(function (id) { select.append(el("option", {value: id, text: id})); });
    $("f-utterance-label").hidden = false;
    if (ids.indexOf(state.utterance) < 0) { state.utterance = ids[0]; }
    select.value = state.utterance;
    var chosen = examples.filter(function (ex) { return ex.utterance_id === state.utterance; });
    var order = table.rows.map(function (r) { return r.run; });
    chosen.sort(function (a, b) { return order.indexOf(a.run) - order.indexOf(b.run); });

    var inputs = el("div", {class: "example-inputs"});
    var seen = {};
    INPUT_ROLES.forEach(function (role) {
      var files = [];
      chosen.forEach(function (ex) {
        var f = ex.files[role];
        if (f && !seen[f.sha256]) { seen[f.sha256] = true; files.push({file: f, run: ex.run}); }
      });
      files.forEach(function (x) {
        var label = ROLE_LABELS[role] + (files.length > 1 ? " as kept by " + rowOf[x.run].label : "");
        inputs.append(player(x.file, label));
      });
    });
    box.append(inputs);
    var grid = el("div", {class: "example-grid"});
    chosen.forEach(function (ex) {
      var row = rowOf[ex.run];
      var cell = el("div", {class: "example", "data-run": ex.run},
                    el("div", {class: "who"}, swatch(row.colour, row.family),
                       el("a", {href: "#run-" + ex.run, title: runLabel(ex.run), text: row.label})));
      ex.roles.forEach(function (role) {
        if (INPUT_ROLES.indexOf(role) >= 0) { return; }
        cell.append(player(ex.files[role], ROLE_LABELS[role] || role));
      });
      if (ex.note) { cell.append(el("p", {class: "meta warning", text: ex.note})); }
      grid.append(cell);
    });
    box.append(grid);
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
    $("f-columns").addEventListener("change", function (e) {
      state.allColumns = e.target.checked;
      if (state.sort && state.sort.key.indexOf("m:") === 0 && !state.allColumns) { state.sort = null; }
      renderTable();
    });
    $("f-pareto").addEventListener("change", function (e) { state.pareto = e.target.value; renderPareto(currentTable()); });
    $("f-utterance").addEventListener("change", function (e) { state.utterance = e.target.value; renderExamples(currentTable()); });
  }

  $("meta").textContent = "generated " + DATA.generated + " by tokbench " + DATA.tokbench_version +
    " · " + DATA.runs.length + " runs · " + DATA.tables.length + " tables";
  bind();
  openDefault();
  syncSelectors();
  renderAll();
  renderReferences();
  renderProvenance();
}());
