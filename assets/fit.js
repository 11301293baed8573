// adiff figure fitting, run once by an empty gr.HTML at the top of the app (components/columns.py: fit_script).
// A plotly figure whose panels stand side by side (guidance's three squares, the schedules' 2x2 grid) squeezes every
// panel into a narrow column: on a phone, three squares would get 100 px each. Where a panel would get less than
// MIN_PANEL px, this stacks the panels in one column, each as wide as the figure, and makes the figure as tall as they
// need; where the figure is wide again (a rotated phone, a wider window), the server's own arrangement comes back.
// Panel titles follow their panel (components/plotting.py anchors them to the panel's domain); the legend stays at
// the bottom. It all happens in the browser, with plotly's own Plotly.relayout: nothing is asked of the server.
(() => {
  if (window.__adiffFit) return;
  window.__adiffFit = true;
  const MIN_PANEL = 200; // px of plot width per panel below which the panels stack
  const MAX_COLUMNS = 4; // wider grids (the forward tab's strip of images) read well small: left as they are
  const TITLE_LINE = 21, BELOW = 46, AXIS_TITLE = 34; // px: a title line above a panel; ticks below it; an axis title
  const own = new WeakMap(); // layout object -> {height, panels}: the arrangement the server sent
  const fitted = new WeakMap(); // plot div -> {layout, key}: what it was last fitted for

  // Plotly writes a square panel's shrunk domain back into the layout and keeps the one it was given as
  // _fullLayout[axis]._inputDomain: that one is the server's.
  const domainOf = (gd, k) => ((gd._fullLayout && gd._fullLayout[k] && gd._fullLayout[k]._inputDomain) || gd.layout[k].domain).slice();
  function panelsOf(gd) {
    const layout = gd.layout, out = [];
    for (const k of Object.keys(layout)) {
      const m = /^xaxis(\d*)$/.exec(k), xa = layout[k];
      if (!m || !xa || !Array.isArray(xa.domain) || xa.overlaying) continue;
      const anchor = typeof xa.anchor === "string" && /^y\d*$/.test(xa.anchor) ? xa.anchor.slice(1) : m[1];
      const yk = "yaxis" + anchor, ya = layout[yk];
      if (!ya || !Array.isArray(ya.domain)) continue;
      const ref = "x" + m[1] + " domain";
      const titles = (layout.annotations || []).filter((a) => a.xref === ref);
      out.push({
        xk: k, yk, x: domainOf(gd, k), y: domainOf(gd, yk), square: !!ya.scaleanchor,
        lines: Math.max(1, ...titles.map((a) => String(a.text || "").split("<br>").length)),
        axisTitle: !!(xa.title && xa.title.text),
      });
    }
    return out;
  }
  function snapshot(gd) {
    if (!own.has(gd.layout)) own.set(gd.layout, { height: gd.layout.height, panels: panelsOf(gd) });
    return own.get(gd.layout);
  }
  const mid = (d) => Math.round(((d[0] + d[1]) / 2) * 1000); // a panel's centre, in thousandths of the figure
  function stacked(orig, width, margin) {
    const plotW = width - margin.l - margin.r, plotH = orig.height - margin.t - margin.b;
    const panels = orig.panels.slice().sort((a, b) => mid(b.y) - mid(a.y) || mid(a.x) - mid(b.x)); // reading order
    const h = panels.map((p) => (p.square ? Math.min(plotW, 420) : Math.max(200, (p.y[1] - p.y[0]) * plotH)));
    const gapAfter = panels.map((p, i) => (i + 1 < panels.length
      ? BELOW + (p.axisTitle ? AXIS_TITLE : 0) + panels[i + 1].lines * TITLE_LINE + 6 : 0));
    const P = h.reduce((s, v) => s + v, 0) + gapAfter.reduce((s, v) => s + v, 0);
    const update = { height: Math.round(P + margin.t + margin.b) };
    let top = 0;
    panels.forEach((p, i) => {
      update[p.xk + ".domain"] = [0, 1];
      update[p.yk + ".domain"] = [+(1 - (top + h[i]) / P).toFixed(5), +(1 - top / P).toFixed(5)];
      top += h[i] + gapAfter[i];
    });
    return update;
  }
  function restored(orig) {
    const update = { height: orig.height };
    for (const p of orig.panels) { update[p.xk + ".domain"] = p.x; update[p.yk + ".domain"] = p.y; }
    return update;
  }
  function fit(gd) {
    const layout = gd.layout, width = gd.clientWidth;
    if (!layout || !width || !window.Plotly) return;
    const orig = snapshot(gd);
    const cols = new Set(orig.panels.map((p) => mid(p.x))).size;
    if (cols < 2 || cols > MAX_COLUMNS || !orig.height) return;
    const m = Object.assign({ l: 80, r: 80, t: 100, b: 80 }, layout.margin || {});
    const stack = (width - m.l - m.r) / cols < MIN_PANEL;
    const key = stack ? "stacked " + Math.round(width) : "own";
    const last = fitted.get(gd);
    if (last && last.layout === layout && last.key === key) return;
    if (!stack && (!last || last.layout !== layout) && layout.height === orig.height) { // as the server sent it
      fitted.set(gd, { layout, key });
      return;
    }
    fitted.set(gd, { layout, key });
    window.Plotly.relayout(gd, stack ? stacked(orig, width, m) : restored(orig));
  }

  const pending = new Set();
  let raf = 0, scanning = 0;
  function later(gd) {
    pending.add(gd);
    if (!raf) raf = requestAnimationFrame(() => { raf = 0; const all = [...pending]; pending.clear(); all.forEach(fit); });
  }
  function hook(gd) {
    if (gd.__adiffFit) return;
    gd.__adiffFit = true;
    if (typeof gd.on === "function") gd.on("plotly_afterplot", () => later(gd));
    new ResizeObserver(() => later(gd)).observe(gd);
    later(gd);
  }
  const scan = () => { scanning = 0; document.querySelectorAll(".js-plotly-plot").forEach(hook); };
  new MutationObserver(() => { if (!scanning) scanning = requestAnimationFrame(scan); })
    .observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["class"] });
  scan();
})();
