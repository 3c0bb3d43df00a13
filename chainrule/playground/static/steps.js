// Forward pass step and Backward pass step: walk one point through the network neuron by
// neuron, with the numbers the server computed with the engine (`forward_step`, `backward_step`).

import { CLASS_NAMES, fmt } from "./grid.js";
import { neuronName } from "./network.js";

const ACT_NAMES = {
  sigmoid: "sigmoid",
  tanh: "tanh",
  relu: "ReLU",
  leaky_relu: "Leaky ReLU",
  elu: "ELU",
  linear: "identity",
  softmax: "softmax",
};

/** The order of the walk: forward visits layers first to last, backward last to first. */
export function walkOrder(fwd, kind) {
  const order = [];
  fwd.layers.forEach((L, l) => L.neurons.forEach((_, j) => order.push([l, j])));
  if (kind === "forward") {
    order.push(["output", null]); // the last step shows the output and the loss
    return order;
  }
  const byLayer = fwd.layers.map((L, l) => L.neurons.map((_, j) => [l, j]));
  return byLayer.reverse().flat();
}

function sizesOf(fwd) {
  return [fwd.features.values.length, ...fwd.layers.map((L) => L.neurons.length)];
}

function inputName(fwd, features, l, k) {
  return neuronName(sizesOf(fwd), features, l, k);
}

function signed(v) {
  return v < 0 ? `(${fmt(v)})` : fmt(v);
}

/** {title, formula, rows: [[name, value], ...]} for one forward step. */
export function forwardStep(fwd, features, l, j, task) {
  if (l === "output") {
    const out = fwd.output;
    const rows = [];
    if (task === "regression") {
      rows.push(["prediction", out.p[0]], ["target", out.target], ["loss", fwd.loss]);
      const formula = [`y = ${fmt(out.p[0])}, target ${fmt(out.target)}`, `loss = ${fmt(fwd.loss)}`];
      return { title: `Point ${fwd.index + 1}: output`, formula, rows };
    }
    out.p.forEach((p, c) => rows.push([out.p.length === 1 ? "p(green)" : `p(${CLASS_NAMES[c]})`, p]));
    rows.push(["loss", fwd.loss]);
    const formula = [
      `predicted ${CLASS_NAMES[out.predicted]}, target ${CLASS_NAMES[out.target]}` +
        (out.predicted === out.target ? " (correct)" : " (wrong)"),
      `loss = ${fmt(fwd.loss)}`,
    ];
    return { title: `Point ${fwd.index + 1}: output and loss`, formula, rows };
  }
  const L = fwd.layers[l];
  const nr = L.neurons[j];
  const name = neuronName(sizesOf(fwd), features, l + 1, j);
  const terms = nr.weights.map((w, k) => `${signed(w)}·${signed(nr.inputs[k])}`);
  const act = ACT_NAMES[L.activation] || L.activation;
  const formula = [`z = ${terms.join(" + ")} + ${signed(nr.bias)} = ${fmt(nr.z)}`, `a = ${act}(z) = ${fmt(nr.a)}`];
  const rows = nr.weights.map((w, k) => [`w (${inputName(fwd, features, l, k)})`, w]);
  rows.push(["bias", nr.bias], ["z", nr.z], ["a", nr.a]);
  return { title: `Forward: neuron ${name}`, formula, rows };
}

/** {title, formula, rows} for one backward step (neuron j of layer l). */
export function backwardStep(fwd, bwd, features, l, j) {
  const nr = bwd.layers[l].neurons[j];
  const name = neuronName(sizesOf(fwd), features, l + 1, j);
  const act = ACT_NAMES[fwd.layers[l].activation] || fwd.layers[l].activation;
  const rows = [];
  const formula = [];
  if (nr.da === null) {
    formula.push(`δ = ∂L/∂z = ${fmt(nr.delta)} (the loss differentiated through ${act} directly)`);
  } else {
    rows.push(["∂L/∂a (upstream)", nr.da], [`∂a/∂z (local, ${act}′)`, nr.local]);
    if (l < fwd.layers.length - 1) {
      // the upstream gradient: every neuron this one feeds sends back weight × its delta
      const next = fwd.layers[l + 1].neurons;
      const terms = next.map((m, i) => `${signed(m.weights[j])}·${signed(bwd.layers[l + 1].neurons[i].delta)}`);
      formula.push(`∂L/∂a = Σ w·δ(next) = ${terms.join(" + ")} = ${fmt(nr.da)}`);
    }
    formula.push(`δ = ∂L/∂a × ∂a/∂z = ${signed(nr.da)} × ${signed(nr.local)} = ${fmt(nr.delta)}`);
  }
  rows.push(["δ = ∂L/∂z", nr.delta]);
  nr.weight_grads.forEach((g, k) => {
    const input = inputName(fwd, features, l, k);
    rows.push([`∂L/∂w (${input})`, g]);
    formula.push(`∂L/∂w(${input}) = δ × ${input} = ${signed(nr.delta)} × ${signed(nr.inputs[k])} = ${fmt(g)}`);
  });
  rows.push(["∂L/∂b", nr.bias_grad]);
  formula.push(`∂L/∂b = δ = ${fmt(nr.bias_grad)}`);
  return { title: `Backward: neuron ${name}`, formula, rows };
}

/** Show a step in the panel: a title, the arithmetic, and a table of the values. */
export function renderStep(panel, step, position, total) {
  const title = document.createElement("h3");
  title.textContent = `${step.title} (step ${position} of ${total})`;
  const formula = document.createElement("p");
  formula.className = "formula";
  step.formula.forEach((line, i) => {
    if (i > 0) formula.appendChild(document.createElement("br"));
    formula.appendChild(document.createTextNode(line));
  });
  const table = document.createElement("table");
  table.className = "step-values";
  const body = document.createElement("tbody");
  for (const [name, value] of step.rows) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    const td = document.createElement("td");
    td.textContent = fmt(value);
    td.dataset.value = String(value);
    tr.append(th, td);
    body.appendChild(tr);
  }
  table.appendChild(body);
  panel.replaceChildren(title, formula, table);
}
