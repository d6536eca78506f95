// The flame graph of a selection's samples, as SVG: root at the bottom,
// each frame as wide as its samples, children left to right by name, in the
// layout of Brendan Gregg's flamegraph.pl (and inferno, which netlat's own
// `flamegraph` command uses). Colours are the same warm hues, chosen from a
// hash of the name so one function keeps its colour across selections.
"use strict";

const FLAME_FRAME_HEIGHT = 17;
const SVG_NS = "http://www.w3.org/2000/svg";

// folded: Map of "a;b;c" -> samples. Returns the root node.
function flameTree(folded) {
  const root = { name: "all", value: 0, children: new Map() };
  for (const [stack, n] of folded) {
    if (n <= 0) continue;
    root.value += n;
    let node = root;
    for (const frame of stack.split(";")) {
      let child = node.children.get(frame);
      if (!child) {
        child = { name: frame, value: 0, children: new Map() };
        node.children.set(frame, child);
      }
      child.value += n;
      node = child;
    }
  }
  return root;
}

function flameDepth(node) {
  let d = 0;
  for (const c of node.children.values()) d = Math.max(d, flameDepth(c));
  return d + 1;
}

// flamegraph.pl's "hot" palette: red 205-255, green 0-230, blue 0-55.
function flameColour(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const a = (h % 1000) / 1000;
  const b = ((h >>> 10) % 1000) / 1000;
  return "rgb(" + Math.round(205 + 50 * b) + "," + Math.round(230 * a) + "," + Math.round(55 * (1 - a)) + ")";
}

// Draws `folded` into `container` (emptied first), `width` CSS pixels wide.
// `tooltip(evt, text)` shows a frame's name, samples and share on hover.
function drawFlame(container, folded, width, tooltip) {
  container.textContent = "";
  const root = flameTree(folded);
  if (root.value === 0) return root;
  const depth = flameDepth(root);
  const height = depth * FLAME_FRAME_HEIGHT + 4;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "flame");
  const scale = width / root.value;
  function place(node, x, level) {
    const w = node.value * scale;
    if (w < 0.3) return;
    const y = height - (level + 1) * FLAME_FRAME_HEIGHT;
    const g = document.createElementNS(SVG_NS, "g");
    const rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("x", x.toFixed(2));
    rect.setAttribute("y", y);
    rect.setAttribute("width", Math.max(w - 0.5, 0.1).toFixed(2));
    rect.setAttribute("height", FLAME_FRAME_HEIGHT - 1);
    rect.setAttribute("fill", level === 0 ? "rgb(230,230,230)" : flameColour(node.name));
    g.appendChild(rect);
    const share = (100 * node.value / root.value).toFixed(2);
    const about = node.name + " (" + node.value + " samples, " + share + "%)";
    g.setAttribute("data-frame", node.name);
    g.addEventListener("mousemove", (e) => tooltip(e, about));
    g.addEventListener("mouseleave", () => tooltip(null));
    // A label only where roughly three characters fit, cut to the width.
    const fit = Math.floor((w - 6) / 7);
    if (fit >= 3) {
      const text = document.createElementNS(SVG_NS, "text");
      text.setAttribute("x", (x + 3).toFixed(2));
      text.setAttribute("y", y + FLAME_FRAME_HEIGHT - 5);
      text.textContent = node.name.length > fit ? node.name.slice(0, fit - 2) + ".." : node.name;
      g.appendChild(text);
    }
    svg.appendChild(g);
    let cx = x;
    const children = [...node.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const c of children) {
      place(c, cx, level + 1);
      cx += c.value * scale;
    }
  }
  place(root, 0, 0);
  container.appendChild(svg);
  return root;
}
