// The state of Forward pass step / Backward pass step: which point, the server's numbers for it,
// and where the walk is. The numbers are stale (and dropped) once the weights or the points change.

import { backwardStep, forwardStep, renderStep, walkOrder } from "./steps.js";

export class Stepper {
  constructor({ send, plane, network, panel, app, showAlert }) {
    this.send = send;
    this.plane = plane;
    this.network = network;
    this.panel = panel;
    this.app = app;
    this.showAlert = showAlert;
    this.clear();
  }

  clear() {
    this.index = null; // the point being walked
    this.forward = null;
    this.backward = null;
    this.kind = null;
    this.pos = -1;
    this.waiting = null; // "forward" or "backward" while a request is out
    this.signature = null;
    if (this.network) this.network.setOverlay(null);
  }

  // What the numbers depend on: the weights and the points.
  currentSignature() {
    const { view, data } = this.app;
    return view && data ? JSON.stringify([view.layers, data.points.length, data.task]) : null;
  }

  /** Called after every state or frame: drop the walk if the weights or points changed. */
  check() {
    if (this.signature !== null && this.signature !== this.currentSignature()) {
      const keep = this.index !== null && this.index < this.app.data.points.length ? this.index : null;
      this.clear();
      this.select(keep, false);
    }
  }

  select(index, announce = true) {
    const changed = index !== this.index;
    if (changed) {
      this.forward = null;
      this.backward = null;
      this.pos = -1;
      this.network.setOverlay(null);
    }
    this.index = index;
    this.plane.selected = index;
    this.plane.draw();
    if (announce && index !== null) {
      const p = this.app.data.points[index];
      const where = p.map((v) => Number(v.toPrecision(4))).join(", ");
      this.panel.replaceChildren(para(`Point ${index + 1} picked (${where}). Press Forward pass step or Backward pass step.`));
    }
  }

  press(kind) {
    if (!this.app.data || this.app.data.points.length === 0) {
      this.showAlert("Add a point first: the steps walk one point through the network.");
      return;
    }
    if (this.index === null || this.index >= this.app.data.points.length) this.select(0, false);
    if (this.waiting) return;
    const fresh = this.signature === this.currentSignature();
    if (!fresh || !this.forward) {
      this.forward = null;
      this.backward = null;
    }
    if (this.kind !== kind) this.pos = -1;
    this.kind = kind;
    if (!this.forward) {
      this.request("forward");
      return;
    }
    if (kind === "backward" && !this.backward) {
      this.request("backward");
      return;
    }
    this.advance();
  }

  request(what) {
    this.waiting = what;
    const id = this.send({ type: what, index: this.index });
    if (id === null) this.waiting = null;
  }

  receive(what, msg) {
    if (msg.index !== this.index) return;
    this.waiting = null;
    this[what] = msg;
    this.signature = this.currentSignature();
    if (this.kind === "backward" && !this.backward) {
      this.request("backward");
      return;
    }
    this.pos = -1;
    this.advance();
  }

  advance() {
    const order = walkOrder(this.forward, this.kind);
    this.pos = (this.pos + 1) % order.length;
    const [l, j] = order[this.pos];
    const features = this.app.config.features;
    let step;
    if (this.kind === "forward") {
      step = forwardStep(this.forward, features, l, j, this.app.data.task);
      const last = this.forward.layers.length - 1;
      const overlay = l === "output" ? { layer: last, neuron: this.forward.layers[last].neurons.length - 1 } : { layer: l, neuron: j };
      this.network.setOverlay({ kind: "forward", forward: this.forward, ...overlay, done: l === "output" });
    } else {
      step = backwardStep(this.forward, this.backward, features, l, j);
      this.network.setOverlay({ kind: "backward", forward: this.forward, backward: this.backward, layer: l, neuron: j });
    }
    renderStep(this.panel, step, this.pos + 1, order.length);
  }
}

function para(text) {
  const p = document.createElement("p");
  p.textContent = text;
  return p;
}
