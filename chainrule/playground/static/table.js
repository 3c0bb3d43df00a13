// The points table (add, edit, delete rows; CSV in and out) and the weights table.

import { CLASS_NAMES, fmt } from "./grid.js";
import { neuronName } from "./network.js";

const MAX_ROWS = 300; // rows shown in the editor; the rest are kept, and said so

function h(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

/**
 * Parse CSV text into points. Columns: x, y and, for classification, the class (0/1/2 or
 * red/green/blue). A first line that is not numbers is a header. Throws an Error naming the line.
 */
export function parseCsv(text, task) {
  const points = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const cells = line.split(/[,;\t]/).map((s) => s.trim());
    if (i === 0 && cells.some((s) => s !== "" && Number.isNaN(Number(s)) && !CLASS_NAMES.includes(s.toLowerCase()))) {
      return; // header
    }
    const want = task === "regression" ? 2 : 3;
    if (cells.length < want) throw new Error(`CSV line ${i + 1}: expected ${want} columns, got ${cells.length}`);
    const x = Number(cells[0]);
    const y = Number(cells[1]);
    if (!Number.isFinite(x) || !Number.isFinite(y) || cells[0] === "" || cells[1] === "") {
      throw new Error(`CSV line ${i + 1}: x and y must be numbers, got "${cells[0]}", "${cells[1]}"`);
    }
    if (task === "regression") {
      points.push([x, y]);
      return;
    }
    const named = CLASS_NAMES.indexOf(cells[2].toLowerCase());
    const label = named >= 0 ? named : Number(cells[2]);
    if (![0, 1, 2].includes(label)) throw new Error(`CSV line ${i + 1}: class must be 0, 1, 2 or red, green, blue`);
    points.push([x, y, label]);
  });
  if (points.length === 0) throw new Error("CSV: no points found");
  return points;
}

/** A domain that shows all points with a margin (for data that comes without one). */
export function fitDomain(points) {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const p of points) {
    x0 = Math.min(x0, p[0]);
    x1 = Math.max(x1, p[0]);
    y0 = Math.min(y0, p[1]);
    y1 = Math.max(y1, p[1]);
  }
  const mx = Math.max(0.25, 0.15 * (x1 - x0));
  const my = Math.max(0.25, 0.15 * (y1 - y0));
  return [x0 - mx, x1 + mx, y0 - my, y1 + my];
}

export class PointsTable {
  /** cb: {edit(points), remove(index), add()} */
  constructor(table, note, cb) {
    this.table = table;
    this.note = note;
    this.cb = cb;
    this.key = null;
  }

  update(data) {
    const key = JSON.stringify([data.task, data.points, data.split]);
    if (key === this.key) return;
    this.key = key;
    const regression = data.task === "regression";
    const t = this.table;
    t.replaceChildren();
    const head = h("thead");
    const hr = h("tr");
    const cols = regression ? ["#", "x", "y", "set", ""] : ["#", "x", "y", "class", "set", ""];
    cols.forEach((c) => hr.appendChild(h("th", { scope: "col", id: `pt-col-${c || "del"}` }, c)));
    head.appendChild(hr);
    t.appendChild(head);
    const body = h("tbody");
    const shown = data.points.slice(0, MAX_ROWS);
    shown.forEach((p, i) => {
      const tr = h("tr");
      tr.appendChild(h("th", { scope: "row" }, String(i + 1)));
      [0, 1].forEach((d) => {
        const td = h("td");
        const inp = h("input", { type: "number", step: "any", "aria-labelledby": `pt-col-${d === 0 ? "x" : "y"}` });
        inp.value = String(p[d]);
        inp.addEventListener("change", () => {
          const v = Number(inp.value);
          if (inp.value === "" || !Number.isFinite(v)) return;
          const pts = data.points.map((q) => q.slice());
          pts[i][d] = v;
          this.cb.edit(pts);
        });
        td.appendChild(inp);
        tr.appendChild(td);
      });
      if (!regression) {
        const td = h("td");
        const sel = h("select", { "aria-labelledby": "pt-col-class" });
        CLASS_NAMES.forEach((name, c) => {
          const o = h("option", { value: String(c) }, name);
          if (p[2] === c) o.selected = true;
          sel.appendChild(o);
        });
        sel.addEventListener("change", () => {
          const pts = data.points.map((q) => q.slice());
          pts[i][2] = Number(sel.value);
          this.cb.edit(pts);
        });
        td.appendChild(sel);
        tr.appendChild(td);
      }
      tr.appendChild(h("td", {}, data.split[i] === 1 ? "test" : "train"));
      const td = h("td");
      const del = h("button", { type: "button", class: "small" }, "Delete");
      del.addEventListener("click", () => this.cb.remove(i));
      td.appendChild(del);
      tr.appendChild(td);
      body.appendChild(tr);
    });
    t.appendChild(body);
    const n = data.points.length;
    this.note.textContent = n > MAX_ROWS ? `Showing the first ${MAX_ROWS} of ${n} points.` : `${n} points.`;
  }
}

/** CSV text of the points, the inverse of parseCsv. */
export function toCsv(data) {
  const regression = data.task === "regression";
  const lines = [regression ? "x,y" : "x,y,class"];
  for (const p of data.points) lines.push(p.join(","));
  return lines.join("\n") + "\n";
}

/** The weights table: one table per layer, rows = neurons, columns = inputs and the bias. */
export function renderWeights(container, config, view) {
  const sizes = view.sizes;
  const frag = document.createDocumentFragment();
  view.layers.forEach((L, l) => {
    const t = h("table", { class: "weights" });
    const from = l === 0 ? "inputs" : `layer ${l}`;
    const to = l === view.layers.length - 1 ? "output" : `layer ${l + 1}`;
    t.appendChild(h("caption", {}, `Weights ${from} → ${to}`));
    const hr = h("tr");
    hr.appendChild(h("th", { scope: "col" }, ""));
    for (let k = 0; k < sizes[l]; k++) hr.appendChild(h("th", { scope: "col" }, neuronName(sizes, config.features, l, k)));
    hr.appendChild(h("th", { scope: "col" }, "bias"));
    const head = h("thead");
    head.appendChild(hr);
    t.appendChild(head);
    const body = h("tbody");
    L.weight.forEach((row, j) => {
      const tr = h("tr");
      tr.appendChild(h("th", { scope: "row" }, neuronName(sizes, config.features, l + 1, j)));
      row.forEach((w) => tr.appendChild(h("td", { class: w < 0 ? "neg" : "pos" }, fmt(w))));
      tr.appendChild(h("td", { class: L.bias[j] < 0 ? "neg" : "pos" }, fmt(L.bias[j])));
      body.appendChild(tr);
    });
    t.appendChild(body);
    frag.appendChild(t);
  });
  container.replaceChildren(frag);
}
