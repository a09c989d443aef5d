// The dataflow picture's geometry, as msdprof/render/drawing.py lays it out (flow_places,
// flow_routes, _rounded, _tracks): the interactive page folds a graph as the reader asks and
// lays it out and routes its edges with these, so the page draws what `msdprof graph` draws.
// tests/test_pictures.py checks both give the same numbers, to the last bit.  Lengths in points, y down.
//
// boxes: node ids in graph order; edges: [tail, head] pairs, grouped by tail in box order (as
// networkx lists a graph's edges); exitBox: id -> true for an exit; B: [box width, box height,
// exit width, exit height, gap between columns, between bands, between rows, font size];
// view: [width, height] the picture's shape aims for.

var FLOW_ARROW = 6, FLOW_CORNER = 3, FLOW_TRACKS = [9, 11.5, 14, 16.5, 19];  // drawing.ARROW, CORNER, TRACKS
var FLOW_RISERS = [3, 5, 7], FLOW_IN = 9, FLOW_LAND = 12;  // drawing.RISERS, IN, LAND

function flowLayout(boxes, edges, exitBox, B, view) {  // drawing.flow_places
  var place = {}, ins = {}, outs = {}, column = {}, count = 1;
  boxes.forEach(function (b, i) { place[b] = i; ins[b] = []; outs[b] = []; });
  edges.forEach(function (e) { ins[e[1]].push(e[0]); outs[e[0]].push(e[1]); });
  boxes.forEach(function (b) {
    var before = ins[b].filter(function (p) { return place[p] < place[b]; }).map(function (p) { return column[p]; });
    var most = before.length ? Math.max.apply(null, before) : (exitBox[b] ? 0 : -1);
    column[b] = exitBox[b] ? most : most + 1;
  });
  count = 1 + Math.max.apply(null, boxes.map(function (b) { return column[b]; }).concat([0]));
  var stacked = [], exits = [];
  for (var c = 0; c < count; c++) { stacked.push(0); exits.push(0); }
  boxes.forEach(function (b) { (exitBox[b] ? exits : stacked)[column[b]] += 1; });
  var width = B[0], boxH = B[1], exitH = B[3], g0 = B[4], g1 = B[5], g2 = B[6], step = width + g0;
  var pitch = boxH + g1;
  function content(start, end) {  // the height of a row: its deepest column's
    var most = -Infinity;
    for (var c = start; c < end; c++) {
      most = Math.max(most, (stacked[c] + exits[c] - 1) * pitch + (exits[c] ? exitH : boxH));
    }
    return most;
  }
  var best = null, bestFit = -1;
  for (var n = 1; n <= count; n++) {  // drawing._fittest over drawing.flow_places's wrapped()
    var height = 0;
    for (var s = 0; s < count; s += n) height += g2 + content(s, Math.min(s + n, count));
    height += g2 / 2;
    var total = g0 + n * step;
    if (view[0] / total < bestFit) break;
    var fit = Math.min(view[0] / total, view[1] / height);
    if (fit > bestFit + 1e-9) { best = n; bestFit = fit; }
    if (n * step > view[0] * 8) break;
  }
  var perRow = best, tops = [], top = g2;
  for (var s2 = 0; s2 < count; s2 += perRow) {
    tops.push(top);
    top += content(s2, Math.min(s2 + perRow, count)) + g2;
  }
  var reach = {};
  for (var j = boxes.length - 1; j >= 0; j--) {
    var b = boxes[j], r = 0;
    outs[b].forEach(function (o) { if (place[o] > place[b]) r = Math.max(r, reach[o]); });
    reach[b] = 1 + r;
  }
  var sorted = boxes.slice().sort(function (a, b) {
    return column[a] - column[b] || (exitBox[a] ? 1 : 0) - (exitBox[b] ? 1 : 0) || reach[b] - reach[a] ||
      place[a] - place[b];
  });
  var x = {}, y = {}, rowOf = {}, atOf = {}, band = {}, used = {};
  sorted.forEach(function (b) {
    var c = column[b], row = Math.floor(c / perRow), at = c % perRow, key = c + (exitBox[b] ? "e" : "b");
    var k = used[key] || 0;
    used[key] = k + 1;
    rowOf[b] = row; atOf[b] = at;
    x[b] = g0 + at * step + width / 2;
    band[b] = exitBox[b] ? stacked[c] + k : k;
    y[b] = tops[row] + band[b] * pitch + (exitBox[b] ? exitH : boxH) / 2;
  });
  return {x: x, y: y, row: rowOf, at: atOf, band: band, tops: tops, box: width, exit: exitH,
          width: g0 + Math.min(perRow, count) * step, height: top - g2 / 2, columns: perRow};
}

function flowTracks(keys, spans, tracks) {  // drawing._tracks: keys in the order given
  var placed = [], result = {};
  for (var t = 0; t < tracks; t++) placed.push([]);
  var order = keys.map(function (k, i) { return [k, i]; });
  order.sort(function (a, b) {
    var sa = spans[a[0]], sb = spans[b[0]];
    return (sa[1] - sa[0]) - (sb[1] - sb[0]) || sa[0] - sb[0] || a[1] - b[1];
  });
  order.forEach(function (item) {
    var lo = spans[item[0]][0], hi = spans[item[0]][1], least = 0, clashes = [];
    placed.forEach(function (taken) {
      clashes.push(taken.filter(function (p) { return p[0] < hi && lo < p[1]; }).length);
    });
    for (var t = 1; t < tracks; t++) if (clashes[t] < clashes[least]) least = t;
    placed[least].push([lo, hi]);
    result[item[0]] = least;
  });
  return result;
}

function flowLine(points) {  // drawing._line: straight pieces as Bezier control points
  var out = [points[0]];
  for (var i = 1; i < points.length; i++) {
    var a = points[i - 1], b = points[i];
    out.push([a[0] + (b[0] - a[0]) / 3, a[1] + (b[1] - a[1]) / 3],
             [a[0] + 2 * (b[0] - a[0]) / 3, a[1] + 2 * (b[1] - a[1]) / 3], b);
  }
  return out;
}

function flowRounded(points) {  // drawing._rounded: [Bezier control points, the arrow's tip]
  var line = [points[0]];
  points.slice(1).forEach(function (p) {
    var last = line[line.length - 1];
    if (p[0] === last[0] && p[1] === last[1]) return;
    var before = line[line.length - 2];
    if (line.length > 1 && ((before[0] === last[0] && last[0] === p[0]) || (before[1] === last[1] && last[1] === p[1]))) {
      line[line.length - 1] = p;
    } else {
      line.push(p);
    }
  });
  var tip = line[line.length - 1], a = line[line.length - 2];
  var length = Math.abs(tip[0] - a[0]) + Math.abs(tip[1] - a[1]);
  line[line.length - 1] = [tip[0] - (tip[0] - a[0]) / length * FLOW_ARROW, tip[1] - (tip[1] - a[1]) / length * FLOW_ARROW];
  var out = [line[0]];
  function straight(a, b) {
    if (a[0] !== b[0] || a[1] !== b[1]) Array.prototype.push.apply(out, flowLine([a, b]).slice(1));
  }
  for (var i = 0; i + 2 < line.length; i++) {
    var p = line[i], q = line[i + 1], s = line[i + 2];
    var into = Math.abs(q[0] - p[0]) + Math.abs(q[1] - p[1]), onto = Math.abs(s[0] - q[0]) + Math.abs(s[1] - q[1]);
    var r = Math.min(FLOW_CORNER, into / 2, onto / 2);
    var din = [(q[0] - p[0]) / into, (q[1] - p[1]) / into], dout = [(s[0] - q[0]) / onto, (s[1] - q[1]) / onto];
    var from = [q[0] - din[0] * r, q[1] - din[1] * r], to = [q[0] + dout[0] * r, q[1] + dout[1] * r];
    straight(out[out.length - 1], from);
    var k = 0.45 * r;
    out.push([from[0] + din[0] * k, from[1] + din[1] * k], [to[0] - dout[0] * k, to[1] - dout[1] * k], to);
  }
  straight(out[out.length - 1], line[line.length - 1]);
  return [out, tip];
}

function flowRoutes(edges, exitBox, places, B) {  // drawing.flow_routes: per edge, [points, tip]
  var x = places.x, y = places.y, row = places.row, at = places.at, band = places.band, tops = places.tops;
  var w = places.box / 2, g1 = B[5], pitch = B[1] + g1, perRow = places.columns;
  function half(n) { return (exitBox[n] ? B[3] : B[1]) / 2; }
  var lowest = {}, firstExit = {};
  Object.keys(x).forEach(function (n) {
    var c = row[n] * perRow + at[n];
    if (exitBox[n]) firstExit[c] = Math.min(c in firstExit ? firstExit[c] : band[n], band[n]);
    else lowest[c] = Math.max(lowest[c] || 0, band[n]);
  });
  var kinds = [], spans = {}, keys = [];
  edges.forEach(function (e) {
    var t = e[0], h = e[1], same = row[t] === row[h];
    if (same && at[h] === at[t] + 1) {
      kinds.push("next");
    } else if (exitBox[h] && same && at[h] === at[t] && band[t] === lowest[row[t] * perRow + at[t]] &&
               band[h] === firstExit[row[h] * perRow + at[h]]) {
      kinds.push("down");
    } else {
      var onto = band[h] === 0 && !exitBox[h], arch = same && onto && at[h] > at[t] + 1 && band[t] === 0;
      kinds.push(arch ? "arch" : "around");
      if (onto || !same) {
        var a = arch ? x[t] + w - FLOW_LAND : x[t] + w + FLOW_RISERS[0], b = onto ? x[h] - w + FLOW_LAND : x[h] - w - FLOW_IN;
        var key = row[h] + "\u0000" + t;
        if (!(key in spans)) { spans[key] = [Infinity, -Infinity]; keys.push(key); }
        spans[key] = [Math.min(spans[key][0], a, b), Math.max(spans[key][1], a, b)];
      }
    }
  });
  var track = flowTracks(keys, spans, FLOW_TRACKS.length);
  var lanes = [], risers = {}, riserKeys = [];  // the height an edge running around turns along
  edges.forEach(function (e, i) {
    var t = e[0], h = e[1];
    if (kinds[i] !== "around") { lanes.push(null); return; }
    if (row[t] !== row[h] || (band[h] === 0 && !exitBox[h])) lanes.push(tops[row[h]] - FLOW_TRACKS[track[row[h] + "\u0000" + t]]);
    else lanes.push(tops[row[h]] + band[h] * pitch - g1 / 2);
    var key = at[t] + "\u0000" + t;
    if (!(key in risers)) { risers[key] = [Infinity, -Infinity]; riserKeys.push(key); }
    risers[key] = [Math.min(risers[key][0], y[t], lanes[i]), Math.max(risers[key][1], y[t], lanes[i])];
  });
  var riser = flowTracks(riserKeys, risers, FLOW_RISERS.length);
  return edges.map(function (e, i) {
    var t = e[0], h = e[1], tx = x[t], ty = y[t], hx = x[h], hy = y[h], kind = kinds[i];
    if (kind === "next") {
      var left = hx - w;
      return [[[tx + w, ty], [tx + w + 7, ty], [left - 13, hy], [left - FLOW_ARROW, hy]], [left, hy]];
    }
    if (kind === "down") {
      return [flowLine([[tx, ty + half(t)], [hx, hy - half(h) - FLOW_ARROW]]), [hx, hy - half(h)]];
    }
    if (kind === "arch") {
      var top = tops[row[t]], rise = top - FLOW_TRACKS[track[row[t] + "\u0000" + t]];
      return flowRounded([[tx + w - FLOW_LAND, top], [tx + w - FLOW_LAND, rise], [hx - w + FLOW_LAND, rise],
                          [hx - w + FLOW_LAND, top]]);
    }
    var lane = lanes[i], out = tx + w + FLOW_RISERS[riser[at[t] + "\u0000" + t]];
    if (band[h] === 0 && !exitBox[h]) {
      return flowRounded([[tx + w, ty], [out, ty], [out, lane], [hx - w + FLOW_LAND, lane], [hx - w + FLOW_LAND, hy - half(h)]]);
    }
    return flowRounded([[tx + w, ty], [out, ty], [out, lane], [hx - w - FLOW_IN, lane], [hx - w - FLOW_IN, hy], [hx - w, hy]]);
  });
}

function flowFitTexts(texts, room, size) {  // labels wider than room (a box less its pads) set smaller
  texts.forEach(function (t) { t.setAttribute("font-size", size); });
  var long = texts.map(function (t) { return t.getComputedTextLength(); });  // one layout for all
  texts.forEach(function (t, i) { if (long[i] > room) t.setAttribute("font-size", size * room / long[i]); });
}
