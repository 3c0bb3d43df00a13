// Grids as the server sends them (PROTOCOL.md, "A grid"): base64 of rows*cols bytes q,
// row 0 at the top (y = y_max); the value is lo + (hi - lo) * q / 255.

export function decodeGrid(grid) {
  const bin = atob(grid.data);
  const [rows, cols] = grid.shape;
  const q = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) q[i] = bin.charCodeAt(i);
  return { rows, cols, lo: grid.lo, hi: grid.hi, q };
}

/** The value of cell i of a decoded grid. */
export function gridValue(g, i) {
  return g.lo + ((g.hi - g.lo) * g.q[i]) / 255;
}

export const CLASS_RGB = [
  [214, 57, 46], // red, label 0
  [46, 158, 68], // green, label 1
  [47, 111, 214], // blue, label 2
];
export const CLASS_NAMES = ["red", "green", "blue"];

// Diverging map for neuron activations and weights: negative orange, positive blue.
const NEG = [232, 125, 38];
const POS = [40, 110, 190];
const MID = [247, 247, 247];

/** Colour for t in [-1, 1] (clamped): orange below 0, white at 0, blue above. */
export function diverging(t) {
  const s = Math.max(-1, Math.min(1, t));
  const end = s < 0 ? NEG : POS;
  const a = Math.abs(s);
  return [0, 1, 2].map((i) => Math.round(MID[i] + (end[i] - MID[i]) * a));
}

/** Centre and half-width of an activation's output, so colours mean the same value everywhere. */
export function activationRange(activation, lo, hi) {
  if (activation === "sigmoid") return [0.5, 0.5];
  if (activation === "tanh") return [0, 1];
  const half = Math.max(Math.abs(lo), Math.abs(hi), 1e-9);
  return [0, half];
}

/** Format a number for display: 5 significant digits at most, no trailing zeros. */
export function fmt(v, digits = 5) {
  if (v === null || v === undefined) return "—";
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-4) return v.toExponential(Math.max(0, digits - 2)).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(digits)));
}
