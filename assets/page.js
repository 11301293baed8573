// adiff page helpers, run once by an empty gr.HTML at the top of the app (components/help.py: page_script).
// Gradio's slider silently clamps a typed number to its range (steps typed as 0 runs 1 step; λ typed as 1e6 runs
// λ = 20) and the server never sees the typed value. This listener sees it first (capture phase) and says so,
// under the slider, naming the field and the value that will be used.
(() => {
  if (window.__adiffPage) return;
  window.__adiffPage = true;
  const fieldOf = (block) => {
    const cls = Array.from(block.classList).find((c) => c.startsWith("adiff-field-"));
    return cls ? cls.slice("adiff-field-".length) : "value";
  };
  const note = (block, text) => {
    let el = block.querySelector(".adiff-clamp-note");
    if (!text) { if (el) el.remove(); return; }
    if (!el) {
      el = document.createElement("div");
      el.className = "adiff-clamp-note";
      el.setAttribute("role", "alert");
      block.appendChild(el);
    }
    el.textContent = text;
  };
  const check = (ev) => {
    const input = ev.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "number") return;
    const block = input.closest('[class*="adiff-field-"]');
    if (!block || !block.querySelector('input[type="range"]')) return; // sliders only: plain numbers error server-side
    const label = (block.querySelector("label, .label, span[data-testid='block-info']")?.textContent || "").trim();
    const name = fieldOf(block), raw = input.value, v = Number(raw);
    const lo = input.min === "" ? -Infinity : Number(input.min), hi = input.max === "" ? Infinity : Number(input.max);
    const who = (label ? label + " " : "") + "(" + name + ")";
    if (raw.trim() === "" || !Number.isFinite(v)) note(block, who + ": " + JSON.stringify(raw) + " is not a number; the slider keeps its value.");
    else if (v < lo) note(block, who + ": " + raw + " is below the minimum " + input.min + "; the slider uses " + input.min + ".");
    else if (v > hi) note(block, who + ": " + raw + " is above the maximum " + input.max + "; the slider uses " + input.max + ".");
    else note(block, "");
  };
  document.addEventListener("change", check, true);
  document.addEventListener("keydown", (ev) => { if (ev.key === "Enter") check(ev); }, true);
  document.addEventListener("input", (ev) => { // dragging the slider clears a stale note
    if (ev.target instanceof HTMLInputElement && ev.target.type === "range") {
      const block = ev.target.closest('[class*="adiff-field-"]');
      if (block) note(block, "");
    }
  }, true);
})();
