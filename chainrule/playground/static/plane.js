// The data plane: decision regions (or the fitted curve), the points, axes; pan and zoom, and the
// point tools. Coordinates: the visible domain [x_min, x_max, y_min, y_max] fills the canvas.

import { CLASS_RGB, decodeGrid, fmt } from "./grid.js";

const PICK_RADIUS = 9; // CSS pixels
const POINT_RADIUS = 5;

export class Plane {
  constructor(canvas, callbacks) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.cb = callbacks; // {add(x, y), remove(index), pick(index), domain([..])}
    this.tool = "pan";
    this.data = null; // the `data` of the last state
    this.view = null;
    this.config = null;
    this.domain = [-1, 1, -1, 1]; // what is shown (changes while panning, before the server knows)
    this.gridDomain = null; // the domain the grids were computed over
    this.regions = null; // offscreen canvas of the decision regions
    this.selected = null;
    this.showTest = true;
    this.drag = null;
    this.zoomTimer = null;
    this.listen();
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  setTool(tool) {
    this.tool = tool;
    this.canvas.dataset.tool = tool;
  }

  update(config, data, view) {
    this.config = config;
    const changedDomain = !this.data || this.data.domain.join() !== data.domain.join();
    this.data = data;
    this.view = view;
    if (changedDomain && !this.drag) this.domain = data.domain.slice();
    this.gridDomain = data.domain.slice();
    this.regions = view && view.grid ? this.renderRegions(view.grid.probs, config.discretize) : null;
    this.draw();
  }

  renderRegions(probGrids, discretize) {
    const grids = probGrids.map(decodeGrid);
    const { rows, cols } = grids[0];
    const off = document.createElement("canvas");
    off.width = cols;
    off.height = rows;
    const octx = off.getContext("2d");
    const img = octx.createImageData(cols, rows);
    const k = grids.length;
    for (let i = 0; i < rows * cols; i++) {
      let best = 0;
      let pmax = -1;
      for (let c = 0; c < k; c++) {
        const p = grids[c].q[i] / 255;
        if (p > pmax) {
          pmax = p;
          best = c;
        }
      }
      // white where the network is unsure (pmax = 1/k), the class colour where it is sure
      const sure = discretize ? 0.55 : 0.75 * Math.max(0, (pmax - 1 / k) / (1 - 1 / k));
      const rgb = CLASS_RGB[best];
      for (let ch = 0; ch < 3; ch++) img.data[4 * i + ch] = Math.round(255 + (rgb[ch] - 255) * sure);
      img.data[4 * i + 3] = 255;
    }
    octx.putImageData(img, 0, 0);
    off.discretize = discretize;
    return off;
  }

  // --- coordinates ---------------------------------------------------------------------------
  size() {
    const r = this.canvas.getBoundingClientRect();
    return [r.width, r.height];
  }

  toPixel(x, y) {
    const [w, h] = this.size();
    const [x0, x1, y0, y1] = this.domain;
    return [((x - x0) / (x1 - x0)) * w, ((y1 - y) / (y1 - y0)) * h];
  }

  toData(px, py) {
    const [w, h] = this.size();
    const [x0, x1, y0, y1] = this.domain;
    return [x0 + (px / w) * (x1 - x0), y1 - (py / h) * (y1 - y0)];
  }

  /** Index of the point nearest to the pixel (within PICK_RADIUS), or null. */
  hit(px, py) {
    if (!this.data) return null;
    let best = null;
    let bestD = PICK_RADIUS * PICK_RADIUS;
    this.data.points.forEach((p, i) => {
      const [qx, qy] = this.toPixel(p[0], p[1]);
      const d = (qx - px) ** 2 + (qy - py) ** 2;
      if (d <= bestD) {
        bestD = d;
        best = i;
      }
    });
    return best;
  }

  // --- input ---------------------------------------------------------------------------------
  listen() {
    const c = this.canvas;
    const local = (ev) => {
      const r = c.getBoundingClientRect();
      return [ev.clientX - r.left, ev.clientY - r.top];
    };
    c.addEventListener("pointerdown", (ev) => {
      const [px, py] = local(ev);
      if (this.tool === "pan") {
        this.drag = { px, py, domain: this.domain.slice() };
        c.setPointerCapture(ev.pointerId);
        return;
      }
      const [x, y] = this.toData(px, py);
      if (this.tool.startsWith("add")) this.cb.add(x, y, Number(this.tool.slice(3) || 0));
      else if (this.tool === "remove") {
        const i = this.hit(px, py);
        if (i !== null) this.cb.remove(i);
      } else if (this.tool === "pick") {
        const i = this.hit(px, py);
        if (i !== null) this.cb.pick(i);
      }
    });
    c.addEventListener("pointermove", (ev) => {
      if (!this.drag) return;
      const [px, py] = local(ev);
      const [w, h] = this.size();
      const [x0, x1, y0, y1] = this.drag.domain;
      const dx = ((px - this.drag.px) / w) * (x1 - x0);
      const dy = ((py - this.drag.py) / h) * (y1 - y0);
      this.domain = [x0 - dx, x1 - dx, y0 + dy, y1 + dy];
      this.draw();
    });
    const end = () => {
      if (!this.drag) return;
      const moved = this.drag.domain.join() !== this.domain.join();
      this.drag = null;
      if (moved) this.cb.domain(this.domain.slice());
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        const [px, py] = local(ev);
        this.zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, px, py);
      },
      { passive: false },
    );
    // keyboard: arrows pan, + and - zoom (the canvas is focusable)
    c.addEventListener("keydown", (ev) => {
      const [w, h] = this.size();
      const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
      if (ev.key in moves) {
        const [mx, my] = moves[ev.key];
        const [x0, x1, y0, y1] = this.domain;
        const sx = 0.1 * (x1 - x0) * mx;
        const sy = 0.1 * (y1 - y0) * my;
        this.domain = [x0 + sx, x1 + sx, y0 + sy, y1 + sy];
        this.draw();
        this.scheduleDomain();
      } else if (ev.key === "+" || ev.key === "=") this.zoom(1 / 1.15, w / 2, h / 2);
      else if (ev.key === "-") this.zoom(1.15, w / 2, h / 2);
      else return;
      ev.preventDefault();
    });
  }

  zoom(factor, px, py) {
    const [cx, cy] = this.toData(px, py);
    const [x0, x1, y0, y1] = this.domain;
    this.domain = [cx + (x0 - cx) * factor, cx + (x1 - cx) * factor, cy + (y0 - cy) * factor, cy + (y1 - cy) * factor];
    this.draw();
    this.scheduleDomain();
  }

  scheduleDomain() {
    clearTimeout(this.zoomTimer);
    this.zoomTimer = setTimeout(() => this.cb.domain(this.domain.slice()), 250);
  }

  // --- drawing -------------------------------------------------------------------------------
  draw() {
    const [w, h] = this.size();
    if (w === 0 || h === 0) return;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    if (!this.data) return;
    if (this.regions && this.gridDomain) {
      const [gx0, gx1, gy0, gy1] = this.gridDomain;
      const [ax, ay] = this.toPixel(gx0, gy1);
      const [bx, by] = this.toPixel(gx1, gy0);
      ctx.imageSmoothingEnabled = !this.regions.discretize;
      ctx.drawImage(this.regions, ax, ay, bx - ax, by - ay);
    }
    this.drawAxes(w, h);
    if (this.view && this.view.curve) this.drawCurve(this.view.curve);
    this.drawPoints();
  }

  drawAxes(w, h) {
    const ctx = this.ctx;
    const [x0, x1, y0, y1] = this.domain;
    ctx.strokeStyle = "rgba(0,0,0,0.35)";
    ctx.lineWidth = 1;
    ctx.fillStyle = "#333";
    ctx.font = "11px system-ui, sans-serif";
    const ticks = (lo, hi) => {
      const step = niceStep((hi - lo) / 5);
      const out = [];
      for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.abs(v) < step * 1e-6 ? 0 : v);
      return out;
    };
    // zero lines
    ctx.beginPath();
    if (x0 < 0 && x1 > 0) {
      const [zx] = this.toPixel(0, 0);
      ctx.moveTo(zx, 0);
      ctx.lineTo(zx, h);
    }
    if (y0 < 0 && y1 > 0) {
      const [, zy] = this.toPixel(0, 0);
      ctx.moveTo(0, zy);
      ctx.lineTo(w, zy);
    }
    ctx.stroke();
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    for (const v of ticks(x0, x1)) {
      const [px] = this.toPixel(v, 0);
      if (px < 14 || px > w - 14) continue;
      ctx.fillRect(px, h - 4, 1, 4);
      ctx.fillText(fmt(v, 3), px, h - 5);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const v of ticks(y0, y1)) {
      const [, py] = this.toPixel(0, v);
      if (py < 10 || py > h - 20) continue;
      ctx.fillRect(0, py, 4, 1);
      ctx.fillText(fmt(v, 3), 6, py);
    }
  }

  drawCurve(curve) {
    const ctx = this.ctx;
    ctx.strokeStyle = "#1d4ed8";
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    curve.x.forEach((x, i) => {
      const [px, py] = this.toPixel(x, curve.y[i]);
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.stroke();
  }

  drawPoints() {
    const ctx = this.ctx;
    const regression = this.data.task === "regression";
    this.data.points.forEach((p, i) => {
      const test = this.data.split[i] === 1;
      if (test && !this.showTest) return;
      const [px, py] = this.toPixel(p[0], p[1]);
      const rgb = regression ? [30, 30, 30] : CLASS_RGB[p[2]];
      ctx.beginPath();
      ctx.arc(px, py, POINT_RADIUS, 0, 2 * Math.PI);
      if (test) {
        // test points: white centre, coloured ring
        ctx.fillStyle = "#fff";
        ctx.fill();
        ctx.lineWidth = 2.5;
        ctx.strokeStyle = `rgb(${rgb})`;
      } else {
        ctx.fillStyle = `rgb(${rgb})`;
        ctx.fill();
        ctx.lineWidth = 1.2;
        ctx.strokeStyle = "#fff";
      }
      ctx.stroke();
    });
    if (this.selected !== null && this.selected < this.data.points.length) {
      const p = this.data.points[this.selected];
      const [px, py] = this.toPixel(p[0], p[1]);
      ctx.beginPath();
      ctx.arc(px, py, POINT_RADIUS + 5, 0, 2 * Math.PI);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = "#111";
      ctx.setLineDash([3, 2]);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }
}

export function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}
