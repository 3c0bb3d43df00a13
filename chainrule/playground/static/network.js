// The network drawing (SVG): one column per layer, each neuron a small picture of its output over
// the plane, weights as lines (blue positive, orange negative, width by magnitude, value on
// hover), and the forward/backward step overlays with the engine's numbers.

import { activationRange, CLASS_RGB, decodeGrid, diverging, fmt } from "./grid.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 640;
const H = 400;
const TOP = 26;
const BOTTOM = 14;
export const FEATURE_LABELS = {
  x1: "x1",
  x2: "x2",
  x1sq: "x1²",
  x2sq: "x2²",
  x1x2: "x1·x2",
  sin_x1: "sin x1",
  sin_x2: "sin x2",
};
const FEATURE_FN = {
  x1: (x) => x,
  x2: (x, y) => y,
  x1sq: (x) => x * x,
  x2sq: (x, y) => y * y,
  x1x2: (x, y) => x * y,
  sin_x1: (x) => Math.sin(x),
  sin_x2: (x, y) => Math.sin(y),
};

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

/** Name of neuron j of column c (0 = inputs) for labels: "x1", "h1.2", "out". */
export function neuronName(sizes, features, c, j) {
  if (c === 0) return FEATURE_LABELS[features[j]] || features[j];
  if (c === sizes.length - 1) return sizes[c] === 1 ? "out" : `out ${j + 1}`;
  return `h${c}.${j + 1}`;
}

export class NetworkView {
  constructor(svg, tip) {
    this.svg = svg;
    this.tip = tip;
    this.overlay = null;
    this.last = null;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.addEventListener("pointerover", (ev) => this.hover(ev));
    svg.addEventListener("pointerout", () => (this.tip.hidden = true));
    svg.addEventListener("pointermove", (ev) => this.moveTip(ev));
  }

  update(config, data, view) {
    this.last = { config, data, view };
    this.render();
  }

  setOverlay(overlay) {
    this.overlay = overlay;
    this.render();
  }

  layout(sizes) {
    const cols = sizes.length;
    const maxN = Math.max(...sizes);
    const avail = H - TOP - BOTTOM;
    // room between neurons for a value label below one and above the next
    const size = Math.max(6, Math.min(44, (avail / maxN) * 0.6));
    const gap = Math.min(40, (avail - maxN * size) / Math.max(1, maxN - 1));
    const left = 64;
    const right = W - 60 - size;
    const xs = sizes.map((_, c) => (cols === 1 ? left : left + ((right - left) * c) / (cols - 1)));
    return sizes.map((n, c) => {
      const total = n * size + (n - 1) * gap;
      const y0 = TOP + (avail - total) / 2;
      return Array.from({ length: n }, (_, j) => ({ x: xs[c], y: y0 + j * (size + gap), size }));
    });
  }

  render() {
    const svg = this.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!this.last || !this.last.view) return;
    const { config, data, view } = this.last;
    const sizes = view.sizes;
    const pos = this.layout(sizes);
    this.pos = pos;
    const layers = view.layers;
    let maxW = 1e-9;
    for (const L of layers) for (const row of L.weight) for (const w of row) maxW = Math.max(maxW, Math.abs(w));
    const ov = this.overlay;

    // column titles
    const titles = el("g", { class: "titles" }, svg);
    sizes.forEach((n, c) => {
      const t = c === 0 ? "Input" : c === sizes.length - 1 ? "Output" : `Layer ${c}`;
      const p = pos[c][0];
      el("text", { x: p.x + p.size / 2, y: 14, "text-anchor": "middle" }, titles).textContent = t;
    });

    // weights
    const edges = el("g", { class: "edges" }, svg);
    const many = layers.reduce((s, L) => s + L.weight.length * L.weight[0].length, 0) > 600;
    layers.forEach((L, l) => {
      L.weight.forEach((row, j) => {
        row.forEach((w, k) => {
          const a = pos[l][k];
          const b = pos[l + 1][j];
          const focus = ov && ov.layer === l && ov.neuron === j;
          const attrs = {
            x1: a.x + a.size,
            y1: a.y + a.size / 2,
            x2: b.x,
            y2: b.y + b.size / 2,
            stroke: w >= 0 ? "#2b6cb0" : "#dd7a25",
            "stroke-width": (0.4 + 5 * (Math.abs(w) / maxW)).toFixed(2),
            class: focus ? "edge focus" : "edge",
            "data-l": l,
            "data-j": j,
            "data-k": k,
          };
          el("line", attrs, edges);
          if (!many) el("line", { ...attrs, class: "edge-hit", stroke: "transparent", "stroke-width": 7 }, edges);
        });
      });
    });

    // neurons
    const nodes = el("g", { class: "nodes" }, svg);
    const cells = this.pictures(config, data, view, sizes);
    pos.forEach((col, c) => {
      col.forEach((p, j) => {
        const g = el("g", { class: "neuron", "data-c": c, "data-j": j }, nodes);
        const pic = cells[c][j];
        if (pic && pic.href) {
          el("image", { x: p.x, y: p.y, width: p.size, height: p.size, href: pic.href, preserveAspectRatio: "none" }, g);
        } else {
          el("rect", { x: p.x, y: p.y, width: p.size, height: p.size, fill: "#fafafa" }, g);
        }
        if (pic && pic.curve) {
          el("polyline", { points: pic.curve(p), fill: "none", stroke: "#1d4ed8", "stroke-width": 1.5 }, g);
        }
        const focus = ov && ov.layer + 1 === c && ov.neuron === j;
        el("rect", { x: p.x, y: p.y, width: p.size, height: p.size, class: focus ? "frame focus" : "frame" }, g);
        if (c === 0) {
          const label = neuronName(sizes, config.features, 0, j);
          el("text", { x: p.x - 6, y: p.y + p.size / 2 + 4, "text-anchor": "end", class: "feature" }, g).textContent =
            label;
        }
      });
    });
    if (ov) this.drawOverlay(ov, pos);
  }

  // One picture per neuron: features computed here, hidden neurons and outputs from the view.
  pictures(config, data, view, sizes) {
    const regression = data.task === "regression";
    const [x0, x1, y0, y1] = data.domain;
    const out = sizes.map(() => []);
    const n = 24;
    config.features.forEach((f, j) => {
      const fn = FEATURE_FN[f];
      if (regression) {
        const xs = Array.from({ length: n }, (_, i) => x0 + ((i + 0.5) * (x1 - x0)) / n);
        out[0][j] = { curve: curveOf(xs.map((x) => fn(x, 0))) };
        return;
      }
      const vals = new Float32Array(n * n);
      let lo = Infinity;
      let hi = -Infinity;
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < n; c++) {
          const v = fn(x0 + ((c + 0.5) * (x1 - x0)) / n, y1 - ((r + 0.5) * (y1 - y0)) / n);
          vals[r * n + c] = v;
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
      const half = Math.max(Math.abs(lo), Math.abs(hi), 1e-9);
      out[0][j] = { href: imageOf(n, n, (i) => diverging(vals[i] / half)) };
    });
    view.neurons.forEach((layer, l) => {
      layer.forEach((grid, j) => {
        const g = decodeGrid(grid);
        const vals = Array.from(g.q, (q) => g.lo + ((g.hi - g.lo) * q) / 255);
        if (regression) {
          out[l + 1][j] = { curve: curveOf(vals), href: null };
          return;
        }
        const [mid, half] = activationRange(config.activation, g.lo, g.hi);
        out[l + 1][j] = { href: imageOf(g.rows, g.cols, (i) => diverging((vals[i] - mid) / half)) };
      });
    });
    const last = sizes.length - 1;
    if (regression && view.curve) {
      out[last][0] = { curve: curveOf(view.curve.y) };
    } else if (view.grid) {
      const probs = view.grid.probs.map(decodeGrid);
      const classes = probs.length === 2 ? [1] : [0, 1, 2];
      classes.forEach((cls, j) => {
        const g = probs[cls];
        out[last][j] = {
          href: imageOf(g.rows, g.cols, (i) => {
            const p = g.q[i] / 255;
            // binary: red (p = 0) through white to green (p = 1); 3 classes: white to the class colour
            if (probs.length === 2) return mix(p < 0.5 ? CLASS_RGB[0] : CLASS_RGB[1], Math.abs(p - 0.5) * 2);
            return mix(CLASS_RGB[cls], p);
          }),
        };
      });
    }
    return out;
  }

  drawOverlay(ov, pos) {
    const g = el("g", { class: "overlay" }, this.svg);
    const label = (x, y, text, cls = "val", anchor = "middle") => {
      el("text", { x, y, "text-anchor": anchor, class: cls }, g).textContent = text;
    };
    const fwd = ov.forward;
    if (fwd) {
      // feature values next to the inputs
      fwd.features.values.forEach((v, k) => {
        const p = pos[0][k];
        label(p.x + p.size / 2, p.y + p.size + 11, fmt(v, 4));
      });
    }
    if (ov.kind === "forward") {
      fwd.layers.forEach((L, l) => {
        L.neurons.forEach((nr, j) => {
          if (l > ov.layer || (l === ov.layer && j > ov.neuron)) return;
          const p = pos[l + 1][j];
          label(p.x + p.size / 2, p.y + p.size + 11, `a=${fmt(nr.a, 4)}`);
          if (l === ov.layer && j === ov.neuron) label(p.x + p.size / 2, p.y - 4, `z=${fmt(nr.z, 4)}`, "val strong");
        });
      });
    } else {
      const bwd = ov.backward;
      bwd.layers.forEach((L, l) => {
        L.neurons.forEach((nr, j) => {
          if (l < ov.layer || (l === ov.layer && j < ov.neuron)) return;
          const p = pos[l + 1][j];
          const strong = l === ov.layer && j === ov.neuron;
          label(p.x + p.size / 2, p.y + p.size + 11, `δ=${fmt(nr.delta, 4)}`, strong ? "val strong" : "val");
        });
      });
      const nr = bwd.layers[ov.layer].neurons[ov.neuron];
      const b = pos[ov.layer + 1][ov.neuron];
      if (nr.weight_grads.length <= 12) {
        nr.weight_grads.forEach((gw, k) => {
          const a = pos[ov.layer][k];
          // 35% of the way from the source: sources are spread out, so the labels do not collide
          const t = 0.35;
          const x = a.x + a.size + t * (b.x - a.x - a.size);
          const y = a.y + a.size / 2 + t * (b.y + b.size / 2 - a.y - a.size / 2);
          label(x, y - 3, `∂w=${fmt(gw, 3)}`, "val grad");
        });
      }
    }
  }

  // --- hover ---------------------------------------------------------------------------------
  hover(ev) {
    const t = ev.target;
    if (!this.last || !this.last.view) return;
    const { config, view } = this.last;
    const sizes = view.sizes;
    let text = null;
    if (t.classList.contains("edge") || t.classList.contains("edge-hit")) {
      const l = Number(t.dataset.l);
      const j = Number(t.dataset.j);
      const k = Number(t.dataset.k);
      const w = view.layers[l].weight[j][k];
      const from = neuronName(sizes, config.features, l, k);
      const to = neuronName(sizes, config.features, l + 1, j);
      text = `weight ${from} → ${to} = ${fmt(w)}`;
    } else {
      const g = t.closest && t.closest("g.neuron");
      if (g) {
        const c = Number(g.dataset.c);
        const j = Number(g.dataset.j);
        const name = neuronName(sizes, config.features, c, j);
        text = c === 0 ? `input ${name}` : `${name}: bias = ${fmt(view.layers[c - 1].bias[j])}`;
      }
    }
    if (text === null) return;
    this.tip.textContent = text;
    this.tip.hidden = false;
    this.moveTip(ev);
  }

  moveTip(ev) {
    if (this.tip.hidden) return;
    const box = this.tip.parentElement.getBoundingClientRect();
    this.tip.style.left = `${ev.clientX - box.left + 12}px`;
    this.tip.style.top = `${ev.clientY - box.top + 12}px`;
  }
}

function mix(rgb, a) {
  return rgb.map((v) => Math.round(255 + (v - 255) * a));
}

function imageOf(rows, cols, colour) {
  const c = document.createElement("canvas");
  c.width = cols;
  c.height = rows;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    const rgb = colour(i);
    img.data[4 * i] = rgb[0];
    img.data[4 * i + 1] = rgb[1];
    img.data[4 * i + 2] = rgb[2];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c.toDataURL();
}

// A small curve drawn inside a neuron's box, scaled to the box.
function curveOf(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  return (p) =>
    values
      .map((v, i) => {
        const x = p.x + (p.size * i) / Math.max(1, values.length - 1);
        const y = p.y + p.size - 3 - ((p.size - 6) * (v - lo)) / (hi - lo);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      })
      .join(" ");
}
