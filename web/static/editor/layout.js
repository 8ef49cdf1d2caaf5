// Layered layout, as the server draws a workflow's graph (web/graph.go):
// a node's layer is the longest path to it from a source, so every edge
// points right; within a layer nodes are ordered by the mean position of
// their neighbours (a few barycenter sweeps), which removes most crossings.

export const BOX_W = 200;
export const BOX_H = 60;
export const COL_GAP = 76;
export const ROW_GAP = 26;
export const MARGIN = 16;

// layout returns {id: {x, y}} for every node of the document. Edges that
// name missing nodes are left out; nodes on a cycle go after the others.
export function layout(doc) {
  const nodes = doc.nodes || [];
  const n = nodes.length;
  const index = new Map();
  nodes.forEach((nd, i) => { if (!index.has(nd.id)) index.set(nd.id, i); });
  const parents = nodes.map(() => []);
  const children = nodes.map(() => []);
  for (const e of doc.edges || []) {
    const a = index.get(e.from), b = index.get(e.to);
    if (a === undefined || b === undefined || a === b) continue;
    children[a].push(b);
    parents[b].push(a);
  }
  // Kahn's order, stable on the order of nodes.
  const indeg = parents.map((p) => p.length);
  const order = [];
  const ready = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) ready.push(i);
  while (ready.length) {
    ready.sort((x, y) => x - y);
    const v = ready.shift();
    order.push(v);
    for (const c of children[v]) if (--indeg[c] === 0) ready.push(c);
  }
  const layer = new Array(n).fill(0);
  const placed = new Array(n).fill(false);
  let maxLayer = n ? 0 : -1;
  for (const v of order) {
    placed[v] = true;
    maxLayer = Math.max(maxLayer, layer[v]);
    for (const c of children[v]) layer[c] = Math.max(layer[c], layer[v] + 1);
  }
  for (let i = 0; i < n; i++) {
    if (!placed[i]) layer[i] = ++maxLayer;
  }
  const layers = Array.from({ length: maxLayer + 1 }, () => []);
  for (let i = 0; i < n; i++) layers[layer[i]].push(i);
  const pos = new Array(n).fill(0);
  layers.forEach((l) => l.forEach((v, k) => { pos[v] = k; }));
  const sweep = (l, neighbours) => {
    const bary = new Map();
    for (const v of l) {
      const ns = neighbours[v];
      bary.set(v, ns.length ? ns.reduce((s, u) => s + pos[u], 0) / ns.length : pos[v]);
    }
    l.sort((x, y) => bary.get(x) - bary.get(y));
    l.forEach((v, k) => { pos[v] = k; });
  };
  for (let r = 0; r < 4; r++) {
    for (let i = 1; i < layers.length; i++) sweep(layers[i], parents);
    for (let i = layers.length - 2; i >= 0; i--) sweep(layers[i], children);
  }
  const rows = Math.max(0, ...layers.map((l) => l.length));
  const height = 2 * MARGIN + rows * BOX_H + Math.max(rows - 1, 0) * ROW_GAP;
  const out = {};
  layers.forEach((l, li) => {
    const colH = l.length * BOX_H + Math.max(l.length - 1, 0) * ROW_GAP;
    const top = Math.floor((height - colH) / 2); // as Go divides
    l.forEach((v, k) => {
      out[nodes[v].id] = { x: MARGIN + li * (BOX_W + COL_GAP), y: top + k * (BOX_H + ROW_GAP) };
    });
  });
  return out;
}

// crowded reports whether the stored positions cannot be drawn as they
// are: a node has none, or two boxes overlap or nearly touch.
export function crowded(doc) {
  const ps = [];
  for (const nd of doc.nodes || []) {
    const p = nd.position;
    if (!p || typeof p.x !== 'number' || typeof p.y !== 'number') return true;
    ps.push(p);
  }
  for (let i = 0; i < ps.length; i++) {
    for (let j = i + 1; j < ps.length; j++) {
      if (Math.abs(ps[i].x - ps[j].x) < BOX_W + 24 && Math.abs(ps[i].y - ps[j].y) < BOX_H + 12) return true;
    }
  }
  return false;
}

// edgePath is the SVG path of an arrow from box a to box b, as the server
// draws it: a curve from a's right side to b's left side, or a loop under
// both when b is not to the right of a.
export function edgePath(a, b) {
  const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2;
  const x2 = b.x - 2, y2 = b.y + BOX_H / 2;
  if (x2 > x1 + 10) {
    const mx = (x1 + x2) / 2;
    return `M${x1} ${y1} C${mx} ${y1} ${mx} ${y2} ${x2} ${y2}`;
  }
  const low = Math.max(a.y, b.y) + BOX_H + ROW_GAP;
  return `M${x1} ${y1} C${x1 + 60} ${low} ${x2 - 60} ${low} ${x2} ${y2}`;
}
