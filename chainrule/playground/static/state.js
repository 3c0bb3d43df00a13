// Configuration and data in the URL hash, so a link reproduces the scene (weights are not in the
// link: they come from the seed, or from an exported scene file).
//
// Form: #task=classification&hidden=4.4&activation=tanh&...&domain=-0.5,1.5,-0.5,1.5&points=0,0,0;1,0,1

const CONFIG_KEYS = {
  task: "str",
  hidden: "ints",
  activation: "str",
  loss: "str",
  optimizer: "str",
  lr: "float",
  batch_size: "int_or_null",
  l2: "float",
  seed: "int",
  features: "strs",
  test_fraction: "float",
  grid: "int",
  discretize: "bool",
};

// A link stays under the length browsers and chat programs keep; beyond it the points are left out.
const MAX_HASH_POINTS = 2000;

function round(v) {
  return String(Number(v.toPrecision(6)));
}

/** The URL hash for a config and data (as in a `state` message). */
export function encodeHash(config, data) {
  const parts = [];
  for (const [key, kind] of Object.entries(CONFIG_KEYS)) {
    const v = config[key];
    if (v === undefined) continue;
    let s;
    if (kind === "ints") s = v.join(".");
    else if (kind === "strs") s = v.join(".");
    else if (kind === "int_or_null") s = v === null ? "full" : String(v);
    else s = String(v);
    parts.push(`${key}=${encodeURIComponent(s)}`);
  }
  if (data) {
    parts.push(`domain=${data.domain.map(round).join(",")}`);
    if (data.points.length <= MAX_HASH_POINTS) {
      parts.push(`points=${data.points.map((p) => p.map(round).join(",")).join(";")}`);
    }
  }
  return "#" + parts.join("&");
}

/**
 * Parse a hash made by encodeHash. Returns {config, data} (data null when the hash has no points),
 * or null when the hash is empty. Throws an Error naming the bad field.
 */
export function decodeHash(hash) {
  const text = hash.replace(/^#/, "");
  if (!text) return null;
  const config = {};
  let domain = null;
  let points = null;
  for (const part of text.split("&")) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new Error(`link: "${part}" is not key=value`);
    const key = part.slice(0, eq);
    const raw = decodeURIComponent(part.slice(eq + 1));
    if (key === "domain") {
      domain = raw.split(",").map(Number);
    } else if (key === "points") {
      points = raw ? raw.split(";").map((p) => p.split(",").map(Number)) : [];
    } else if (key in CONFIG_KEYS) {
      const kind = CONFIG_KEYS[key];
      if (kind === "ints") config[key] = raw ? raw.split(".").map(Number) : [];
      else if (kind === "strs") config[key] = raw.split(".");
      else if (kind === "int_or_null") config[key] = raw === "full" ? null : Number(raw);
      else if (kind === "int" || kind === "float") config[key] = Number(raw);
      else if (kind === "bool") config[key] = raw === "true";
      else config[key] = raw;
    } else {
      throw new Error(`link: unknown field "${key}"`);
    }
  }
  for (const [k, v] of Object.entries(config)) {
    if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`link: ${k} is not a number`);
  }
  const data = points ? { task: config.task, points, domain } : null;
  return { config, data };
}
