(function () {
"use strict";
var data = JSON.parse(document.getElementById("msdprof-data").textContent);
var SVGNS = "http://www.w3.org/2000/svg";
var svg = document.getElementById("layout");
var viewport = document.getElementById("viewport");
var panel = document.getElementById("panel");
var tooltip = document.getElementById("tooltip");
var flow = data.flow;
var MARKS = ["selected", "ancestor", "earlier", "deferred"];
var order = data.order, index = {}, preds = [];
order.forEach(function (n, i) { index[n] = i; preds.push([]); });
data.edges.forEach(function (e) { preds[e[1]].push(e[0]); });
function isExit(n) { var x = data.nodes[n].exit; return x !== null && x !== undefined; }
var exitsByNumber = {};
data.exits.forEach(function (e) { exitsByNumber[e.exit] = e; });
var convention = data.initial;
var current = null, marks = null, found = null;
var elements = {}, edgeEls = [], boxOf = null, membersOf = null;

function esc(text) {
  return String(text).replace(/[&<>"]/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c];
  });
}
// --- what an exit needs: computed here from the edges (the page grows linearly with the graph) ---
function closure(starts) {
  var seen = new Uint8Array(order.length), stack = starts.slice();
  starts.forEach(function (i) { seen[i] = 1; });
  while (stack.length) {
    preds[stack.pop()].forEach(function (p) { if (!seen[p]) { seen[p] = 1; stack.push(p); } });
  }
  return seen;
}
function marksOf(e) {  // per node (graph order): selected, ancestor, earlier, deferred or ""
  var at = index[e.node], k = data.exits.indexOf(e);
  var cone = closure([at]);
  var lazy = closure(data.exits.slice(0, k).map(function (x) { return index[x.node]; }));
  return order.map(function (n, i) {
    if (i === at) return "selected";
    if (cone[i]) return "ancestor";
    if (lazy[i]) return "earlier";
    return i < at && !isExit(n) ? "deferred" : "";
  });
}
// --- folding a dataflow graph by its module calls, and drawing it -----------------------------
var open = {}, depth = flow ? flow.depth : 0;
function setDepth(d) {
  depth = Math.max(1, Math.min(d, flow.max_depth + 1));
  open = {};
  Object.keys(flow.groups).forEach(function (g) { if (flow.groups[g].level < depth) open[g] = true; });
  document.getElementById("depth-value").textContent = " " + depth + " of " + (flow.max_depth + 1) + " ";
}
function boxFor(n) {
  var gs = flow.node_groups[n];
  for (var i = 0; i < gs.length; i++) if (!open[gs[i]]) return gs[i];
  return n;
}
var B = flow ? flow.box : null;  // box w, h; exit w, h; gaps: column, exit, row; font
function layout(boxes, edges, exitBox) {  // as msdprof.render.drawing.flow_places
  var place = {}, ins = {}, outs = {}, column = {}, count = 1;
  boxes.forEach(function (b, i) { place[b] = i; ins[b] = []; outs[b] = []; });
  edges.forEach(function (e) { ins[e[1]].push(e[0]); outs[e[0]].push(e[1]); });
  boxes.forEach(function (b) {
    var before = ins[b].filter(function (p) { return place[p] < place[b]; }).map(function (p) { return column[p]; });
    var most = before.length ? Math.max.apply(null, before) : (exitBox[b] ? 0 : -1);
    column[b] = exitBox[b] ? most : most + 1;
    count = Math.max(count, column[b] + 1);
  });
  var hasExit = [], stacked = [];
  for (var c = 0; c < count; c++) { hasExit.push(false); stacked.push(0); }
  boxes.forEach(function (b) { if (exitBox[b]) hasExit[column[b]] = true; else stacked[column[b]] += 1; });
  var stepX = B[0] + B[4], exitH = B[3] + B[5], gap = B[6];
  function rowHeight(from, to) {
    var deep = 0, ex = false;
    for (var c = from; c < to; c++) { deep = Math.max(deep, stacked[c]); ex = ex || hasExit[c]; }
    deep = deep || 1;
    return deep * (B[1] + B[5]) - B[5] + (ex ? exitH : 0) + gap;
  }
  var best = -1, perRow = 1;
  for (var n = 1; n <= count; n++) {
    var height = 0;
    for (var s = 0; s < count; s += n) height += rowHeight(s, Math.min(s + n, count));
    var fit = Math.min(flow.view[0] / (n * stepX), flow.view[1] / height);
    if (fit > best + 1e-9) { best = fit; perRow = n; }
    if (n * stepX > flow.view[0] * 8) break;
  }
  var tops = [], top = 0;
  for (var s2 = 0; s2 < count; s2 += perRow) { tops.push(top); top += rowHeight(s2, Math.min(s2 + perRow, count)); }
  var reach = {};
  for (var j = boxes.length - 1; j >= 0; j--) {
    var b = boxes[j], r = 0;
    outs[b].forEach(function (o) { if (place[o] > place[b]) r = Math.max(r, reach[o]); });
    reach[b] = 1 + r;
  }
  var sorted = boxes.slice().sort(function (a, b) {
    return column[a] - column[b] || reach[b] - reach[a] || place[a] - place[b];
  });
  var x = {}, y = {}, slot = {};
  sorted.forEach(function (b) {
    var c = column[b], row = Math.floor(c / perRow), at = c % perRow;
    x[b] = gap / 2 + at * stepX + B[0] / 2;
    if (exitBox[b]) {
      y[b] = tops[row] + gap / 2 + (stacked[c] || 1) * (B[1] + B[5]) + B[3] / 2;
    } else {
      y[b] = tops[row] + gap / 2 + (slot[c] || 0) * (B[1] + B[5]) + B[1] / 2;
      slot[c] = (slot[c] || 0) + 1;
    }
  });
  return {x: x, y: y, width: Math.min(perRow, count) * stepX + gap, height: top};
}
function edgePoints(t, h, headExit) {  // as msdprof.render.drawing._flow_edge: Bezier points, then the tip
  var tx = t[0], ty = t[1], hx = h[0], hy = h[1], w = B[0] / 2, hh = B[1] / 2;
  if (headExit && Math.abs(hx - tx) < 1) {
    var top = hy - B[3] / 2;
    return [[tx, ty + hh], [tx, ty + hh + 2], [hx, top - 8], [hx, top - 6], [hx, top]];
  }
  if (Math.abs(hy - ty) < B[1] + B[5] + 1 && hx > tx) {
    if (hx - tx < B[0] + B[4] + 1) {
      return [[tx + w, ty], [tx + w + 6, ty], [hx - w - 12, hy], [hx - w - 6, hy], [hx - w, hy]];
    }
    var rise = Math.min(B[6] / 2 + 4, 8 + 0.03 * (hx - tx)) * 1.3;
    return [[tx + 12, ty - hh], [tx + 12, ty - hh - rise], [hx - 12, hy - hh - rise], [hx - 12, hy - hh - 6],
            [hx - 12, hy - hh]];
  }
  var end = [hx, hy - (headExit ? B[3] / 2 : hh)], start = [tx, ty + hh];
  var bend = Math.max(20, (end[1] - start[1]) / 2);
  return [start, [start[0], start[1] + bend], [end[0], end[1] - 6 - bend], [end[0], end[1] - 6], end];
}
function reduce(boxes, edges) {  // as msdprof.render.drawing.drawn_edges: no arrow a longer path shows
  var place = {}, outs = {}, below = {};
  boxes.forEach(function (b, i) { place[b] = i; outs[b] = []; });
  edges.forEach(function (e) { outs[e[0]].push(e[1]); });
  for (var i = boxes.length - 1; i >= 0; i--) {
    var b = boxes[i], reach = {};
    outs[b].forEach(function (s) {
      if (place[s] > place[b]) { reach[s] = true; Object.keys(below[s]).forEach(function (r) { reach[r] = true; }); }
    });
    below[b] = reach;
  }
  return edges.filter(function (e) {
    var a = e[0], b = e[1];
    if (place[b] <= place[a]) return true;
    return !outs[a].some(function (c) { return c !== b && place[c] > place[a] && below[c][b]; });
  });
}
function make(tag, attrs, parent) {
  var el = document.createElementNS(SVGNS, tag);
  Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
  if (parent) parent.appendChild(el);
  return el;
}
function linesOf(b) {
  return flow.groups[b] ? flow.groups[b].lines[convention] : flow.lines[convention][b];
}
function draw() {  // fold, lay out and draw the boxes the open groups leave
  var boxes = [], members = {}, repOf = [], seen = {}, exitBox = {};
  order.forEach(function (n, i) {
    var b = boxFor(n);
    repOf.push(b);
    if (!seen[b]) { seen[b] = true; boxes.push(b); members[b] = []; exitBox[b] = b === n && isExit(n); }
    members[b].push(i);
  });
  var edges = [], have = {};
  data.edges.forEach(function (e) {
    var a = repOf[e[0]], b = repOf[e[1]], key = a + "\u0000" + b;
    if (a !== b && !have[key]) { have[key] = true; edges.push([a, b]); }
  });
  edges = reduce(boxes, edges);
  var at = layout(boxes, edges, exitBox);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  var edgeLayer = make("g", {"class": "edges"}, svg), nodeLayer = make("g", {"class": "nodes"}, svg);
  edgeEls = [];
  edges.forEach(function (e) {
    var p = edgePoints([at.x[e[0]], at.y[e[0]]], [at.x[e[1]], at.y[e[1]]], exitBox[e[1]]);
    var g = make("g", {"class": "edge", "data-from": e[0], "data-to": e[1]}, edgeLayer);
    make("path", {d: "M" + p[0] + "C" + p[1] + " " + p[2] + " " + p[3], fill: "none", stroke: "#666"}, g);
    var tip = p[4], from = p[3], dx = tip[0] - from[0], dy = tip[1] - from[1], l = Math.hypot(dx, dy) || 1;
    var ux = dx / l, uy = dy / l;
    make("polygon", {points: [[tip[0], tip[1]], [from[0] - uy * 3, from[1] + ux * 3],
                              [from[0] + uy * 3, from[1] - ux * 3]].join(" "), fill: "#666", stroke: "#666"}, g);
    edgeEls.push(g);
  });
  elements = {};
  boxes.forEach(function (b) {
    var exit = exitBox[b], w = exit ? B[2] : B[0], h = exit ? B[3] : B[1], lines = linesOf(b);
    var cls = "node" + (flow.groups[b] ? " group" : "") + (exit ? " exit" : "");
    var g = make("g", {"class": cls, "data-node": b}, nodeLayer);
    make("rect", {x: at.x[b] - w / 2, y: at.y[b] - h / 2, width: w, height: h, rx: 6}, g);
    make("rect", {"class": "need", x: at.x[b] - w / 2 + 3, y: at.y[b] + h / 2 - 6, width: 0, height: 3}, g);
    var first = at.y[b] - (lines.length - 1) * B[7] * 0.55 + B[7] * 0.35 - (exit ? 0 : 2);
    lines.forEach(function (line, i) {
      var t = make("text", {x: at.x[b], y: first + i * B[7] * 1.1, "text-anchor": "middle",
                            "font-size": B[7], "class": i ? "" : "name"}, g);
      t.textContent = line;
    });
    elements[b] = g;
  });
  boxOf = repOf; membersOf = members;
  picture = {x: 0, y: 0, w: at.width, h: at.height};
  mark();
}
function relabel() {
  Object.keys(elements).forEach(function (b) {
    var texts = elements[b].querySelectorAll("text"), lines = linesOf(b);
    lines.forEach(function (line, i) { if (texts[i]) texts[i].textContent = line; });
  });
}
// --- marks ---------------------------------------------------------------------------------------
function mark() {
  Object.keys(elements).forEach(function (id) {
    MARKS.forEach(function (m) { elements[id].classList.remove(m); });
    elements[id].classList.toggle("found", id === found);
    elements[id].removeAttribute("data-needed");
    var bar = elements[id].querySelector(".need");
    if (bar) bar.setAttribute("width", 0);
  });
  edgeEls.forEach(function (el) { el.classList.remove("on", "earlier"); });
  svg.classList.toggle("has-selection", current !== null);
  if (current === null) return;
  marks = marksOf(current);
  var boxMark = {}, need = {}, RANK = {selected: 4, ancestor: 3, earlier: 2, deferred: 1, "": 0};
  order.forEach(function (n, i) {
    var b = flow ? boxOf[i] : n, m = marks[i];
    if (!(b in boxMark) || RANK[m] > RANK[boxMark[b]]) boxMark[b] = m;
    if (m === "selected" || m === "ancestor") need[b] = (need[b] || 0) + data.nodes[n].ops[convention];
  });
  Object.keys(boxMark).forEach(function (b) {
    if (boxMark[b] && elements[b]) elements[b].classList.add(boxMark[b]);
  });
  if (flow) {
    Object.keys(need).forEach(function (b) {
      var g = flow.groups[b];
      if (!g || !elements[b]) return;
      var inside = membersOf[b].filter(function (i) { return marks[i] === "ancestor"; }).length;
      var share = g.ops[convention] ? need[b] / g.ops[convention] : inside / g.members;
      elements[b].setAttribute("data-needed", inside + " of " + g.members + " operations, " +
                               formatCount(need[b]) + " of " + g.ops_text[convention]);
      elements[b].querySelector(".need").setAttribute("width", (B[0] - 6) * share);
    });
  }
  edgeEls.forEach(function (el) {
    var a = boxMark[el.getAttribute("data-from")], b = boxMark[el.getAttribute("data-to")];
    var inCone = function (m) { return m === "selected" || m === "ancestor"; };
    if (inCone(a) && inCone(b)) el.classList.add("on");
    else if ((inCone(a) || a === "earlier") && (inCone(b) || b === "earlier")) el.classList.add("on", "earlier");
  });
}
function formatCount(v) {  // as msdprof.core.units.format_count
  var steps = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]];
  for (var i = 0; i < steps.length; i++) {
    if (Math.abs(v) >= steps[i][0]) return (v / steps[i][0]).toFixed(2) + " " + steps[i][1] + data.units[convention];
  }
  return v + " " + data.units[convention];
}
// --- the panel -----------------------------------------------------------------------------------
function cell(field, figure, part) {
  return '<td data-field="' + field + '" data-value="' + figure[part] + '">' +
         esc(figure[part + "_text"]) + "</td>";
}
function exitButtons() {
  return '<p class="exits">' + data.exits.map(function (e) {
    return '<button type="button" data-exit="' + e.exit + '"' +
           (current === e ? ' class="on"' : "") + ">exit " + e.exit + "</button>";
  }).join("") + "</p>";
}
function openButtons() {
  if (!flow) return "";
  var list = Object.keys(open).filter(function (g) { return flow.groups[g].level >= depth; });
  if (!list.length) return "";
  return '<p class="open">Expanded: ' + list.map(function (g) {
    return '<button type="button" data-fold="' + esc(g) + '" title="fold it again">' + esc(g) + " ×</button>";
  }).join("") + "</p>";
}
function render() {
  var html, what = flow ? "operations" : "maps";
  if (current === null) {
    var total = data.total[convention];
    html = "<h2>Click an exit</h2><p>Click a red exit box (or a button below) to light up the " +
      "feature maps or operations it needs, and read what it costs. Hover any box for its shape and cost." +
      (flow ? " Click a blue box to see the module's operations; the depth buttons fold or expand every box." : "") +
      "</p>" + exitButtons() + '<p>Whole network: <span data-field="total-ops" data-value="' + total.ops +
      '">' + esc(total.ops_text) + '</span>, <span data-field="total-params" data-value="' +
      total.params + '">' + esc(total.params_text) + "</span>.</p>" + openButtons();
  } else {
    var e = current, f = e.figures[convention], d = e.deferred_cost[convention];
    var saves = f.eager.ops ? (100 * (f.eager.ops - f.lazy.ops) / f.eager.ops).toFixed(1) : "0.0";
    var deferred = order.filter(function (n, i) { return marks[i] === "deferred"; });
    var count = function (m) { return marks.filter(function (x) { return x === m; }).length; };
    html = "<h2>exit " + e.exit + "</h2>" +
      '<p class="headline" data-field="headline"><b>' + esc(f.lazy.ops_text) + "</b> lazy vs <b>" +
      esc(f.eager.ops_text) + "</b> eager (lazy saves " + saves + "%)</p>" +
      "<table><thead><tr><th></th><th>" + esc(data.units[convention]) +
      "</th><th>params</th></tr></thead><tbody>" +
      data.figures.map(function (fig) {
        return '<tr><th title="' + esc(fig.meaning) + '">' + fig.name + "</th>" +
               cell(fig.name + "-ops", f[fig.name], "ops") +
               cell(fig.name + "-params", f[fig.name], "params") + "</tr>";
      }).join("") + "</tbody></table>" +
      '<p class="meaning">' + data.figures.map(function (fig) {
        return "<b>" + fig.name + "</b>: " + esc(fig.meaning);
      }).join("; ") + ".</p>" +
      '<p>Needs <b data-field="maps-needed" data-value="' + e.maps_needed + '">' + e.maps_needed +
      '</b> of the <b data-field="maps-computed" data-value="' + e.maps_computed + '">' +
      e.maps_computed + "</b> " + what + " computed so far (its own cone: " +
      esc(e.cone_cost[convention].ops_text) + ").</p>" +
      '<p>Lazy defers <b data-field="deferred-maps" data-value="' + e.deferred_maps + '">' +
      e.deferred_maps + "</b> " + what.replace(/s$/, "") + (e.deferred_maps === 1 ? "" : "s") +
      ': <span data-field="deferred-ops" data-value="' + d.ops + '">' + esc(d.ops_text) +
      '</span>, <span data-field="deferred-params" data-value="' + d.params + '">' + esc(d.params_text) +
      "</span>" + (deferred.length ? ', paid later if the image goes on:</p><p class="ids">' +
       deferred.slice(0, 40).map(esc).join(", ") + (deferred.length > 40 ? " …" : "") : "") + "</p>" +
      '<ul class="legend-list">' +
      '<li><span class="swatch selected"></span>exit ' + e.exit + "</li>" +
      '<li><span class="swatch ancestor"></span>what it needs (its ancestors): ' + count("ancestor") +
      (flow ? "; a folded box's bar: the share of its operations needed" : "") + "</li>" +
      '<li><span class="swatch earlier"></span>needed only by earlier exits: ' + count("earlier") + "</li>" +
      '<li><span class="swatch deferred"></span>computed eagerly, deferred by lazy: ' + count("deferred") +
      "</li></ul>" + exitButtons() + openButtons();
  }
  panel.innerHTML = html;
}
function select(e) { current = e; mark(); render(); }

document.querySelectorAll('#conventions input').forEach(function (input) {
  input.addEventListener("change", function () {
    if (input.checked) { convention = input.value; if (flow) relabel(); mark(); render(); }
  });
});
panel.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-exit]");
  if (button) { select(exitsByNumber[button.getAttribute("data-exit")]); showCone(); return; }
  var fold = event.target.closest("button[data-fold]");
  if (fold) {
    var name = fold.getAttribute("data-fold");
    Object.keys(open).forEach(function (g) {
      for (var p = g; p; p = flow.groups[p].parent) if (p === name) { delete open[g]; break; }
    });
    draw(); fitAll(); render();
  }
});
if (flow) {
  document.getElementById("depth").addEventListener("click", function (event) {
    var step = event.target.getAttribute("data-depth");
    if (step) { setDepth(depth + Number(step)); draw(); fitAll(); render(); }
  });
}

// Hover card.
svg.addEventListener("mouseover", function (event) {
  var el = event.target.closest("[data-node]");
  if (!el) return;
  var id = el.getAttribute("data-node"), n = data.nodes[id], lines;
  if (flow && flow.groups[id]) {
    var g = flow.groups[id];
    lines = [esc(flow.groups[id].lines[convention].slice(1, 3).join(", ")),
             esc(g.ops_text[convention]) + ", " + esc(g.params_text), "click to expand"];
    if (el.getAttribute("data-needed")) lines.splice(2, 0, "needed: " + esc(el.getAttribute("data-needed")));
  } else {
    lines = [esc(n.what), esc(n.ops_text[convention]) + ", " + esc(n.params_text)];
  }
  el.classList.add("hover");
  tooltip.innerHTML = "<b>" + esc(id) + "</b><br>" + lines.join("<br>");
  tooltip.setAttribute("data-node", id);
  tooltip.hidden = false;
});
svg.addEventListener("mouseout", function (event) {
  var el = event.target.closest("[data-node]");
  if (el && !el.contains(event.relatedTarget)) { el.classList.remove("hover"); tooltip.hidden = true; }
});
svg.addEventListener("mousemove", function (event) {
  if (tooltip.hidden) return;
  var r = viewport.getBoundingClientRect(), w = tooltip.offsetWidth, h = tooltip.offsetHeight;
  var x = event.clientX + 14 + w <= r.right ? event.clientX + 14 : event.clientX - 14 - w;
  var y = event.clientY + 14 + h <= r.bottom ? event.clientY + 14 : event.clientY - 14 - h;
  tooltip.style.left = x + "px"; tooltip.style.top = y + "px";
});

// Pan and zoom: the view is a corner (x, y) in picture units and a scale s (pixels per unit);
// a press that moves more than 4 px is a drag, not a click.
var whole = svg.viewBox.baseVal, picture = {x: whole.x, y: whole.y, w: whole.width, h: whole.height};
var view = {x: 0, y: 0, s: 1};
function size() { return [Math.max(viewport.clientWidth, 1), Math.max(viewport.clientHeight, 1)]; }
// Labels smaller than LEGIBLE px on screen: the hint says so and how to read them.
var LEGIBLE = 10, small = document.getElementById("small"), smallest = null;  // px a unit of view.s
function apply() {
  var wh = size();
  svg.setAttribute("viewBox", [view.x, view.y, wh[0] / view.s, wh[1] / view.s].join(" "));
  if (smallest === null) {
    var least = Infinity;
    svg.querySelectorAll("[data-node] text").forEach(function (t) {
      var m = t.getScreenCTM();
      if (m) least = Math.min(least, parseFloat(t.getAttribute("font-size") || getComputedStyle(t).fontSize) * m.a);
    });
    smallest = least / view.s;
  }
  var px = smallest * view.s;
  small.hidden = !(px < LEGIBLE);
  small.textContent = small.hidden ? "" : " · the labels are " + px.toFixed(1) + " px at this size: " +
    "zoom in (+ or the wheel), or choose an exit with its button to zoom to what it needs";
}
function fitAll() {  // the whole picture, centred (a small one at most 1.5 px a unit)
  var wh = size(), s = Math.min(wh[0] / picture.w, wh[1] / picture.h, 1.5);
  view = {s: s, x: picture.x - (wh[0] / s - picture.w) / 2, y: picture.y - (wh[1] / s - picture.h) / 2};
  smallest = null;  // the picture may have been redrawn
  apply();
}
function zoom(factor, clientX, clientY) {
  var r = viewport.getBoundingClientRect(), wh = size();
  var least = Math.min(wh[0] / picture.w, wh[1] / picture.h) / 2;
  var s = Math.min(Math.max(view.s * factor, least), 12);
  var px = view.x + (clientX - r.left) / view.s, py = view.y + (clientY - r.top) / view.s;
  view = {s: s, x: px - (clientX - r.left) / s, y: py - (clientY - r.top) / s};
  apply();
}
function centreOn(el) {  // the element in the middle of the view, at least 1 px a unit
  var r = viewport.getBoundingClientRect(), b = el.getBoundingClientRect(), wh = size();
  var cx = view.x + (b.left + b.width / 2 - r.left) / view.s, cy = view.y + (b.top + b.height / 2 - r.top) / view.s;
  view.s = Math.max(view.s, 1);
  view.x = cx - wh[0] / 2 / view.s; view.y = cy - wh[1] / 2 / view.s;
  apply();
}
function showCone() {  // zoom to the chosen exit and what it needs (a button's choice: clicks keep the view)
  var r = viewport.getBoundingClientRect(), box = null;
  svg.querySelectorAll(".selected[data-node], .ancestor[data-node]").forEach(function (el) {
    var b = el.getBoundingClientRect();
    box = box ? {l: Math.min(box.l, b.left), t: Math.min(box.t, b.top), r: Math.max(box.r, b.right),
                 b: Math.max(box.b, b.bottom)} : {l: b.left, t: b.top, r: b.right, b: b.bottom};
  });
  if (!box) return;
  var wh = size(), x = view.x + (box.l - r.left) / view.s, y = view.y + (box.t - r.top) / view.s;
  var w = (box.r - box.l) / view.s + 40, h = (box.b - box.t) / view.s + 40;
  var s = Math.max(Math.min(wh[0] / w, wh[1] / h, 1.5), view.s);
  view = {s: s, x: x - 20 - (wh[0] / s - w) / 2, y: y - 20 - (wh[1] / s - h) / 2};
  apply();
}
function centre() {
  var r = viewport.getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2];
}
svg.addEventListener("wheel", function (event) {
  event.preventDefault();
  zoom(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
}, {passive: false});
document.getElementById("zoom").addEventListener("click", function (event) {
  var what = event.target.getAttribute("data-zoom"), c = centre();
  if (what === "in") zoom(1.4, c[0], c[1]);
  else if (what === "out") zoom(1 / 1.4, c[0], c[1]);
  else if (what === "fit") fitAll();
});
window.addEventListener("resize", fitAll);
var press = null, dragged = false;
svg.addEventListener("pointerdown", function (event) {
  if (event.button !== 0) return;
  press = {x: event.clientX, y: event.clientY, vx: view.x, vy: view.y};
  dragged = false;
});
window.addEventListener("pointermove", function (event) {
  if (press === null) return;
  if (!dragged && Math.abs(event.clientX - press.x) + Math.abs(event.clientY - press.y) < 5) return;
  dragged = true; viewport.classList.add("dragging");
  view.x = press.vx - (event.clientX - press.x) / view.s;
  view.y = press.vy - (event.clientY - press.y) / view.s;
  apply();
});
window.addEventListener("pointerup", function () { press = null; viewport.classList.remove("dragging"); });
svg.addEventListener("click", function (event) {
  if (dragged) { dragged = false; return; }
  var el = event.target.closest("[data-node]");
  if (!el) { select(null); return; }
  var id = el.getAttribute("data-node");
  if (flow && flow.groups[id]) { open[id] = true; tooltip.hidden = true; draw(); fitAll(); render(); return; }
  var n = data.nodes[id];
  if (n && n.exit !== null && n.exit !== undefined) select(exitsByNumber[n.exit]);
});

// Search: a module or operation by name; folded boxes holding it are expanded.
var search = document.getElementById("search"), names = flow ? Object.keys(flow.groups).concat(order) : order;
document.getElementById("names").innerHTML = names.map(function (n) {
  return '<option value="' + esc(n) + '">';
}).join("");
function find(text) {
  var name = names.indexOf(text) >= 0 ? text : names.filter(function (n) { return n.indexOf(text) >= 0; })[0];
  if (!text || !name) { found = null; mark(); return; }
  if (flow) {
    var chain = flow.groups[name] ? [] : flow.node_groups[name].slice();
    for (var g = flow.groups[name] ? flow.groups[name].parent : null; g; g = flow.groups[g].parent) chain.push(g);
    chain.forEach(function (g) { open[g] = true; });
    draw(); fitAll(); render();
  }
  found = name; mark();
  if (elements[name]) centreOn(elements[name]);
}
search.addEventListener("change", function () { find(search.value.trim()); });
search.addEventListener("keydown", function (event) { if (event.key === "Enter") find(search.value.trim()); });

if (flow) { setDepth(flow.depth); draw(); } else {
  Array.prototype.forEach.call(svg.querySelectorAll("[data-node]"), function (el) {
    elements[el.getAttribute("data-node")] = el;
  });
  edgeEls = Array.prototype.slice.call(svg.querySelectorAll("[data-from]"));
}
fitAll();
if (data.exit !== null) { current = exitsByNumber[data.exit]; mark(); }
render();
})();
