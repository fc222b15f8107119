"use strict";
// Draws the timeline from the page's data and makes the process list
// filterable. It builds the DOM with textContent and attributes only:
// every name on the page comes from the audited program.
(function () {
  var data = JSON.parse(document.getElementById("data").textContent);
  var svgNS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var e = document.createElementNS(svgNS, name);
    for (var k in attrs) { e.setAttribute(k, String(attrs[k])); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  var lanes = data.lanes || [];
  var marks = data.marks || [];
  var laneOf = {}, groups = [];
  lanes.forEach(function (l, i) { laneOf[l.pid] = i; });
  var left = 260, width = 1100, rowH = 22, top = 24;
  var span = Math.max(data.span, 1);
  var svg = el("svg", { viewBox: "0 0 " + width + " " + (top + rowH * lanes.length + 8), role: "img" });
  svg.appendChild(el("title", {}, "timeline: one row per process, one dot per event"));
  svg.appendChild(el("text", { x: left, y: 14 }, "0"));
  svg.appendChild(el("text", { x: width - 8, y: 14, "text-anchor": "end" }, "+" + (span / 1000).toFixed(2) + " s"));
  lanes.forEach(function (l, i) {
    var y = top + rowH * i;
    var g = el("g", { "class": "lane", "data-pid": l.pid });
    g.appendChild(el("line", { "class": "axis", x1: left, x2: width - 8, y1: y + rowH / 2, y2: y + rowH / 2 }));
    var x = 6 + 12 * Math.min(l.depth, 10);
    g.appendChild(el("text", { x: x, y: y + rowH / 2 + 4, "class": "lane-label" }, l.label));
    svg.appendChild(g);
    groups.push(g);
  });
  marks.forEach(function (m) {
    var i = laneOf[m.pid];
    if (i === undefined) { return; }
    var x = left + (width - 8 - left) * (m.t / span);
    var c = el("circle", { "class": "mark " + m.k + " " + (m.v || ""), cx: x.toFixed(1), cy: top + rowH * i + rowH / 2, r: 4 });
    c.appendChild(el("title", {}, "+" + m.t.toFixed(1) + " ms  " + m.k + (m.v ? " " + m.v : "") + "  " + m.l));
    groups[i].appendChild(c);
  });
  document.getElementById("chart").appendChild(svg);

  var procs = Array.prototype.slice.call(document.querySelectorAll(".proc"));
  var status = document.getElementById("status");
  function show() {
    var q = document.getElementById("filter").value.toLowerCase();
    var n = 0;
    procs.forEach(function (p) {
      var hit = q === "" || p.textContent.toLowerCase().indexOf(q) >= 0;
      p.classList.toggle("hidden", !hit);
      if (hit) { n++; }
    });
    status.textContent = n + " of " + procs.length + " processes shown; " + marks.length + " events on the timeline";
  }
  document.getElementById("filter").addEventListener("input", show);
  show();
  document.documentElement.setAttribute("data-rendered", "1");
})();
