// adiff trajectory player: the browser half of components/player.py (read that module's docstring for the payload).
// Gradio runs this once when the gr.HTML component mounts, with `element`, `props` and `watch` in scope.
// Everything after the payload arrives happens here: decoding, drawing on one canvas, the frame slider, Play and
// Pause. Nothing here talks to the server.
(() => {
  const root = element.querySelector(".adiff-player") || element;
  if (root.__adiff) return; // mounted already
  const S = {
    runId: null, stat: null, kind: "points", K: 0, k: 0, live: false, playing: false, fps: 20,
    frames: {}, scale: {}, t: [], sigma: [], a: [], labels: [], raf: 0, drawn: 0, lastDrawMs: 0, boxes: [], rules: [], sched: null,
  };
  root.__adiff = S;
  root.innerHTML =
    '<div class="adiff-player-head"><span class="adiff-title"></span><span class="adiff-frame-label"></span></div>' +
    '<div class="adiff-controls">' +
    '<button type="button" class="adiff-play" disabled>\u25B6 Play</button>' +
    '<input type="range" class="adiff-frame" min="0" max="0" value="0" step="1" aria-label="frame" disabled>' +
    '<select class="adiff-speed" aria-label="playback speed"><option value="8">slow</option>' +
    '<option value="20" selected>20 frames/s</option><option value="40">fast</option></select></div>' +
    '<canvas class="adiff-canvas" role="img"></canvas>' +
    '<div class="adiff-readout" aria-live="polite"></div><div class="adiff-legend"></div><ul class="adiff-notes"></ul>';
  const $ = (sel) => root.querySelector(sel);
  const canvas = $(".adiff-canvas"), fg = canvas.getContext("2d");
  const bg = document.createElement("canvas"); // axes, titles and the schedule curve: drawn once per layout
  let ctx = fg; // what the drawing helpers draw on (bg while the background is drawn)
  const playBtn = $(".adiff-play"), slider = $(".adiff-frame"), speed = $(".adiff-speed");
  const FONT = "Arial, Helvetica, sans-serif";

  // ------------------------------------------------------------------ decoding
  function bytes(s) {
    const bin = atob(s), u = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
    return u;
  }
  function frameViews(spec, s, K) {
    const u = bytes(s);
    const all = spec.type === "points" ? new Int16Array(u.buffer) : spec.type === "field" ? new Int8Array(u.buffer) : u;
    const n = all.length / K, out = [];
    for (let k = 0; k < K; k++) out.push(all.subarray(k * n, (k + 1) * n));
    return out;
  }

  // ------------------------------------------------------------------ layout
  // The payload's rows of panels become lines on the canvas: all rows in one line, side by side with a wider gap and a
  // rule between them, when every panel still gets SIDE_BY_SIDE px (compare: A beside B); one panel per line when a
  // row's panels would get less than NARROW px each (a phone); else the rows as they are.
  const NARROW = 230, SIDE_BY_SIDE = 180, GROUP_GAP = 34, TITLE_LINES = 3;
  function arrange(W) {
    const rows = S.stat.panels, maxCols = Math.max(...rows.map((r) => r.length)), n = rows.flat().length;
    if (rows.length > 1 && W >= SIDE_BY_SIDE * n + GROUP_GAP * (rows.length - 1)) return [rows];
    if (W < NARROW * maxCols) return rows.flat().map((p) => [[p]]);
    return rows.map((r) => [r]);
  }
  function layout(W) {
    const lines = arrange(W), gap = 14, axisL = 36, axisB = 24, boxes = [], rules = [];
    const widthOf = (line, outer) => {
      const k = line.flat().length;
      return k * outer + (k - line.length) * gap + (line.length - 1) * GROUP_GAP;
    };
    const outer = Math.min(560, ...lines.map((line) => (W - 4 - widthOf(line, 0)) / line.flat().length));
    const side = Math.max(60, outer - axisL - 8);
    const titleLines = Math.max(1, ...lines.flat(2).map((p) => wrap(p.title, side + 30, 15).length));
    const titleH = 18 * titleLines + 6;
    let y = 2;
    for (const line of lines) {
      let x = (W - widthOf(line, outer)) / 2;
      line.forEach((group, g) => {
        if (g > 0) { rules.push({ x: x + GROUP_GAP / 2 - gap / 2, y0: y + 4, y1: y + titleH + side }); x += GROUP_GAP - gap; }
        for (const p of group) { boxes.push({ p, x: x + axisL, y: y + titleH, s: side }); x += outer + gap; }
      });
      y += titleH + side + axisB + gap;
    }
    let sched = null;
    if (S.stat.schedule) { sched = { x: 56, y: y + 24, w: Math.max(80, W - 90), h: 64 }; y += 24 + 64 + 24; }
    return { boxes, rules, sched, H: Math.ceil(y) };
  }
  function resize() {
    if (!S.stat) return drawEmpty();
    const W = Math.floor(root.clientWidth);
    if (W <= 0) return;
    const L = layout(W), dpr = window.devicePixelRatio || 1;
    S.boxes = L.boxes; S.rules = L.rules; S.sched = L.sched; S.W = W;
    const pw = Math.round(W * dpr), ph = Math.round(L.H * dpr);
    if (canvas.width !== pw || canvas.height !== ph) { // reallocating a canvas is costly: only when its size changes
      canvas.width = bg.width = pw; canvas.height = bg.height = ph;
      canvas.style.width = W + "px"; canvas.style.height = L.H + "px";
    }
    S.dpr = dpr;
    ctx = bg.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, W, L.H);
    background();
    ctx = fg;
    draw();
  }
  function background() {
    const lo = S.stat.range[0], hi = S.stat.range[1];
    for (const b of S.boxes) {
      const lines = wrap(b.p.title, b.s + 30, 15); // bottom-aligned: the last line sits just above the panel
      lines.forEach((line, i) => text(line, b.x + b.s / 2, b.y - 6 - 18 * (lines.length - 1 - i), 15, b.p.color || "#333", "center"));
      if (S.kind !== "images") axes(b, lo, hi);
    }
    ctx.strokeStyle = "#cccccc"; ctx.lineWidth = 1; ctx.beginPath();
    for (const r of S.rules) { ctx.moveTo(r.x, r.y0); ctx.lineTo(r.x, r.y1); }
    ctx.stroke();
    if (S.sched) scheduleCurves(S.sched);
  }

  // ------------------------------------------------------------------ drawing
  function text(str, x, y, size, color, align, bold) {
    ctx.font = (bold ? "bold " : "") + size + "px " + FONT;
    ctx.fillStyle = color; ctx.textAlign = align || "left"; ctx.fillText(str, x, y);
  }
  function wrap(str, width, size) {
    ctx.font = size + "px " + FONT;
    const words = str.split(" "), lines = [""];
    for (const w of words) {
      const cand = lines[lines.length - 1] ? lines[lines.length - 1] + " " + w : w;
      if (ctx.measureText(cand).width > width && lines[lines.length - 1]) lines.push(w); else lines[lines.length - 1] = cand;
    }
    return lines.slice(0, TITLE_LINES);
  }
  function axes(b, lo, hi) {
    ctx.fillStyle = "#fff"; ctx.fillRect(b.x, b.y, b.s, b.s);
    ctx.strokeStyle = "#e6e6e6"; ctx.lineWidth = 1; ctx.beginPath();
    const sc = b.s / (hi - lo);
    for (let v = Math.ceil(lo); v <= Math.floor(hi); v++) {
      const px = b.x + (v - lo) * sc, py = b.y + b.s - (v - lo) * sc;
      ctx.moveTo(px, b.y); ctx.lineTo(px, b.y + b.s); ctx.moveTo(b.x, py); ctx.lineTo(b.x + b.s, py);
      text(String(v), px, b.y + b.s + 16, 12, "#555", "center");
      text(String(v), b.x - 6, py + 4, 12, "#555", "right");
    }
    ctx.stroke(); ctx.strokeStyle = "#bbb"; ctx.strokeRect(b.x, b.y, b.s, b.s);
  }
  function points(b, lo, hi, q, spec) {
    const sc = b.s / (hi - lo), r = spec.size || 2.6, n = q.length / 2;
    ctx.fillStyle = spec.color; ctx.globalAlpha = spec.opacity || 0.75; ctx.beginPath();
    for (let i = 0; i < n; i++) {
      const qx = q[2 * i], qy = q[2 * i + 1];
      if (qx === -32768 || qy === -32768) continue;
      const px = b.x + (qx / 1000 - lo) * sc, py = b.y + b.s - (qy / 1000 - lo) * sc;
      ctx.moveTo(px + r, py); ctx.arc(px, py, r, 0, 6.2832);
    }
    ctx.fill(); ctx.globalAlpha = 1;
  }
  function field(b, lo, hi, q, spec) {
    const n = spec.n, sc = b.s / (hi - lo), step = (spec.hi - spec.lo) / (n - 1), spacing = step * sc;
    ctx.strokeStyle = spec.color; ctx.fillStyle = spec.color; ctx.lineWidth = 1.6; ctx.beginPath();
    const heads = [];
    for (let j = 0; j < n * n; j++) {
      const u = q[2 * j] / 127, v = q[2 * j + 1] / 127, m = Math.hypot(u, v);
      if (!(m > 0)) continue;
      const len = 0.9 * spacing * Math.sqrt(Math.min(1, m)), dx = (u / m) * len, dy = (-v / m) * len;
      const x0 = b.x + (spec.lo + (j % n) * step - lo) * sc, y0 = b.y + b.s - (spec.lo + Math.floor(j / n) * step - lo) * sc;
      ctx.moveTo(x0, y0); ctx.lineTo(x0 + dx, y0 + dy); heads.push([x0 + dx, y0 + dy, dx / len, dy / len, len]);
    }
    ctx.stroke(); ctx.beginPath();
    for (const [hx, hy, ux, uy, len] of heads) {
      const h = Math.min(6, 0.4 * len + 2);
      ctx.moveTo(hx, hy); ctx.lineTo(hx - h * ux - 0.5 * h * uy, hy - h * uy + 0.5 * h * ux);
      ctx.lineTo(hx - h * ux + 0.5 * h * uy, hy - h * uy - 0.5 * h * ux); ctx.closePath();
    }
    ctx.fill();
  }
  function paths(b, lo, hi, spec) {
    const src = S.frames[spec.of]; if (!src) return;
    const sc = b.s / (hi - lo), upto = Math.min(S.k, src.length - 1);
    ctx.strokeStyle = spec.color; ctx.lineWidth = 2; ctx.beginPath();
    for (let p = 0; p < spec.count; p++) {
      for (let j = 0; j <= upto; j++) {
        const qx = src[j][2 * p], qy = src[j][2 * p + 1];
        const px = b.x + (qx / 1000 - lo) * sc, py = b.y + b.s - (qy / 1000 - lo) * sc;
        if (j === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      }
    }
    ctx.stroke();
    ctx.fillStyle = spec.head || "#0072B2"; ctx.beginPath();
    for (let p = 0; p < spec.count; p++) {
      const qx = src[upto][2 * p], qy = src[upto][2 * p + 1];
      const px = b.x + (qx / 1000 - lo) * sc, py = b.y + b.s - (qy / 1000 - lo) * sc;
      ctx.moveTo(px + 6, py); ctx.arc(px, py, 6, 0, 6.2832);
    }
    ctx.fill(); ctx.stroke();
  }
  const LUTS = {};
  function lut(name) {
    if (LUTS[name]) return LUTS[name];
    const L = new Uint8ClampedArray(256 * 4);
    for (let i = 0; i < 255; i++) {
      const f = i / 254;
      let r, g, bl;
      if (name === "rdbu") { // red (negative) - white - blue (positive)
        if (f < 0.5) { const a = f / 0.5; r = 178 + (255 - 178) * a; g = 24 + (255 - 24) * a; bl = 43 + (255 - 43) * a; }
        else { const a = (f - 0.5) / 0.5; r = 255 - (255 - 33) * a; g = 255 - (255 - 102) * a; bl = 255 - (255 - 172) * a; }
      } else { r = g = bl = 255 * (1 - f); } // -1 (background) white, +1 (ink) black
      L.set([r, g, bl, 255], 4 * i);
    }
    L.set([255, 255, 255, 0], 4 * 255); // the gap between tiles
    return (LUTS[name] = L);
  }
  function image(b, q, spec) {
    const off = S.off || (S.off = document.createElement("canvas"));
    off.width = spec.w; off.height = spec.h;
    const octx = off.getContext("2d"), img = octx.createImageData(spec.w, spec.h), L = lut(spec.cmap);
    for (let i = 0; i < q.length; i++) img.data.set(L.subarray(4 * q[i], 4 * q[i] + 4), 4 * i);
    octx.putImageData(img, 0, 0);
    const f = Math.min(b.s / spec.w, b.s / spec.h), w = spec.w * f, h = spec.h * f;
    ctx.imageSmoothingEnabled = false; ctx.drawImage(off, b.x + (b.s - w) / 2, b.y + (b.s - h) / 2, w, h);
    ctx.strokeStyle = "#bbb"; ctx.strokeRect(b.x + (b.s - w) / 2, b.y + (b.s - h) / 2, w, h);
  }
  const fmtT = (v) => (Number.isInteger(v) ? String(v) : Number(v).toFixed(3).replace(/0+$/, "").replace(/\.$/, ""));
  function scheduleCurves(box) {
    const sc = S.stat.schedule, T = sc.T, x = (t) => box.x + (t / T) * box.w, y = (v) => box.y + box.h - v * box.h;
    ctx.fillStyle = "#fff"; ctx.fillRect(box.x, box.y, box.w, box.h);
    ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1; ctx.strokeRect(box.x, box.y, box.w, box.h);
    for (const [key, dash] of [["abar", []], ["sigma", [7, 5]]]) {
      ctx.setLineDash(dash); ctx.strokeStyle = sc.color; ctx.lineWidth = 2.5; ctx.beginPath();
      sc.t.forEach((t, i) => (i ? ctx.lineTo(x(t), y(sc[key][i])) : ctx.moveTo(x(t), y(sc[key][i]))));
      ctx.stroke();
    }
    ctx.setLineDash([]);
    for (const q of [0, 0.25, 0.5, 0.75, 1]) { const v = T >= 4 ? Math.round(q * T) : q * T; text(fmtT(v), x(v), box.y + box.h + 15, 12, "#555", "center"); }
    text("1", box.x - 6, box.y + 9, 12, "#555", "right"); text("0", box.x - 6, box.y + box.h, 12, "#555", "right");
  }
  function schedule(box) {
    const sc = S.stat.schedule, T = sc.T, x = (t) => box.x + (t / T) * box.w, y = (v) => box.y + box.h - v * box.h;
    // the solid curve's value: the frame's own (a flow's α_t), else ᾱ_t = 1 − σ_t² (variance preserving)
    const t = S.t[S.k] || 0, sig = S.sigma[S.k] || 0, abar = S.a.length === S.t.length ? S.a[S.k] : 1 - sig * sig;
    const sym = sc.solid || "\u1FB1";
    ctx.strokeStyle = "#0072B2"; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(x(t), box.y); ctx.lineTo(x(t), box.y + box.h); ctx.stroke();
    ctx.fillStyle = "#0072B2"; ctx.beginPath(); ctx.arc(x(t), y(abar), 6, 0, 6.2832); ctx.arc(x(t), y(sig), 6, 0, 6.2832); ctx.fill();
    const right = t < 0.7 * T, tx = x(t) + (right ? 10 : -10), al = right ? "left" : "right";
    const inside = (v) => Math.max(box.y + 13, Math.min(box.y + box.h - 3, v));
    const ya = inside(y(abar) + (abar >= sig ? 13 : -4)), ys = inside(y(sig) + (abar >= sig ? -4 : 13));
    text(sym + " = " + abar.toFixed(3), tx, Math.abs(ya - ys) < 13 ? ys + (abar >= sig ? 13 : -13) : ya, 13, "#0072B2", al);
    text("\u03C3 = " + sig.toFixed(3), tx, ys, 13, "#0072B2", al);
    const head = sc.name + ": " + sym + "_t solid, \u03C3_t dashed; t = " + fmtT(t) + " of " + fmtT(T);
    text(box.w < 360 ? "t = " + fmtT(t) + " of " + fmtT(T) + " (" + sc.name + ")" : head, box.x, box.y - 8, 14, "#333");
  }
  function draw() {
    if (!S.stat || !S.boxes.length || S.K === 0) return;
    const t0 = performance.now(), lo = S.stat.range[0], hi = S.stat.range[1], k = Math.min(S.k, S.K - 1);
    ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.clearRect(0, 0, canvas.width, canvas.height); ctx.drawImage(bg, 0, 0);
    ctx.setTransform(S.dpr, 0, 0, S.dpr, 0, 0);
    for (const b of S.boxes) {
      const specs = b.p.layers.map((n) => [n, S.stat.layers[n]]);
      if (S.kind === "images") { for (const [n, sp] of specs) if (S.frames[n]) image(b, S.frames[n][k], sp); continue; }
      ctx.save(); ctx.beginPath(); ctx.rect(b.x, b.y, b.s, b.s); ctx.clip();
      for (const [n, sp] of specs) {
        if (sp.type === "paths") paths(b, lo, hi, sp);
        else if (!S.frames[n]) continue;
        else if (sp.type === "field") field(b, lo, hi, S.frames[n][k], sp);
        else points(b, lo, hi, S.frames[n][k], sp);
      }
      ctx.restore();
    }
    if (S.sched) schedule(S.sched);
    $(".adiff-frame-label").textContent = S.labels[k] || "";
    root.dataset.frame = String(k);
    S.drawn += 1; S.lastDrawMs = performance.now() - t0;
  }
  function drawEmpty() {
    const W = Math.floor(root.clientWidth);
    if (W <= 0) return;
    const dpr = window.devicePixelRatio || 1, H = 220;
    S.W = W;
    canvas.width = W * dpr; canvas.height = H * dpr; canvas.style.width = W + "px"; canvas.style.height = H + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, W, H);
    wrap(props.empty_text || "Nothing to show yet.", W - 40, 17).forEach((l, i) => text(l, W / 2, 100 + 24 * i, 17, "#555", "center"));
  }

  // ------------------------------------------------------------------ frames, playback
  function show(k) {
    S.k = Math.max(0, Math.min(S.K - 1, k | 0));
    slider.value = String(S.k);
    draw();
  }
  function pause() {
    S.playing = false; cancelAnimationFrame(S.raf);
    playBtn.textContent = "\u25B6 Play"; root.dataset.state = S.live ? "live" : S.K ? "ready" : "empty";
  }
  function play() {
    if (S.live || S.K < 2) return;
    if (S.k >= S.K - 1) show(0);
    S.playing = true; playBtn.textContent = "\u275A\u275A Pause"; root.dataset.state = "playing";
    // the frame follows the clock (k0 + fps * elapsed): the playback takes K / fps seconds whatever the screen's
    // refresh rate, and a late refresh shows the frame that is due instead of slowing the whole run down
    const t0 = performance.now(), k0 = S.k;
    const tick = (now) => {
      if (!S.playing) return;
      const due = Math.min(S.K - 1, k0 + Math.floor(((now - t0) * S.fps) / 1000 + 0.25));
      if (due > S.k) show(due);
      if (S.k >= S.K - 1) return pause();
      S.raf = requestAnimationFrame(tick);
    };
    S.raf = requestAnimationFrame(tick);
  }
  playBtn.addEventListener("click", () => (S.playing ? pause() : play()));
  slider.addEventListener("input", () => { if (S.playing) pause(); show(+slider.value); });
  speed.addEventListener("change", () => { S.fps = +speed.value; if (S.playing) { pause(); play(); } });
  function freeze() { // Stop was clicked: draw nothing more of this run, even a message already on its way
    S.frozen = S.runId;
    if (S.live) root.dataset.state = "stopped";
  }
  root.adiffPlayer = { play, pause, show, freeze, load, state: S };

  // ------------------------------------------------------------------ hover read-out
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const b = S.boxes.find((b) => mx >= b.x && mx <= b.x + b.s && my >= b.y && my <= b.y + b.s);
    const out = $(".adiff-readout");
    if (!b || !S.K) { out.textContent = ""; return; }
    if (S.kind === "images") { out.textContent = b.p.title; return; }
    const lo = S.stat.range[0], hi = S.stat.range[1], x = lo + ((mx - b.x) / b.s) * (hi - lo), y = lo + ((b.y + b.s - my) / b.s) * (hi - lo);
    let s = b.p.title.split(":")[0] + " at (" + x.toFixed(2) + ", " + y.toFixed(2) + ")";
    const fname = b.p.layers.find((n) => S.stat.layers[n].type === "field" && S.frames[n]);
    if (fname) {
      const sp = S.stat.layers[fname], n = sp.n, step = (sp.hi - sp.lo) / (n - 1), k = Math.min(S.k, S.K - 1);
      const i = Math.max(0, Math.min(n - 1, Math.round((x - sp.lo) / step))), j = Math.max(0, Math.min(n - 1, Math.round((y - sp.lo) / step)));
      const q = S.frames[fname][k], top = (S.scale[fname] || [])[k] || 0, u = (q[2 * (j * n + i)] / 127) * top, v = (q[2 * (j * n + i) + 1] / 127) * top;
      s += " \u00B7 nearest arrow: s = (" + u.toPrecision(3) + ", " + v.toPrecision(3) + "), |s| = " + Math.hypot(u, v).toPrecision(3) + " (longest in this frame: " + top.toPrecision(3) + ")";
    }
    out.textContent = s;
  });

  // ------------------------------------------------------------------ payloads
  function legend() {
    const L = $(".adiff-legend"), N = $(".adiff-notes");
    L.innerHTML = ""; N.innerHTML = "";
    for (const [label, color] of S.stat.legend || []) {
      const sp = document.createElement("span"), dot = document.createElement("i");
      dot.style.background = color; sp.appendChild(dot); sp.appendChild(document.createTextNode(label)); L.appendChild(sp);
    }
    for (const note of S.stat.notes || []) { const li = document.createElement("li"); li.textContent = note; N.appendChild(li); }
    $(".adiff-title").textContent = S.stat.title || "";
  }
  async function load(url) { // the whole trajectory, sent as a file (one parse, no copies through gradio's state)
    const want = S.pending;
    try {
      const r = await fetch(url);
      if (!r.ok) throw new Error("HTTP " + r.status);
      const v = await r.json();
      if (want && v.id !== want) return; // a newer run started meanwhile
      S.pending = null;
      receive(v);
    } catch (e) {
      $(".adiff-readout").textContent = "Could not load the trajectory (" + e.message + "): press Generate again.";
    }
  }
  function receive(v) {
    if (v && v.file && !v.frames) { // the run is done; its trajectory follows as a file (see load)
      if (v.id !== S.frozen) { S.pending = v.id; root.dataset.state = "loading"; }
      return;
    }
    if (!v || !v.frames) { if (!S.stat) drawEmpty(); return; }
    if (v.id === S.frozen) return;
    const newRun = v.id !== S.runId;
    if (newRun) { S.runId = v.id; S.frames = {}; S.scale = {}; S.t = []; S.sigma = []; S.a = []; S.labels = []; }
    if (v.static) { S.stat = v.static; legend(); }
    if (!S.stat) return; // a live message whose first (static) part was missed
    pause();
    const F = v.frames, K = F.count;
    S.kind = v.kind;
    const decoded = {};
    for (const [name, s] of Object.entries(F.data)) decoded[name] = frameViews(S.stat.layers[name], s, K);
    if (v.live) {
      for (const [name, views] of Object.entries(decoded)) (S.frames[name] = S.frames[name] || []).push(...views);
      for (const [name, sc] of Object.entries(F.scale || {})) (S.scale[name] = S.scale[name] || []).push(...sc);
      S.t.push(...F.t); S.sigma.push(...F.sigma); S.a.push(...(F.a || [])); S.labels.push(...F.labels);
    } else {
      S.frames = decoded; S.scale = F.scale || {}; S.t = F.t; S.sigma = F.sigma; S.a = F.a || []; S.labels = F.labels;
    }
    S.live = !!v.live; S.K = S.t.length;
    playBtn.disabled = slider.disabled = S.live || S.K < 2;
    slider.max = String(Math.max(0, S.K - 1));
    root.dataset.state = S.live ? "live" : "ready"; root.dataset.run = S.runId; root.dataset.frames = String(S.K);
    S.k = S.live ? S.K - 1 : F.active;
    if (newRun || v.static || !S.boxes.length) resize(); else show(S.k);
    slider.value = String(S.k);
  }
  let pending = 0;
  new ResizeObserver(() => { // only a new width needs a new layout (the height follows from it)
    if (Math.floor(root.clientWidth) === S.W) return;
    cancelAnimationFrame(pending); pending = requestAnimationFrame(resize);
  }).observe(root);
  watch("value", () => receive(props.value));
  receive(props.value);
})();
