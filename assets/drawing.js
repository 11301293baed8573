// adiff drawing canvas: the browser half of components/train/own_layout.py's canvas (the Train tab's "draw a 2-D
// dataset"). Gradio runs this once when the gr.HTML component mounts, with `element` and `props` in scope.
// A person draws strokes with a mouse, a pen or a finger (pointer events); the component's value is the strokes as
// coordinates, {"w", "h", "brush", "strokes": [[[x, y], ...], ...]} in canvas pixels, set on props.value after
// every stroke, undo and clear. Nothing here talks to the server: the "Use my drawing" button sends the value, and
// the server checks its counts (components/train/strokes.py) before it draws anything.
(() => {
  const root = element.querySelector(".adiff-draw") || element;
  if (root.__adiffDraw) return; // mounted already
  const W = +props.side || 400, H = W;
  const MAX_POINTS = +props.max_points || 8000, MAX_STROKES = +props.max_strokes || 500, MAX_BRUSH = +props.max_brush || 40;
  const MIN_STEP = 2; // canvas pixels between two recorded points of a stroke
  const S = { strokes: [], brush: +props.brush || 10, current: null, pointer: null, points: 0 };
  root.__adiffDraw = S;
  root.innerHTML =
    '<div class="adiff-draw-tools">' +
    '<label>brush <input type="range" class="adiff-draw-brush" min="2" max="40" step="1" aria-label="brush size"></label>' +
    '<span class="adiff-draw-size"></span>' +
    '<button type="button" class="adiff-draw-undo">Undo</button>' +
    '<button type="button" class="adiff-draw-clear">Clear</button>' +
    '<span class="adiff-draw-count" aria-live="polite"></span></div>' +
    '<canvas class="adiff-draw-canvas" role="img" aria-label="drawing canvas: draw strokes with the mouse or a finger"></canvas>';
  const $ = (sel) => root.querySelector(sel);
  const canvas = $(".adiff-draw-canvas"), g = canvas.getContext("2d");
  const brush = $(".adiff-draw-brush"), count = $(".adiff-draw-count");
  canvas.width = W;
  canvas.height = H;
  brush.max = String(MAX_BRUSH);
  brush.value = String(S.brush);

  function drawStroke(pts, b) {
    g.lineCap = "round";
    g.lineJoin = "round";
    g.lineWidth = b;
    g.strokeStyle = g.fillStyle = "#000";
    if (pts.length === 1) {
      g.beginPath();
      g.arc(pts[0][0], pts[0][1], b / 2, 0, 2 * Math.PI);
      g.fill();
      return;
    }
    g.beginPath();
    g.moveTo(pts[0][0], pts[0][1]);
    for (let i = 1; i < pts.length; i++) g.lineTo(pts[i][0], pts[i][1]);
    g.stroke();
  }
  function redraw() {
    g.fillStyle = "#fff";
    g.fillRect(0, 0, W, H);
    S.strokes.forEach((s) => drawStroke(s, S.brush));
    if (S.current) drawStroke(S.current, S.brush);
    const full = S.points >= MAX_POINTS || S.strokes.length >= MAX_STROKES;
    count.textContent = S.strokes.length
      ? `${S.strokes.length} stroke${S.strokes.length === 1 ? "" : "s"}, ${S.points} points` + (full ? " (full: undo or clear)" : "")
      : "empty: draw with the mouse or a finger";
    $(".adiff-draw-size").textContent = `${S.brush} px`;
  }
  function publish() {
    // a new object each time: Gradio compares the value to send a change
    props.value = { w: W, h: H, brush: S.brush, strokes: S.strokes.map((s) => s.map((p) => [p[0], p[1]])) };
  }
  function at(e) {
    const r = canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) * W) / Math.max(1, r.width), y = ((e.clientY - r.top) * H) / Math.max(1, r.height);
    return [Math.round(Math.min(W, Math.max(0, x))), Math.round(Math.min(H, Math.max(0, y)))];
  }
  function add(p) {
    const s = S.current, last = s[s.length - 1];
    if (S.points >= MAX_POINTS) return;
    if (last && Math.hypot(p[0] - last[0], p[1] - last[1]) < MIN_STEP) return;
    s.push(p);
    S.points += 1;
  }
  canvas.addEventListener("pointerdown", (e) => {
    if (S.current || S.points >= MAX_POINTS || S.strokes.length >= MAX_STROKES) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    S.pointer = e.pointerId;
    S.current = [];
    add(at(e));
    redraw();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!S.current || e.pointerId !== S.pointer) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    (events.length ? events : [e]).forEach((c) => add(at(c)));
    redraw();
  });
  const end = (e) => {
    if (!S.current || e.pointerId !== S.pointer) return;
    if (S.current.length) S.strokes.push(S.current);
    S.current = null;
    S.pointer = null;
    redraw();
    publish();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  brush.addEventListener("input", () => {
    S.brush = Math.round(+brush.value);
    redraw();
    if (S.strokes.length) publish();
  });
  $(".adiff-draw-undo").addEventListener("click", () => {
    const s = S.strokes.pop();
    if (s) S.points -= s.length;
    redraw();
    publish();
  });
  $(".adiff-draw-clear").addEventListener("click", () => {
    S.strokes = [];
    S.points = 0;
    redraw();
    publish();
  });
  redraw();
})();
