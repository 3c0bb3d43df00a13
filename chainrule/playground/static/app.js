// The playground page: wires the controls to the server (PROTOCOL.md) and draws what it sends.

import { HistoryChart } from "./charts.js";
import { fmt } from "./grid.js";
import { FEATURE_LABELS, NetworkView } from "./network.js";
import { Plane } from "./plane.js";
import { Connection } from "./socket.js";
import { decodeHash, encodeHash } from "./state.js";
import { Stepper } from "./stepper.js";
import { fitDomain, parseCsv, PointsTable, renderWeights, toCsv } from "./table.js";

const $ = (id) => document.getElementById(id);
const FEATURES = {
  classification: ["x1", "x2", "x1sq", "x2sq", "x1x2", "sin_x1", "sin_x2"],
  regression: ["x1", "x1sq", "sin_x1"],
};
const DEFAULT_PRESET = { classification: "xor", regression: "sine" };

const app = {
  config: null,
  data: null,
  view: null,
  animating: false,
  presets: [],
  preset: "xor",
  restoring: null, // the link's scene, applied once after the first state
};

const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const conn = new Connection(wsUrl);
// The tests (and the curious) reach the connection from the console.
window.playground = { conn, app };

// --- alerts and status ---------------------------------------------------------------------------
function showAlert(text) {
  $("alert").textContent = text;
}
function clearAlert() {
  $("alert").textContent = "";
}

/** Send a message from a user action: a fresh action clears the last error. */
function send(msg) {
  clearAlert();
  try {
    return conn.send(msg);
  } catch (err) {
    showAlert(`Cannot send: ${err.message}`);
    return null;
  }
}

function renderStatus() {
  const v = app.view;
  if (!v) return;
  let k = 0;
  let n = 0;
  if (v.correct) {
    for (const part of ["train", "test"]) {
      k += v.correct[part][0];
      n += v.correct[part][1];
    }
    $("status").textContent = `Correct: ${k}/${n} — Iteration: ${v.iteration}`;
  } else {
    $("status").textContent = `Points: ${app.data.points.length} — Iteration: ${v.iteration}`;
  }
  const test = v.loss.test === null ? "" : ` · test ${fmt(v.loss.test)}`;
  let extra = "";
  if (v.correct && v.correct.test[1] > 0) extra = ` · test correct ${v.correct.test[0]}/${v.correct.test[1]}`;
  $("loss").textContent = `Loss: train ${fmt(v.loss.train)}${test}${extra}`;
}

// --- drawing ---------------------------------------------------------------------------------------
const plane = new Plane($("plane"), {
  add(x, y, label) {
    const point = app.data.task === "regression" ? [x, y] : [x, y, label];
    send({ type: "add_point", point });
  },
  remove(index) {
    send({ type: "remove_point", index });
  },
  pick(index) {
    stepper.select(index);
  },
  domain(domain) {
    send({ type: "data", points: app.data.points, domain });
  },
});
const network = new NetworkView($("network"), $("tip"));
const history = new HistoryChart($("history"));
const points = new PointsTable($("points"), $("points-note"), {
  edit(pts) {
    send({ type: "data", points: pts, domain: app.data.domain });
  },
  remove(index) {
    send({ type: "remove_point", index });
  },
});
const stepper = new Stepper({ send, plane, network, panel: $("step-body"), app, showAlert });

let weightsTimer = null;
function drawView() {
  const { config, data, view } = app;
  plane.update(config, data, view);
  network.update(config, data, view);
  history.update(view.history);
  renderStatus();
  // the table is text: at animation speed once every 200 ms is all anyone can read
  if (weightsTimer === null) {
    weightsTimer = setTimeout(() => {
      weightsTimer = null;
      renderWeights($("weights"), app.config, app.view);
    }, 200);
  }
  stepper.check();
}

function applyState(msg) {
  app.config = msg.config;
  app.data = msg.data;
  app.view = msg.view;
  setAnimating(msg.animating);
  syncControls();
  points.update(app.data);
  drawView();
  if (msg.view.diverged) showAlert("Training diverged (NaN or inf): stopped. Lower the learning rate or press Reset.");
  history_replace();
}

function history_replace() {
  const hash = encodeHash(app.config, app.data);
  if (hash !== location.hash) window.history.replaceState(null, "", hash);
}

function setAnimating(on) {
  app.animating = on;
  $("animate").textContent = on ? "Stop" : "Animate";
}

// --- the controls show the config ------------------------------------------------------------------
function syncControls() {
  const c = app.config;
  const task = app.data.task;
  $(`task-${task}`).checked = true;
  for (const t of ["classification", "regression"]) $(`presets-${t}`).hidden = t !== task;
  for (const b of document.querySelectorAll("[data-tool].cls")) b.hidden = task === "regression";
  for (const b of document.querySelectorAll("[data-tool].reg")) b.hidden = task !== "regression";
  $("layers-count").textContent = String(c.hidden.length);
  renderLayerRows(c.hidden);
  setValue("activation", c.activation);
  setValue("loss-fn", c.loss);
  for (const o of $("loss-fn").options) o.disabled = task === "regression" && o.value !== "mse";
  setValue("optimizer", c.optimizer);
  setValue("lr", String(c.lr));
  setValue("batch", c.batch_size === null ? "" : String(c.batch_size));
  setValue("l2", String(c.l2));
  setValue("seed", String(c.seed));
  setValue("test-fraction", String(c.test_fraction));
  $("discretize").checked = c.discretize;
  renderFeatures(task, c.features);
}

function setValue(id, v) {
  const e = $(id);
  if (document.activeElement !== e && e.value !== v) e.value = v;
}

function renderLayerRows(hidden) {
  const box = $("layer-rows");
  const key = hidden.join(",");
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren();
  hidden.forEach((n, l) => {
    const row = document.createElement("div");
    row.className = "row layer";
    row.setAttribute("role", "group");
    const label = document.createElement("span");
    label.id = `layer-${l + 1}-label`;
    label.textContent = `Layer ${l + 1}: ${n} neurons`;
    row.setAttribute("aria-labelledby", label.id);
    const plus = button("+", () => configure({ hidden: hidden.map((m, i) => (i === l ? m + 1 : m)) }));
    const minus = button("-", () => configure({ hidden: hidden.map((m, i) => (i === l ? m - 1 : m)) }));
    minus.disabled = n <= 1;
    row.append(label, plus, minus);
    box.appendChild(row);
  });
}

function renderFeatures(task, chosen) {
  const box = $("features");
  const key = `${task}:${chosen.join(",")}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  for (const e of box.querySelectorAll("span.feature")) e.remove();
  for (const f of FEATURES[task]) {
    const span = document.createElement("span");
    span.className = "feature";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = `feature-${f}`;
    input.checked = chosen.includes(f);
    input.addEventListener("change", () => {
      const features = FEATURES[task].filter((g) => $(`feature-${g}`).checked);
      configure({ features });
    });
    const label = document.createElement("label");
    label.htmlFor = input.id;
    label.textContent = FEATURE_LABELS[f];
    span.append(input, label);
    box.appendChild(span);
  }
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "small";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function configure(fields) {
  send({ type: "config", ...fields });
}

// --- wiring ----------------------------------------------------------------------------------------
function numberInput(id, fn) {
  $(id).addEventListener("change", () => {
    const raw = $(id).value.trim();
    const v = Number(raw);
    if (raw === "" || !Number.isFinite(v)) {
      showAlert(`${$(id).labels[0].textContent}: enter a number`);
      syncControls();
      return;
    }
    fn(v);
  });
}

function wire() {
  for (const r of document.querySelectorAll("input[name=task]")) {
    r.addEventListener("change", () => loadPreset(DEFAULT_PRESET[r.value], true));
  }
  for (const b of document.querySelectorAll("[data-tool]")) {
    b.addEventListener("click", () => {
      for (const o of document.querySelectorAll("[data-tool]")) o.setAttribute("aria-pressed", String(o === b));
      plane.setTool(b.dataset.tool);
    });
  }
  $("fit-view").addEventListener("click", () => {
    if (app.data.points.length) send({ type: "data", points: app.data.points, domain: fitDomain(app.data.points) });
  });
  $("layer-add").addEventListener("click", () => {
    const h = app.config.hidden;
    configure({ hidden: [...h, h.length ? h[h.length - 1] : 4] });
  });
  $("layer-remove").addEventListener("click", () => configure({ hidden: app.config.hidden.slice(0, -1) }));
  $("activation").addEventListener("change", () => configure({ activation: $("activation").value }));
  $("loss-fn").addEventListener("change", () => configure({ loss: $("loss-fn").value }));
  $("optimizer").addEventListener("change", () => configure({ optimizer: $("optimizer").value }));
  numberInput("lr", (lr) => configure({ lr }));
  numberInput("l2", (l2) => configure({ l2 }));
  numberInput("seed", (seed) => configure({ seed }));
  numberInput("test-fraction", (test_fraction) => configure({ test_fraction }));
  $("batch").addEventListener("change", () => {
    const raw = $("batch").value.trim();
    configure({ batch_size: raw === "" ? null : Number(raw) });
  });
  $("discretize").addEventListener("change", () => configure({ discretize: $("discretize").checked }));
  $("show-test").addEventListener("change", () => {
    plane.showTest = $("show-test").checked;
    plane.draw();
  });
  numberInput("size", () => loadPreset(app.preset, false));
  numberInput("noise", () => loadPreset(app.preset, false));

  $("train").addEventListener("click", () => send({ type: "train", steps: Number($("iterations").value) || 100 }));
  $("step").addEventListener("click", () => send({ type: "step" }));
  $("reset").addEventListener("click", () => send({ type: "reset" }));
  $("animate").addEventListener("click", () => {
    const running = !app.animating;
    setAnimating(running);
    const msg = { type: "animate", running };
    if (running) msg.steps_per_frame = Number($("steps-per-frame").value) || 10;
    send(msg);
  });
  numberInput("steps-per-frame", (steps_per_frame) => {
    if (app.animating) send({ type: "animate", running: true, steps_per_frame });
  });
  $("forward").addEventListener("click", () => stepper.press("forward"));
  $("backward").addEventListener("click", () => stepper.press("backward"));

  $("add-row").addEventListener("click", () => {
    const [x0, x1, y0, y1] = app.data.domain;
    const c = [(x0 + x1) / 2, (y0 + y1) / 2];
    send({ type: "add_point", point: app.data.task === "regression" ? c : [...c, 0] });
  });
  $("show-csv").addEventListener("click", () => ($("csv").value = toCsv(app.data)));
  $("import-csv").addEventListener("click", importCsv);
  $("csv-file").addEventListener("change", async () => {
    const f = $("csv-file").files[0];
    if (!f) return;
    $("csv").value = await f.text();
    importCsv();
  });
  $("export").addEventListener("click", () => exportScene().catch((e) => showAlert(`Export: ${e.message}`)));
  $("download").addEventListener("click", () =>
    exportScene()
      .then((text) => download(text))
      .catch((e) => showAlert(`Export: ${e.message}`)),
  );
  $("import").addEventListener("click", importScene);
  $("scene-file").addEventListener("change", async () => {
    const f = $("scene-file").files[0];
    if (!f) return;
    $("scene-json").value = await f.text();
    importScene();
  });
}

function loadPreset(name, useDefaults) {
  const p = app.presets.find((q) => q.name === name);
  app.preset = name;
  if (useDefaults && p) {
    $("size").value = String(p.n);
    $("noise").value = String(p.noise);
  }
  const msg = { type: "preset", name, seed: app.config ? app.config.seed : 0 };
  const n = Number($("size").value);
  const noise = Number($("noise").value);
  if (Number.isInteger(n) && n >= 4) msg.n = n;
  if (Number.isFinite(noise)) msg.noise = noise;
  send(msg);
  stepper.clear();
}

function renderPresets(presets) {
  app.presets = presets;
  for (const task of ["classification", "regression"]) {
    const box = $(`presets-${task}`);
    box.replaceChildren();
    for (const p of presets.filter((q) => q.task === task)) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = p.label;
      b.dataset.preset = p.name;
      b.addEventListener("click", () => loadPreset(p.name, true));
      box.appendChild(b);
    }
  }
}

function importCsv() {
  try {
    const pts = parseCsv($("csv").value, app.data.task);
    send({ type: "data", task: app.data.task, points: pts, domain: fitDomain(pts) });
  } catch (e) {
    showAlert(e.message);
  }
}

async function exportScene() {
  const reply = await conn.request({ type: "export" });
  const text = JSON.stringify(reply.scene, null, 1);
  $("scene-json").value = text;
  return text;
}

function importScene() {
  let scene;
  try {
    scene = JSON.parse($("scene-json").value);
  } catch (e) {
    showAlert(`Scene JSON is not valid JSON: ${e.message}`);
    return;
  }
  send({ type: "import", scene });
  stepper.clear();
}

function download(text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = "playground-scene.json";
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// --- the connection --------------------------------------------------------------------------------
conn.on("open", () => {
  $("connection").textContent = "Connected";
  $("connection").dataset.state = "open";
  conn.send({ type: "presets" });
  conn.send({ type: "hello" });
  // a link with a scene: the points and config of the link replace the default scene
  let link = null;
  try {
    link = decodeHash(location.hash);
  } catch (e) {
    showAlert(e.message);
  }
  if (link) {
    if (link.data) conn.send({ type: "data", ...link.data, task: link.data.task || "classification" });
    if (Object.keys(link.config).length) conn.send({ type: "config", ...link.config });
  }
});
conn.on("close", () => {
  $("connection").textContent = "Disconnected: reconnecting…";
  $("connection").dataset.state = "closed";
  setAnimating(false);
  setTimeout(() => conn.connect(), 1500);
});
conn.on("presets", (msg) => renderPresets(msg.presets));
conn.on("state", applyState);
conn.on("frame", (frame) => {
  const { id: _id, type: _type, ...view } = frame;
  app.view = view;
  drawView();
});
conn.on("error", (msg) => {
  showAlert(`Error${msg.for ? ` in ${msg.for}` : ""}: ${msg.message}`);
  if (app.config) syncControls();
});
conn.on("diverged", (msg) => {
  setAnimating(false);
  showAlert(`Diverged at iteration ${msg.iteration}: ${msg.message}`);
});
conn.on("forward_step", (msg) => stepper.receive("forward", msg));
conn.on("backward_step", (msg) => stepper.receive("backward", msg));

wire();
conn.connect();
