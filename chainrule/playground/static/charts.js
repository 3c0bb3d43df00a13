// The error history: training and test loss against the iteration, on a canvas.

import { fmt } from "./grid.js";
import { niceStep } from "./plane.js";

export class HistoryChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.history = [];
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  update(history) {
    this.history = history || [];
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const r = c.getBoundingClientRect();
    const w = r.width;
    const h = r.height;
    if (w === 0 || h === 0) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    const pad = { l: 46, r: 10, t: 20, b: 22 };
    const hist = this.history;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#333";
    if (hist.length === 0) {
      ctx.fillText("No training yet", pad.l, pad.t + 14);
      return;
    }
    const itMax = Math.max(1, hist[hist.length - 1][0]);
    let lMax = 0;
    for (const [, tr, te] of hist) lMax = Math.max(lMax, tr ?? 0, te ?? 0);
    if (lMax <= 0) lMax = 1;
    const step = niceStep(lMax / 4);
    lMax = Math.ceil(lMax / step - 1e-9) * step;
    const X = (it) => pad.l + ((w - pad.l - pad.r) * it) / itMax;
    const Y = (v) => h - pad.b - ((h - pad.t - pad.b) * v) / lMax;
    // axes and ticks
    ctx.strokeStyle = "#ccc";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = 0; v <= lMax + 1e-9; v += step) {
      ctx.beginPath();
      ctx.moveTo(pad.l, Y(v));
      ctx.lineTo(w - pad.r, Y(v));
      ctx.stroke();
      ctx.fillText(fmt(v, 3), pad.l - 4, Y(v));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const xs = Math.max(1, niceStep(itMax / 4));
    for (let it = 0; it <= itMax; it += xs) {
      // keep the last label inside the canvas
      ctx.textAlign = X(it) > w - pad.r - 16 ? "right" : "center";
      ctx.fillText(fmt(it, 6), Math.min(X(it), w - 2), h - pad.b + 4);
    }
    // lines
    const line = (idx, colour, dash) => {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.setLineDash(dash);
      ctx.beginPath();
      let started = false;
      for (const row of hist) {
        const v = row[idx];
        if (v === null || v === undefined) continue;
        if (!started) ctx.moveTo(X(row[0]), Y(v));
        else ctx.lineTo(X(row[0]), Y(v));
        started = true;
      }
      ctx.stroke();
      ctx.setLineDash([]);
      return started;
    };
    const hasTrain = line(1, "#1f2937", []);
    const hasTest = line(2, "#dd7a25", [5, 3]);
    // legend
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    let lx = pad.l + 4;
    const legend = (colour, dash, text) => {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.setLineDash(dash);
      ctx.beginPath();
      ctx.moveTo(lx, 9);
      ctx.lineTo(lx + 18, 9);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#333";
      ctx.fillText(text, lx + 22, 9);
      lx += 30 + ctx.measureText(text).width;
    };
    if (hasTrain) legend("#1f2937", [], "train loss");
    if (hasTest) legend("#dd7a25", [5, 3], "test loss");
  }
}
