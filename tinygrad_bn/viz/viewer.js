// tinygrad_bn graph viewer: pan and zoom, search, backward step by step, node panels,
// boxes that fold and unfold. Plain JavaScript; everything it shows was computed in
// Python when the page was written (the JSON in #tgbn-data), so it needs no network.
(function () {
  "use strict";

  const root = document.getElementById("tgbn");
  const data = JSON.parse(document.getElementById("tgbn-data").textContent);
  const $ = (sel) => root.querySelector(sel);

  const nodeById = new Map(data.nodes.map((n) => [n.id, n]));
  const clusterById = new Map(data.clusters.map((c) => [c.id, c]));
  // What a clicked SVG node stands for: a node, or a box folded when the page was written.
  const itemByElement = new Map();
  for (const c of data.clusters) if (c.folded) itemByElement.set(c.el, { cluster: c });
  for (const n of data.nodes) if (n.drawn && n.el === n.id) itemByElement.set(n.id, { node: n });

  const state = {
    view: data.view, tick: 0, selected: null, folded: new Set(), timer: null, marked: [],
  };

  // ------------------------------------------------------------ the two SVG views

  const views = {};
  for (const box of root.querySelectorAll(".tg-svg")) views[box.dataset.view] = indexView(box);

  function titleOf(g) {
    const t = g.querySelector(":scope > title");
    return t ? t.textContent : "";
  }

  function indexView(box) {
    const svg = box.querySelector("svg");
    const v = { box, svg, graph: svg.querySelector("g.graph"), nodes: new Map(),
                edges: new Map(), clusters: new Map(), marks: new Map() };
    for (const g of svg.querySelectorAll("g.node")) v.nodes.set(titleOf(g), g);
    for (const g of svg.querySelectorAll("g.cluster")) v.clusters.set(titleOf(g), g);
    for (const g of svg.querySelectorAll("g.edge")) {
      const key = titleOf(g);  // "tail->head"; parallel edges share it
      if (!v.edges.has(key)) v.edges.set(key, []);
      v.edges.get(key).push(g);
    }
    const vb = svg.viewBox.baseVal;
    v.full = [vb.x, vb.y, vb.width, vb.height];
    v.vb = v.full.slice();
    return v;
  }

  // The element standing for node `n` in view `v`: its own, or the outermost box folded
  // in the page around it.
  function elementOf(v, n) {
    for (const id of n.boxes) if (state.folded.has(id)) return v.clusters.get(id);
    return v.nodes.get(n.el);
  }

  function edgesBetween(v, from, to) {
    // backward view: edges run from an op to its inputs; forward view: the other way
    const key = v === views.backward ? from + "->" + to : to + "->" + from;
    return v.edges.get(key) || [];
  }

  // ------------------------------------------------------------ pan and zoom

  function applyViewBox(v) { v.svg.setAttribute("viewBox", v.vb.join(" ")); }

  function toUser(v, x, y) {
    const p = v.svg.createSVGPoint();
    p.x = x; p.y = y;
    return p.matrixTransform(v.svg.getScreenCTM().inverse());
  }

  function zoomAt(v, clientX, clientY, factor) {
    const p = toUser(v, clientX, clientY);
    const [x, y, w, h] = v.vb;
    const width = Math.min(Math.max(w * factor, v.full[2] * 0.01), v.full[2] * 4);
    const f = width / w;
    v.vb = [p.x - (p.x - x) * f, p.y - (p.y - y) * f, w * f, h * f];
    applyViewBox(v);
  }

  function zoomCentre(factor) {
    const r = current().box.getBoundingClientRect();
    zoomAt(current(), r.left + r.width / 2, r.top + r.height / 2, factor);
  }

  function fit(v) { v.vb = v.full.slice(); applyViewBox(v); }

  // Pan so that `el` is in view: centred, zoomed in a little if the whole graph shows.
  function reveal(el, force) {
    const v = current();
    const box = v.box.getBoundingClientRect();
    const r = el.getBoundingClientRect();
    const inside = r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom;
    if (inside && !force) return;
    const c = toUser(v, r.left + r.width / 2, r.top + r.height / 2);
    let [, , w, h] = v.vb;
    if (force && w >= v.full[2] * 0.99) {
      const f = Math.min(1, Math.max(600 / w, 0.25));
      w *= f; h *= f;
    }
    v.vb = [c.x - w / 2, c.y - h / 2, w, h];
    applyViewBox(v);
  }

  function current() { return views[state.view]; }

  for (const v of Object.values(views)) {
    v.svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      zoomAt(v, e.clientX, e.clientY, Math.exp(e.deltaY * 0.0015));
    }, { passive: false });
    let drag = null;
    v.svg.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, vb: v.vb.slice(), moved: false };
    });
    v.svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      if (!drag.moved) { drag.moved = true; v.svg.setPointerCapture(e.pointerId); v.svg.classList.add("dragging"); }
      const scale = v.svg.getScreenCTM().a;
      v.vb = [drag.vb[0] - dx / scale, drag.vb[1] - dy / scale, drag.vb[2], drag.vb[3]];
      applyViewBox(v);
    });
    const stop = () => {
      if (drag && drag.moved) v.justDragged = true;
      drag = null;
      v.svg.classList.remove("dragging");
    };
    v.svg.addEventListener("pointerup", stop);
    v.svg.addEventListener("pointercancel", stop);
    v.svg.addEventListener("click", (e) => onClick(v, e));
  }

  // ------------------------------------------------------------ clicks: nodes and boxes

  function onClick(v, e) {
    if (v.justDragged) { v.justDragged = false; return; }
    const cluster = e.target.closest("g.cluster");
    if (cluster) {
      const id = titleOf(cluster);
      if (clusterById.has(id) && (state.folded.has(id) || e.target.closest("text"))) {
        toggleFold(id);
        return;
      }
    }
    const g = e.target.closest("g.node");
    if (!g) return;
    const item = itemByElement.get(titleOf(g));
    if (item && item.node) select(item.node.id, false);
    else if (item) showCluster(item.cluster);
  }

  function toggleFold(id) {
    const folding = !state.folded.has(id);
    if (folding) state.folded.add(id); else state.folded.delete(id);
    for (const v of Object.values(views)) {
      const g = v.clusters.get(id);
      if (!g) continue;
      if (folding) {
        // Drawn last, the box covers what it holds, edges into it included.
        g.tgPlace = document.createComment("folded box");
        g.parentNode.insertBefore(g.tgPlace, g);
        v.graph.appendChild(g);
        g.classList.add("tg-folded");
        const b = g.getBBox();
        const c = clusterById.get(id);
        const text = document.createElementNS("http://www.w3.org/2000/svg", "text");
        text.setAttribute("class", "tg-fold-label");
        text.setAttribute("x", b.x + b.width / 2);
        text.setAttribute("y", b.y + b.height / 2);
        for (const [i, line] of [c.title, c.ops + " ops folded · click to unfold"].entries()) {
          const span = document.createElementNS("http://www.w3.org/2000/svg", "tspan");
          span.setAttribute("x", b.x + b.width / 2);
          span.setAttribute("dy", i ? "1.3em" : "0");
          span.textContent = line;
          text.appendChild(span);
        }
        g.appendChild(text);
      } else {
        g.tgPlace.parentNode.insertBefore(g, g.tgPlace);
        g.tgPlace.remove();
        g.classList.remove("tg-folded");
        const label = g.querySelector(".tg-fold-label");
        if (label) label.remove();
      }
    }
    update(false);
  }

  // ------------------------------------------------------------ stepping through backward

  const ticks = data.ticks;
  const slider = $(".tg-slider");
  const playButton = $('[data-act="play"]');

  function go(tick) {
    state.tick = Math.max(0, Math.min(ticks.length, tick));
    state.selected = null;
    update(true);
  }

  function play() {
    if (state.timer) { stopPlaying(); return; }
    if (state.tick >= ticks.length) go(0);
    playButton.textContent = "\u275A\u275A";
    state.timer = setInterval(() => {
      if (state.tick >= ticks.length) stopPlaying(); else go(state.tick + 1);
    }, 650);
  }

  function stopPlaying() {
    clearInterval(state.timer);
    state.timer = null;
    playButton.innerHTML = "&#x25B6;";
  }

  function mark(el, cls) {
    if (!el) return;
    el.classList.add(cls);
    state.marked.push([el, cls]);
  }

  // Put the marks of the current tick (and the search and selection) on both views,
  // then fill the panel.
  function update(follow) {
    for (const [el, cls] of state.marked) el.classList.remove(cls);
    state.marked = [];
    const now = state.tick > 0 ? ticks[state.tick - 1] : [];
    const currentIds = now.filter((id) => id !== null);
    const stepOf = new Map(currentIds.map((id) => [nodeById.get(id).side, nodeById.get(id).step]));
    for (const v of Object.values(views)) {
      for (const n of data.nodes) {
        if (!n.drawn || n.step === null || !stepOf.has(n.side)) continue;
        if (n.step < stepOf.get(n.side)) mark(elementOf(v, n), "tg-done");
      }
      for (const id of currentIds) {
        const n = nodeById.get(id);
        const el = elementOf(v, n);
        for (const c of n.consumers) {
          for (const e of edgesBetween(v, nodeById.get(c).el, n.el)) mark(e, "tg-arriving");
        }
        for (const s of n.sends || []) {
          if (!s.needs) continue;
          const target = nodeById.get(s.to);
          for (const e of edgesBetween(v, n.el, target.el)) mark(e, "tg-sending");
          if (target.drawn) mark(elementOf(v, target), "tg-receiving");
        }
        mark(el, "tg-current");
      }
      for (const id of state.matches || []) mark(elementOf(v, nodeById.get(id)), "tg-match");
      if (state.selected) mark(elementOf(v, nodeById.get(state.selected)), "tg-selected");
    }
    slider.value = String(state.tick);
    $(".tg-tick").textContent = state.tick + " / " + ticks.length;
    root.dataset.tick = String(state.tick);
    root.dataset.current = currentIds.join(" ");
    root.dataset.selected = state.selected || "";
    if (state.selected) showNode(nodeById.get(state.selected));
    else if (currentIds.length) showStep(currentIds);
    else showIntro();
    if (follow && currentIds.length) {
      const el = elementOf(current(), nodeById.get(currentIds[0]));
      if (el) reveal(el, false);
    }
  }

  function select(id, centre) {
    state.selected = id;
    update(false);
    const el = elementOf(current(), nodeById.get(id));
    if (centre && el) reveal(el, true);
  }

  // ------------------------------------------------------------ the panel

  const info = $(".tg-info");

  function esc(s) {
    return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  }

  function num(x) {
    if (x === null || x === undefined) return "–";
    if (x === 0) return "0";
    const a = Math.abs(x);
    return a >= 1e4 || a < 1e-3 ? x.toExponential(2) : String(Number(x.toPrecision(4)));
  }

  function shape(s) { return s.length ? "(" + s.join(", ") + (s.length === 1 ? ",)" : ")") : "scalar"; }

  function bytes(n) { return n >= 1e6 ? (n / 1e6).toFixed(2) + " MB" : n >= 1e3 ? (n / 1e3).toFixed(1) + " kB" : n + " B"; }

  function label(n) {
    if (n.op) return n.op + (n.name ? " → " + n.name : "");
    return n.name || n.kind;
  }

  function histogram(h) {
    if (!h) return "";
    const w = 180, hgt = 36, max = Math.max(...h.counts, 1), bw = w / h.counts.length;
    const bars = h.counts.map((c, i) => {
      const bh = c ? Math.max(1, (c / max) * hgt) : 0;
      return `<rect x="${(i * bw).toFixed(1)}" y="${(hgt - bh).toFixed(1)}" width="${Math.max(bw - 1, 1).toFixed(1)}" height="${bh.toFixed(1)}"></rect>`;
    }).join("");
    return `<svg class="tg-hist" width="${w}" height="${hgt + 11}" role="img" aria-label="histogram">${bars}` +
      `<text x="0" y="${hgt + 10}">${num(h.lo)}</text><text x="${w}" y="${hgt + 10}" text-anchor="end">${num(h.hi)}</text></svg>`;
  }

  function stats(s, what) {
    if (!s) return `<p class="tg-note">no ${what}</p>`;
    const rows = [["shape", shape(s.shape) + " " + s.dtype]];
    if (s.value !== undefined) rows.push(["value", num(s.value)]);
    if (s.norm !== undefined && s.size > 1) {
      rows.push(["norm ‖·‖₂", num(s.norm)], ["min … max", num(s.min) + " … " + num(s.max)],
                ["mean ± std", num(s.mean) + " ± " + num(s.std)]);
    }
    if (s.zeros) rows.push(["zeros", s.zeros + " of " + s.size]);
    if (s.nonfinite) rows.push(["nan / inf", s.nonfinite + " of " + s.size]);
    return "<table>" + rows.map(([k, v]) => `<tr><th>${k}</th><td>${esc(v)}</td></tr>`).join("") +
      "</table>" + histogram(s.hist);
  }

  function link(n) {
    if (!n.drawn) return "the constant " + esc(num(n.value && n.value.value));  // written into the op's label
    return `<a data-node="${esc(n.id)}">${esc(label(n))}</a>`;
  }

  function sends(n) {
    if (!n.sends || !n.sends.length) return "";
    const parts = n.sends.map((s) => {
      const t = nodeById.get(s.to);
      const which = (s.letter ? s.letter + " = " : "") + "input " + s.operand + ": ";
      if (!s.needs) return `<div class="tg-send">${esc(which)}${link(t)} <span class="tg-note">needs no gradient</span></div>`;
      const body = s.grad ? stats(s.grad, "gradient") :
        '<p class="tg-note">not recorded (backward ran without retain_graph=True, and this input has other uses)</p>';
      return `<div class="tg-send">${esc(which)}${link(t)}${body}</div>`;
    });
    return "<h3>sends to each input</h3>" + parts.join("");
  }

  function zeroNote(n) {
    return n.zero ? `<p class="tg-zero">≈0 by structure: the ${esc(n.zero)} after it cancels it; ` +
      "the tiny value left is rounding, not a vanishing gradient</p>" : "";
  }

  function header(n) {
    const bits = [n.kind === "fused" ? "fused kernel, hand-derived backward" : n.kind];
    if (n.step !== null) bits.push("backward step #" + n.step);
    if (n.root) bits.push("root");
    return `<h2>${esc(label(n))}</h2><p class="tg-sub">${esc(bits.join(" · "))}` +
      (n.formula ? `<br>${esc(n.formula)}` : "") +
      (n.path ? `<br>in ${esc(n.path)}` : "") + "</p>";
  }

  function showNode(n) {
    let html = header(n);
    html += "<h3>value</h3>" + stats(n.value, "value");
    html += `<h3>${n.op ? "gradient received" : "gradient (.grad)"}</h3>` + stats(n.grad, "gradient yet") + zeroNote(n);
    html += sends(n);
    if (n.saved) {
      html += "<h3>saved for backward</h3>";
      if (n.saved.released) html += '<p class="tg-note">released by backward()</p>';
      else if (!n.saved.items.length) html += '<p class="tg-note">nothing</p>';
      else {
        html += "<table>" + n.saved.items.map((s) => `<tr><td>${shape(s.shape)} ${esc(s.dtype)}</td><td>${bytes(s.bytes)}</td></tr>`).join("") +
          `<tr><th>total</th><td>${bytes(n.saved.bytes)}</td></tr></table>`;
      }
    }
    info.innerHTML = html;
  }

  function showStep(ids) {
    let html = `<p class="tg-sub">step ${state.tick} of ${ticks.length}: backward() runs</p>`;
    for (const id of ids) {
      const n = nodeById.get(id);
      const side = data.sides[n.side];
      html += '<div class="tg-side">' + (side ? `<p class="tg-sub"><b>${esc(side)}</b></p>` : "") + header(n);
      html += "<h3>gradient received</h3>" + stats(n.grad, "gradient reached it") + sends(n) + "</div>";
    }
    info.innerHTML = html;
  }

  function showCluster(c) {
    const inside = data.nodes.filter((n) => n.el === c.el && n.step !== null).map((n) => n.step);
    const range = inside.length ? ` · backward steps #${Math.min(...inside)}–${Math.max(...inside)}` : "";
    info.innerHTML = `<h2>${esc(c.title)}</h2><p class="tg-sub">${c.ops} ops folded when the page was written${range}.` +
      " Pass collapse=None and max_nodes=None to to_html to draw every op.</p>";
  }

  function showIntro() {
    info.innerHTML = "<h2>Backward, step by step</h2>" +
      `<p>Press <b>&#x25B6;</b> or <b>&#x2192;</b> to watch backward() run the ${ticks.length} steps in its own order: ` +
      "the current op is outlined, the gradient arrives on the animated edge, and this panel shows what it received " +
      "and what it sends to each input.</p><p>Click any node for its values, gradient and saved tensors; click a box's " +
      "title to fold it. Drag to pan, scroll to zoom, <b>f</b> to fit.</p>" +
      (data.hasGrads ? "" : '<p class="tg-note">No backward() had run when this page was written: there are no gradients to show.</p>');
  }

  info.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-node]");
    if (a) select(a.dataset.node, true);
  });

  // ------------------------------------------------------------ search

  const search = $(".tg-search");
  const results = $(".tg-results");

  function runSearch() {
    const q = search.value.trim().toLowerCase();
    if (!q) { state.matches = []; results.hidden = true; update(false); return; }
    const found = data.nodes.filter((n) => n.drawn &&
      [n.name, n.op, n.path, n.kind].join(" ").toLowerCase().includes(q));
    state.matches = found.map((n) => n.id);
    results.hidden = false;
    results.innerHTML = `<div class="tg-count">${found.length} match${found.length === 1 ? "" : "es"} for “${esc(q)}”</div>` +
      found.slice(0, 40).map((n) => `<button type="button" data-node="${esc(n.id)}">${esc(label(n))}` +
        (n.path ? ` <span class="tg-note">${esc(n.path)}</span>` : "") + "</button>").join("");
    update(false);
  }

  search.addEventListener("input", runSearch);
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && state.matches && state.matches.length) select(state.matches[0], true);
    if (e.key === "Escape") { search.value = ""; runSearch(); }
  });
  results.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-node]");
    if (b) select(b.dataset.node, true);
  });

  // ------------------------------------------------------------ controls

  function showView(name) {
    state.view = name;
    for (const [n, v] of Object.entries(views)) v.box.classList.toggle("off", n !== name);
    for (const b of root.querySelectorAll("[data-view]")) {
      if (b.tagName === "BUTTON") b.classList.toggle("on", b.dataset.view === name);
    }
    root.dataset.view = name;
  }

  const actions = {
    first: () => go(0), back: () => go(state.tick - 1), step: () => go(state.tick + 1), play,
    fit: () => fit(current()), "zoom-in": () => zoomCentre(1 / 1.25), "zoom-out": () => zoomCentre(1.25),
  };
  for (const b of root.querySelectorAll("button[data-act]")) {
    b.addEventListener("click", () => {
      if (b.dataset.act !== "play") stopPlaying();
      actions[b.dataset.act]();
    });
  }
  for (const b of root.querySelectorAll("button[data-view]")) b.addEventListener("click", () => showView(b.dataset.view));
  slider.addEventListener("input", () => { stopPlaying(); go(Number(slider.value)); });

  document.addEventListener("keydown", (e) => {
    if (e.target === search || e.altKey || e.ctrlKey || e.metaKey) return;
    const key = { ArrowRight: "step", ArrowLeft: "back", " ": "play", Home: "first", f: "fit", "+": "zoom-in", "=": "zoom-in", "-": "zoom-out" }[e.key];
    if (!key) return;
    e.preventDefault();
    if (key !== "play") stopPlaying();
    actions[key]();
  });

  for (const name of Object.keys(views)) {
    views[name].box.hidden = false;
    fit(views[name]);
  }
  showView(state.view);
  update(false);
  root.dataset.ready = "1";
})();
