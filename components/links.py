"""Deep links for workshops: ``?tab=reverse&preset=moons&sampler=ddim&steps=50&seed=3`` opens a tab with those
settings, and every tab has a "link to this view" button that writes such a URL for its current settings.

Each tab's ``build`` returns a ``TabLink``: its tab id, the URL key of each linked widget, and ``apply(params,
request)``, which turns the URL's values (strings) into widget updates the same way the tab's own callbacks check
them, so a bad value is reported (naming the key and the value) instead of being clamped or ignored silently.
``wire`` adds the page-load event that applies a link and the buttons that make one (in the browser: no server call).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from .fields import as_choice, as_float, as_int

__all__ = ["TabLink", "LinkParams", "link_row", "wire", "link_js", "merge", "join", "plain", "notice_text"]

MAX_PARAM_CHARS = 400  # a URL value longer than this is refused (nothing in the app needs more)
NOTICE_VALUE_CHARS = 40  # a link's value (or key) is echoed in the notice cut to this many characters
NOTICE_LINE_CHARS = 160  # ... and a problem's line to this many
NOTICE_SHOWN = 5  # values, problems and unknown keys shown in the notice; the rest are counted
_ENTITIES = {c: f"&#{ord(c)};" for c in string.punctuation}  # every markdown / HTML special character, and more


class LinkParams:
    """The URL's query values for one tab, read with the app's own checks; problems are collected, not raised."""

    def __init__(self, values: dict[str, str]):
        self.values = dict(values)
        self.used: set[str] = {"tab"}
        self.problems: list[str] = []

    def has(self, key: str) -> bool:
        return key in self.values

    def _get(self, key: str, check: Callable[[str], Any]):
        if key not in self.values:
            return None
        self.used.add(key)
        raw = self.values[key]
        if len(raw) > MAX_PARAM_CHARS:
            self.problems.append(f"{key}: the value is {len(raw)} characters long, at most {MAX_PARAM_CHARS}; ignored")
            return None
        try:
            return check(raw)
        except gr.Error as e:
            self.problems.append(f"{e.message} (from the link; the tab's own value was kept)")
            return None

    def int(self, key: str, lo: int, hi: int):
        return self._get(key, lambda v: as_int(v, key, lo, hi))

    def float(self, key: str, lo: float, hi: float):
        return self._get(key, lambda v: as_float(v, key, lo, hi))

    def choice(self, key: str, choices: Sequence[str]):
        return self._get(key, lambda v: as_choice(v, key, list(choices)))

    def choices(self, key: str, choices: Sequence[str]):
        """A comma-separated list of choices (a checkbox group)."""

        def check(v):
            picked = [s.strip() for s in v.split(",") if s.strip()]
            for s in picked:
                as_choice(s, key, list(choices))
            if not picked:
                raise gr.Error(f"{key}: pick at least one of {list(choices)}", print_exception=False)
            return picked

        return self._get(key, check)

    def bool(self, key: str):
        def check(v):
            low = v.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise gr.Error(f"{key}: must be true or false, got {v!r}", print_exception=False)

        return self._get(key, check)

    def text(self, key: str, max_chars: int):
        def check(v):
            if len(v) > max_chars:
                raise gr.Error(f"{key}: is too long: {len(v)} characters, at most {max_chars}", print_exception=False)
            return v

        return self._get(key, check)

    def unused(self) -> list[str]:
        return sorted(k for k in self.values if k not in self.used)

    def fill(self, out: dict, fields: Sequence[tuple]) -> dict:
        """Read (key, component, kind, *limits) entries (kind: int, float, text, choice, choices, bool) into the
        updates ``out``; a value for a component that already has an update (new choices or limits from a preset)
        joins that update."""
        for key, comp, kind, *limits in fields:
            value = getattr(self, kind)(key, *limits)
            if value is not None:
                merge(out, comp, value)
        return out

    def choice_among(self, key: str, out: dict, comp, default: Sequence[str]):
        """A choice checked against the choices an earlier update of ``out`` gave ``comp`` (else ``default``)."""
        choices = [c[0] if isinstance(c, tuple) else c for c in (out.get(comp) or {}).get("choices", default)]
        return self.choice(key, choices)


def merge(out: dict, comp, value) -> None:
    """Set ``comp``'s value in the updates ``out``; an update it already has (new choices or limits) keeps them."""
    prev = out.get(comp)
    out[comp] = {**prev, "value": value} if isinstance(prev, dict) else value


def join(out: dict, updates: dict) -> None:
    """Merge ``updates`` into ``out``: an update for a component that already has one joins it (a solver's steps
    value keeps the model's new step limit)."""
    for comp, u in updates.items():
        prev = out.get(comp)
        out[comp] = {**prev, **u} if isinstance(prev, dict) and isinstance(u, dict) else u


def plain(text: str, limit: int = NOTICE_VALUE_CHARS) -> str:
    """``text`` from a URL as plain words in a markdown notice: whitespace and control characters become single
    spaces, it is cut to ``limit`` characters (with "…"), and every ASCII punctuation character becomes an HTML
    entity, so no markdown (links, images, emphasis, headings), no HTML tag and no autolinked URL can come of it; the
    page shows the same characters."""
    words = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    cut = words if len(words) <= limit else words[: limit - 1] + "…"
    return "".join(_ENTITIES.get(c, c) for c in cut)


def _counted(items: list[str], noun: str) -> list[str]:
    """The first NOTICE_SHOWN of ``items``, then one "… and N more <noun>" entry."""
    more = len(items) - NOTICE_SHOWN
    return items[:NOTICE_SHOWN] + ([f"… and {more} more {noun}"] if more > 0 else [])


def notice_text(tab: str, values: dict[str, str], params: LinkParams) -> str:
    """The notice at the top of the page for a link that opened ``tab`` (a known tab id): the values the tab took
    (at most NOTICE_SHOWN, each cut short), the problems (as many), and the unknown keys summarised in one line.
    Everything that came from the URL goes through :func:`plain`, so the notice is bounded and renders as text."""
    unused = params.unused()
    taken = [f"{plain(k)} = {plain(v)}" for k, v in values.items() if k != "tab" and k not in unused]
    text = f"Opened from a link: **{plain(tab)}**" + (
        f" with {', '.join(_counted(taken, 'settings'))}" if taken else ""
    )
    lines = [plain(p, NOTICE_LINE_CHARS) for p in params.problems]
    if unused:
        names = ", ".join(plain(k) for k in unused[:NOTICE_SHOWN]) + (", …" if len(unused) > NOTICE_SHOWN else "")
        lines.append(f"{len(unused)} unknown setting{'s' if len(unused) != 1 else ''} ignored: {names}")
    return text + "." + "".join(f"\n- ⚠ {line}" for line in _counted(lines, "problems"))


@dataclass
class TabLink:
    """What a tab offers to deep links: its id, URL key -> widget, and how a link's values become widget updates."""

    tab: str
    fields: dict[str, gr.components.Component]
    apply: Callable[[LinkParams, Any], dict]  # (params, request) -> {component: value or gr.update}
    button: gr.Button | None = None
    box: gr.Textbox | None = None
    extra_outputs: list = field(default_factory=list)  # components apply() may update besides the fields


def link_js(tab: str, keys: Sequence[str], follow: bool = False) -> str:
    """Browser code for a "link to this view" button: the page's URL with ?tab=...&key=value for the inputs.
    ``follow``: the code run when a linked setting changes, whose last input is the link box: an empty box stays
    empty, a box with a link gets the link of the new settings (not copied to the clipboard)."""
    return f"""(...vals) => {{
  const follow = {json.dumps(follow)};
  if (follow && !vals.pop()) return "";
  const keys = {json.dumps(list(keys))};
  const p = new URLSearchParams();
  p.set("tab", {json.dumps(tab)});
  keys.forEach((k, i) => {{
    let v = vals[i];
    if (Array.isArray(v)) v = v.join(",");
    if (v !== null && v !== undefined && v !== "") p.set(k, String(v));
  }});
  const url = window.location.origin + window.location.pathname + "?" + p.toString();
  if (!follow && navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(url).catch(() => {{}});
  return url;
}}"""


def link_row(tab: str) -> tuple[gr.Button, gr.Textbox]:
    """The "link to this view" control of a tab (wired by ``wire``)."""
    with gr.Row(elem_classes=["adiff-link-row"]):
        button = gr.Button("Link to this view", size="sm", scale=0, min_width=170, elem_id=f"{tab}-link-btn")
        box = gr.Textbox(
            label="Link to this view (copy it, or send it to the room)",
            interactive=False,
            max_lines=1,
            scale=4,
            placeholder="press the button: a URL that opens this tab with these settings (for a workshop)",
            buttons=["copy"],
            elem_id=f"{tab}-link",
        )
    return button, box


SELECT_TAB_JS = """() => {
  const tab = new URLSearchParams(window.location.search).get("tab");
  if (!tab) return;
  const pick = (tries) => {
    const b = document.querySelector('button[role="tab"][data-tab-id="' + CSS.escape(tab) + '"]');
    if (b) b.click(); else if (tries > 0) setTimeout(() => pick(tries - 1), 100);
  };
  pick(50);
}"""


def wire(demo: gr.Blocks, links: Sequence[TabLink], notice: gr.Markdown, queue: dict | None = None) -> None:
    """Apply ?tab=... on page load, and wire every tab's link button (browser only).

    The tab is selected in the browser (a click on its button): an event whose outputs include the Tabs layout
    makes Gradio re-read every component under it at each later status update (a streamed run would pay that on
    every message).  The values come from one light request whose outputs are the linked widgets only."""
    by_tab = {link.tab: link for link in links}
    demo.adiff_links = by_tab  # for tests: each tab's TabLink
    outputs: list = [notice]
    for link in links:
        for comp in list(link.fields.values()) + link.extra_outputs:
            if comp not in outputs:
                outputs.append(comp)

    def apply(request: gr.Request):
        skip = {c: gr.skip() for c in outputs}
        values = dict(request.query_params) if request is not None else {}
        if not values:
            return skip
        tab = values.get("tab")
        if tab not in by_tab:
            known = ", ".join(sorted(by_tab))
            text = f"⚠ link: tab must be one of {known}, got {plain(repr(tab))}"
            return {**skip, notice: gr.update(value=text, visible=True)}
        params = LinkParams(values)
        updates = by_tab[tab].apply(params, request)
        return {**skip, **updates, notice: gr.update(value=notice_text(tab, values, params), visible=True)}

    demo.load(None, None, None, js=SELECT_TAB_JS)
    demo.load(apply, None, outputs, api_visibility="private", show_progress="hidden", **(queue or {}))
    for link in links:
        if link.button is not None and link.box is not None:
            fields = list(link.fields.values())
            link.button.click(None, fields, link.box, js=link_js(link.tab, list(link.fields)), api_visibility="private")
            # the box follows the settings: a link already shown is rewritten when a linked setting changes
            gr.on(
                [c.change for c in fields],
                None,
                [*fields, link.box],
                link.box,
                js=link_js(link.tab, list(link.fields), follow=True),
                api_visibility="private",
                show_progress="hidden",
            )
