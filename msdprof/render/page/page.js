(function () {
"use strict";
var data = JSON.parse(document.getElementById("msdprof-data").textContent);
var SVGNS = "http://www.w3.org/2000/svg";
var svg = document.getElementById("layout");
var viewport = document.getElementById("viewport");
var panel = document.getElementById("panel"), body = document.getElementById("panel-body");
var chooser = document.getElementById("chooser");
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
var current = null, marks = null, found = Object.create(null), here = null;  // the search's matches, the one shown
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
var B = flow ? flow.box : null;  // box w, h; exit w, h; gaps: column, band, row; font
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
  var rank = {};  // every edge, grouped by tail in box order as networkx lists them (flow_layout.js)
  boxes.forEach(function (b, i) { rank[b] = i; });
  edges = edges.map(function (e, i) { return [e, i]; }).sort(function (a, b) {
    return rank[a[0][0]] - rank[b[0][0]] || a[1] - b[1];
  }).map(function (item) { return item[0]; });
  var at = flowLayout(boxes, edges, exitBox, B, flow.view), routes = flowRoutes(edges, exitBox, at, B);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  var edgeLayer = make("g", {"class": "edges"}, svg), nodeLayer = make("g", {"class": "nodes"}, svg);
  edgeEls = [];
  edges.forEach(function (e, i) {
    var p = routes[i][0], d = "M" + p[0];
    for (var j = 1; j + 2 < p.length; j += 3) d += "C" + p[j] + " " + p[j + 1] + " " + p[j + 2];
    var g = make("g", {"class": "edge", "data-from": e[0], "data-to": e[1]}, edgeLayer);
    make("path", {d: d, fill: "none", stroke: "#666"}, g);
    var tip = routes[i][1], from = p[p.length - 1], dx = tip[0] - from[0], dy = tip[1] - from[1], l = Math.hypot(dx, dy) || 1;
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
  flowFitTexts(Array.prototype.slice.call(nodeLayer.querySelectorAll("text")), B[0] - 8, B[7]);
  boxOf = repOf; membersOf = members;
  picture = {x: 0, y: 0, w: at.width, h: at.height};
  places = null;
  mark();
}
function relabel() {
  Object.keys(elements).forEach(function (b) {
    var texts = elements[b].querySelectorAll("text"), lines = linesOf(b);
    lines.forEach(function (line, i) { if (texts[i]) texts[i].textContent = line; });
  });
  flowFitTexts(Array.prototype.slice.call(svg.querySelectorAll(".nodes text")), B[0] - 8, B[7]);
}
// --- marks ---------------------------------------------------------------------------------------
function mark() {
  Object.keys(elements).forEach(function (id) {
    MARKS.forEach(function (m) { elements[id].classList.remove(m); });
    elements[id].classList.toggle("found", found[id] === true);
    elements[id].classList.toggle("here", id === here);
    if (!flow) return;
    elements[id].removeAttribute("data-needed");
    elements[id].querySelector(".need").setAttribute("width", 0);
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
// The exits to choose from: a button each, or past MANY exits a number box, a slider and a step
// either way (the panel stays one screen high).
var MANY = 24, compact = data.exits.length > MANY;
function buildChooser() {
  var exits = data.exits;
  if (!compact) {
    chooser.innerHTML = '<p class="exits">' + exits.map(function (e) {
      return '<button type="button" data-exit="' + e.exit + '">exit ' + e.exit + "</button>";
    }).join("") + "</p>";
    return;
  }
  chooser.innerHTML = '<div class="exits compact"><button type="button" data-step="-1" title="previous exit">‹</button>' +
    '<label>exit <input id="exit-number" type="number" min="' + exits[0].exit + '" max="' +
    exits[exits.length - 1].exit + '" step="1" placeholder="' + exits[0].exit + "–" + exits[exits.length - 1].exit +
    '"></label> of ' + exits.length +
    '<button type="button" data-step="1" title="next exit">›</button>' +
    '<input id="exit-slider" type="range" min="0" max="' + (exits.length - 1) + '" value="0" aria-label="exit">' +
    '<span id="exit-wrong" role="status"></span></div>';
  var number = document.getElementById("exit-number"), slider = document.getElementById("exit-slider");
  var wrong = document.getElementById("exit-wrong");
  number.addEventListener("change", function () {
    var e = exitsByNumber[number.value.trim()];
    wrong.textContent = e || !number.value.trim() ? "" : "no exit " + number.value.trim() + ": " + exits[0].exit +
      " to " + exits[exits.length - 1].exit;
    if (e) choose(e);
  });
  slider.addEventListener("input", function () { choose(exits[Number(slider.value)]); });
}
function showChoice() {  // the chooser says which exit is chosen
  if (!compact) {
    chooser.querySelectorAll("button[data-exit]").forEach(function (b) {
      b.classList.toggle("on", current !== null && b.getAttribute("data-exit") === String(current.exit));
    });
    return;
  }
  var number = document.getElementById("exit-number"), slider = document.getElementById("exit-slider");
  if (document.activeElement !== number) number.value = current === null ? "" : current.exit;
  if (current !== null) { slider.value = data.exits.indexOf(current); document.getElementById("exit-wrong").textContent = ""; }
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
    html = "<h2>Click an exit</h2><p>Click a red exit box (or choose one above) to light up the " +
      "feature maps or operations it needs, and read what it costs. Hover any box for its shape and cost." +
      (flow ? " Click a blue box to see the module's operations; the depth buttons fold or expand every box." : "") +
      "</p>" + '<p>Whole network: <span data-field="total-ops" data-value="' + total.ops +
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
      (e.uncounted[convention] ? '<p class="uncounted" data-field="uncounted">' + esc(e.uncounted[convention]) +
       "</p>" : "") +
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
      "</li></ul>" + openButtons();
  }
  body.innerHTML = html;
}
function select(e) { current = e; mark(); render(); showChoice(); }
function choose(e) { select(e); showCone(); }  // chosen in the panel: brought into view

document.querySelectorAll('#conventions input').forEach(function (input) {
  input.addEventListener("change", function () {
    if (input.checked) { convention = input.value; if (flow) relabel(); mark(); render(); }
  });
});
panel.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-exit]");
  if (button) { choose(exitsByNumber[button.getAttribute("data-exit")]); return; }
  var step = event.target.closest("button[data-step]");
  if (step) {
    var at = current === null ? -1 : data.exits.indexOf(current), by = Number(step.getAttribute("data-step"));
    choose(data.exits[Math.max(0, Math.min(data.exits.length - 1, at < 0 && by < 0 ? data.exits.length - 1 : at + by))]);
    return;
  }
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
  } else if (isExit(id)) {  // what the exit costs, as the panel's headline; then its head's own cost
    var f = exitsByNumber[n.exit].figures[convention];
    lines = [esc(n.what), esc(f.lazy.ops_text) + " lazy vs " + esc(f.eager.ops_text) + " eager",
             esc(f.lazy.params_text) + " lazy, " + esc(f.eager.params_text) + " eager"];
    if (n.ops[convention] || n.params) lines.push("its head alone: " + esc(n.ops_text[convention]) + ", " + esc(n.params_text));
    lines.push(current && current.exit === n.exit ? "chosen" : "click to choose it");
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
var measured = null;  // the viewport's size in px as last measured: reading it lays the whole page out
function size() {
  if (measured === null) measured = [Math.max(viewport.clientWidth, 1), Math.max(viewport.clientHeight, 1)];
  return measured;
}
// Labels smaller than LEGIBLE px on screen: the hint says so and how to read them.
var LEGIBLE = 10, small = document.getElementById("small"), smallest = null;  // px a unit of view.s
var fitted = false;  // the view is the whole picture, as fitAll left it
function apply() {
  var wh = size();
  fitted = false;
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
    "zoom in (+ or the wheel), or choose an exit in the panel to zoom to what it needs";
}
function fitAll() {  // the whole picture, centred (a small one at most 1.5 px a unit)
  var wh = size(), s = Math.min(wh[0] / picture.w, wh[1] / picture.h, 1.5);
  view = {s: s, x: picture.x - (wh[0] / s - picture.w) / 2, y: picture.y - (wh[1] / s - picture.h) / 2};
  smallest = null;  // the picture may have been redrawn
  apply();
  fitted = true;
}
function zoom(factor, clientX, clientY) {
  var r = viewport.getBoundingClientRect(), wh = size();
  var least = Math.min(wh[0] / picture.w, wh[1] / picture.h) / 2;
  var s = Math.min(Math.max(view.s * factor, least), 12);
  var px = view.x + (clientX - r.left) / view.s, py = view.y + (clientY - r.top) / view.s;
  view = {s: s, x: px - (clientX - r.left) / s, y: py - (clientY - r.top) / s};
  apply();
}
function within(at, start, length, shown) {  // a view's corner along one axis: no blank beside the picture
  // that more of it could fill; a picture the view holds whole along this axis, centred
  return shown >= length ? start - (shown - length) / 2 : Math.max(start, Math.min(at, start + length - shown));
}
// Where each box is, in picture units ({l, t, r, b}), measured once for all boxes (one layout of the
// page, not one per box) and again only when the picture is redrawn.
var places = null;
function placeOf(id) {
  if (places === null) {
    var r = viewport.getBoundingClientRect();
    places = Object.create(null);
    Object.keys(elements).forEach(function (key) {
      var b = elements[key].getBoundingClientRect();
      places[key] = {l: view.x + (b.left - r.left) / view.s, t: view.y + (b.top - r.top) / view.s,
                     r: view.x + (b.right - r.left) / view.s, b: view.y + (b.bottom - r.top) / view.s};
    });
  }
  return places[id] || null;
}
function centreOn(id) {  // the box in the middle of the view (or as near as the picture allows), at least 1 px a unit
  var p = placeOf(id), wh = size();
  if (!p) return;
  view.s = Math.max(view.s, 1);
  view.x = within((p.l + p.r) / 2 - wh[0] / 2 / view.s, picture.x, picture.w, wh[0] / view.s);
  view.y = within((p.t + p.b) / 2 - wh[1] / 2 / view.s, picture.y, picture.h, wh[1] / view.s);
  apply();
  intoView(id, 24);
}
function exitBox() {  // the box of the chosen exit (an exit is never folded into another box)
  if (current === null) return null;
  return elements[current.node] ? current.node : boxOf ? boxOf[index[current.node]] : null;
}
function intoView(id, margin) {  // pan the least that puts the box inside the view, margin px from its edges
  var p = id === null ? null : placeOf(id), wh = size();
  if (!p) return;
  function shift(low, high, from, length) {  // units to move the view along one axis
    var m = Math.min(margin / view.s, Math.max(0, (length - (high - low)) / 2));
    if (high - low + 2 * m > length) return (low + high) / 2 - (from + length / 2);
    if (low < from + m) return low - from - m;
    if (high > from + length - m) return high - (from + length - m);
    return 0;
  }
  var dx = shift(p.l, p.r, view.x, wh[0] / view.s), dy = shift(p.t, p.b, view.y, wh[1] / view.s);
  if (dx || dy) { view.x += dx; view.y += dy; apply(); }
}
function showCone() {  // a choice in the panel: zoom to the exit and what it needs (clicks keep the view)
  var box = null;
  Object.keys(elements).forEach(function (id) {
    var cls = elements[id].classList;
    if (!cls.contains("selected") && !cls.contains("ancestor")) return;
    var p = placeOf(id);
    box = box ? {l: Math.min(box.l, p.l), t: Math.min(box.t, p.t), r: Math.max(box.r, p.r), b: Math.max(box.b, p.b)} : p;
  });
  if (!box) return;
  // The whole cone when its labels can be read so (at most 1.5 px a unit), else labels at LEGIBLE px
  // around the exit: the exit itself is always in view, and never under the panel.
  var wh = size(), w = box.r - box.l + 40, h = box.b - box.t + 40;
  var s = Math.max(Math.min(wh[0] / w, wh[1] / h, 1.5), smallest ? LEGIBLE / smallest : 0);
  view = {s: s, x: within(box.l - 20 - (wh[0] / s - w) / 2, picture.x, picture.w, wh[0] / s),
          y: within(box.t - 20 - (wh[1] / s - h) / 2, picture.y, picture.h, wh[1] / s)};
  apply();
  intoView(exitBox(), 24);
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
// A new window size fits the whole picture again (as does the panel folding away or coming back
// while the whole picture is shown); else the view keeps its centre and scale. Either way the
// chosen exit stays in view.
var shown = {w: 0, h: 0, window: [window.innerWidth, window.innerHeight]};
function resized() {
  measured = null;
  var wh = size(), now = [window.innerWidth, window.innerHeight];
  if (wh[0] === shown.w && wh[1] === shown.h) return;
  if (now[0] !== shown.window[0] || now[1] !== shown.window[1] || !shown.w || fitted) fitAll();
  else {
    view.x += (shown.w - wh[0]) / 2 / view.s; view.y += (shown.h - wh[1]) / 2 / view.s;
    apply();
  }
  shown = {w: wh[0], h: wh[1], window: now};
  intoView(exitBox(), 24);
}
if (window.ResizeObserver) new ResizeObserver(resized).observe(viewport);
else window.addEventListener("resize", resized);
var toggle = document.getElementById("panel-toggle");
toggle.addEventListener("click", function () {
  var folded = panel.classList.toggle("folded");
  toggle.setAttribute("aria-expanded", String(!folded));
  toggle.setAttribute("title", folded ? "show the panel" : "hide the panel");
  toggle.querySelector(".chevron").textContent = folded ? "‹" : "›";
  resized();
});
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

// Search: by id, by what a box shows (an MSDNet's "layer 4 scale 1", "block 3", "exit 2", a shape;
// a module's type) -- every word-and-number pair asked must be the box's, the rest of the text part of
// it. Every match is outlined; Enter (and the arrows) step through them, each brought into view and
// the folded boxes holding it expanded.
var search = document.getElementById("search"), names = flow ? Object.keys(flow.groups).concat(order) : order;
var hitsText = document.getElementById("hits"), hitButtons = document.querySelectorAll("#find button[data-hit]");
var hits = [], hitAt = -1, asked = "", texts = Object.create(null), PAIR = /([a-z]+)\s+(\d+)(?![\d.])/g;
if (flow) {  // a group's place: its first operation's (it comes before what it holds)
  var firstAt = Object.create(null);
  order.forEach(function (n, i) { flow.node_groups[n].forEach(function (g) { if (!(g in firstAt)) firstAt[g] = i; }); });
  names.sort(function (a, b) {
    var pa = a in firstAt ? firstAt[a] : index[a], pb = b in firstAt ? firstAt[b] : index[b];
    return pa - pb || (b in firstAt) - (a in firstAt) || (a in firstAt ? flow.groups[a].level - flow.groups[b].level : 0);
  });
}
document.getElementById("names").innerHTML = names.map(function (n) {
  return '<option value="' + esc(n) + '">';
}).join("");
function textOf(n) {  // what a box says of itself, in lower case
  if (!(n in texts)) {
    var parts = [n];
    if (flow && flow.groups[n]) parts.push(flow.groups[n].lines[data.initial][1]);
    else {
      parts.push(data.nodes[n].what);
      if (data.nodes[n].where) parts.push(data.nodes[n].where);
      if (flow) parts = parts.concat(flow.lines[data.initial][n].slice(0, 2));
    }
    texts[n] = parts.join(" · ").toLowerCase();
  }
  return texts[n];
}
function pairs(text) {
  var list = [], m;
  PAIR.lastIndex = 0;
  while ((m = PAIR.exec(text))) list.push(m[1] + " " + m[2]);
  return list;
}
function matches(text) {
  if (names.indexOf(text) >= 0) return [text];
  var asks = text.toLowerCase().replace(/(\d)\s*[x*]\s*(?=\d)/g, "$1×");
  var wanted = pairs(asks), rest = asks.replace(PAIR, " ").replace(/[\s,;·]+/g, " ").trim();
  return names.filter(function (n) {
    var t = textOf(n), has = wanted.length ? pairs(t) : [];
    return wanted.every(function (p) { return has.indexOf(p) >= 0; }) && (!rest || t.indexOf(rest) >= 0);
  });
}
function reveal(name) {  // expand the folded boxes holding ``name`` (a group: fold what it holds)
  if (!flow || elements[name]) return;
  var chain = flow.groups[name] ? [] : flow.node_groups[name].slice();
  for (var g = flow.groups[name] ? flow.groups[name].parent : null; g; g = flow.groups[g].parent) chain.push(g);
  chain.forEach(function (g) { open[g] = true; });
  delete open[name];
  draw(); fitAll(); render();
}
function showHit(i) {
  hitAt = i; here = i < 0 ? null : hits[i];
  if (here !== null) reveal(here);
  mark();
  if (here !== null) centreOn(here);
  hitsText.textContent = !asked ? "" : hits.length ? (i + 1) + " of " + hits.length : "no box matches “" + asked + "”";
  hitsText.classList.toggle("none", Boolean(asked) && !hits.length);
  document.getElementById("hits-bar").hidden = !asked;
  hitButtons.forEach(function (b) { b.disabled = hits.length < 2; });
}
function findAll(text) {
  asked = text; hits = text ? matches(text) : []; found = Object.create(null);
  hits.forEach(function (h) { found[h] = true; });
  showHit(hits.length ? 0 : -1);
}
function stepHit(by) { if (hits.length) showHit((hitAt + by + hits.length) % hits.length); }
search.addEventListener("keydown", function (event) {
  if (event.key !== "Enter") return;
  event.preventDefault();
  var text = search.value.trim();
  if (text && text === asked && hits.length) stepHit(event.shiftKey ? -1 : 1); else findAll(text);
});
search.addEventListener("change", function () { if (search.value.trim() !== asked) findAll(search.value.trim()); });
search.addEventListener("input", function (event) {  // cleared, or a name picked from the list
  if (!search.value.trim() || event.inputType === "insertReplacementText") findAll(search.value.trim());
});
hitButtons.forEach(function (b) {
  b.addEventListener("click", function () { stepHit(Number(b.getAttribute("data-hit"))); });
});

if (flow) { setDepth(flow.depth); draw(); } else {
  Array.prototype.forEach.call(svg.querySelectorAll("[data-node]"), function (el) {
    elements[el.getAttribute("data-node")] = el;
  });
  edgeEls = Array.prototype.slice.call(svg.querySelectorAll("[data-from]"));
}
buildChooser();
fitAll();
shown = {w: size()[0], h: size()[1], window: [window.innerWidth, window.innerHeight]};
render();
if (data.exit !== null) choose(exitsByNumber[data.exit]);
})();
