// The visual workflow editor: an SVG canvas of the workflow's graph, a
// palette of node types, a side panel with a form for the selection, the
// server's validation as you edit, undo/redo over document snapshots, and a
// JSON tab kept in step. The document is the one truth: every edit changes
// it through commit(), and the canvas, the panel and the JSON are drawn
// from it. Started by app.js through mount(root).

const SVG = 'http://www.w3.org/2000/svg';
const UNDO_LIMIT = 200;
const VALIDATE_DELAY = 250; // ms of quiet before a check: one request per burst of typing

export async function mount(root) {
  const [types, lay, forms] = await Promise.all([
    import(root.dataset.types), import(root.dataset.layout), import(root.dataset.forms),
  ]);
  const ed = new Editor(root, types, lay, forms);
  ed.start();
  root.editor = ed; // for the browser tests and the console
  root.dataset.mounted = 'ready';
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  return e;
}

function shorten(s, n) {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

// underPath reports whether a problem's path is path or inside it.
function underPath(p, path) {
  if (p === path) return true;
  return p.startsWith(path) && (p[path.length] === '.' || p[path.length] === '[');
}

const isField = (t) => t && t.closest && t.closest('input, textarea, select');

class Editor {
  constructor(root, types, lay, forms) {
    this.root = root;
    this.T = types;
    this.L = lay;
    this.F = forms;
    const $ = (id) => root.querySelector('#' + id);
    this.svg = $('ed-canvas');
    this.panel = $('ed-panel');
    this.jsonTA = $('ed-json');
    this.jsonNote = $('ed-json-note');
    this.status = $('ed-status');
    this.help = $('ed-help');
    this.helpText = this.help.textContent;
    this.btn = {
      undo: $('ed-undo'), redo: $('ed-redo'), del: $('ed-delete'), arrange: $('ed-arrange'),
      zoomIn: $('ed-zoom-in'), zoomOut: $('ed-zoom-out'), fit: $('ed-fit'), save: $('ed-save'), open: $('ed-open'),
      tabCanvas: $('ed-tab-canvas'), tabJSON: $('ed-tab-json'),
    };
    this.views = { canvas: $('ed-canvas-view'), json: $('ed-json-view') };
    this.problemList = $('ed-problems');
    this.noProblems = $('ed-no-problems');
    this.id = root.dataset.id || '';
    this.csrf = root.dataset.csrf;
    this.validateURL = root.dataset.validateUrl;
    this.saveURL = root.dataset.saveUrl;

    this.undoStack = [];
    this.redoStack = [];
    this.lastKey = null;
    this.sel = null; // {kind: 'node'|'edge', i}
    this.problems = [];
    this.valid = false;
    this.checked = null; // the document text the problems are about
    this.seq = 0;
    this.timer = 0;
    this.jsonError = '';
    this.saving = false;
    this.view = { x: 0, y: 0, k: 1 };
    this.drag = null;
    this.drags = 0;
    this.connectFrom = null;
    this.ac = new AbortController();
  }

  start() {
    let doc;
    try {
      doc = JSON.parse(this.jsonTA.defaultValue);
    } catch {
      doc = null;
    }
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) doc = { name: '', nodes: [], edges: [], variables: [] };
    this.doc = doc;
    // Stored positions are used when they can be drawn as they are;
    // otherwise the graph opens laid out as the workflow page draws it.
    if ((doc.nodes || []).length && this.L.crowded(doc)) this.placeAll(doc);
    this.baseline = JSON.stringify(doc);
    const narrow = window.matchMedia('(max-width: 640px)');
    this.readOnly = narrow.matches;
    narrow.addEventListener('change', () => { this.readOnly = narrow.matches; this.root.classList.toggle('ed-readonly', this.readOnly); this.updateButtons(); this.fit(); }, { signal: this.ac.signal });
    this.root.classList.toggle('ed-readonly', this.readOnly);
    this.buildPalette();
    this.bind();
    this.svg.append(svgEl('defs'));
    this.svg.firstChild.innerHTML = '<marker id="ed-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto"><path class="arrowhead" d="M0 0 L10 5 L0 10 z"/></marker>';
    this.viewG = svgEl('g', { class: 'ed-view' });
    this.svg.append(this.viewG);
    this.renderCanvas();
    this.renderPanel();
    this.syncJSON();
    this.fit();
    this.validate();
  }

  // ---- the document ----

  nodes() { return Array.isArray(this.doc.nodes) ? this.doc.nodes : []; }
  edges() { return Array.isArray(this.doc.edges) ? this.doc.edges : []; }
  text() { return JSON.stringify(this.doc); }
  dirty() { return this.text() !== this.baseline; }

  // commit applies an edit to the document. Edits with the same key in a
  // row (the keystrokes in one field, the steps of one drag) are one undo
  // step. opts.panel false keeps the side panel (the edit came from it);
  // opts.fromJSON keeps the JSON text (the edit came from there).
  commit(fn, opts = {}) {
    const before = this.text();
    const replaced = fn(this.doc);
    if (replaced) this.doc = replaced;
    const after = this.text();
    if (before === after) return;
    if (!(opts.key && opts.key === this.lastKey)) {
      this.undoStack.push(before);
      if (this.undoStack.length > UNDO_LIMIT) this.undoStack.shift();
    }
    this.lastKey = opts.key || null;
    this.redoStack = [];
    this.changed(opts);
  }

  changed(opts = {}) {
    this.clampSelection();
    this.renderCanvas();
    if (opts.panel !== false) this.renderPanel();
    if (!opts.fromJSON) this.syncJSON();
    this.scheduleValidate();
  }

  undo() { this.travel(this.undoStack, this.redoStack); }
  redo() { this.travel(this.redoStack, this.undoStack); }

  travel(from, to) {
    if (!from.length) return;
    to.push(this.text());
    this.doc = JSON.parse(from.pop());
    this.lastKey = null;
    this.changed({});
  }

  clampSelection() {
    if (!this.sel) return;
    const n = this.sel.kind === 'node' ? this.nodes().length : this.edges().length;
    if (this.sel.i >= n) this.sel = null;
    if (this.connectFrom !== null && this.connectFrom >= this.nodes().length) this.endConnect();
  }

  // ---- geometry ----

  posOf(i) {
    const p = this.nodes()[i].position;
    if (p && typeof p.x === 'number' && typeof p.y === 'number') return p;
    if (!this.fallback) this.fallback = this.L.layout(this.doc);
    return this.fallback[this.nodes()[i].id] || { x: 0, y: 0 };
  }

  placeAll(doc) {
    const p = this.L.layout(doc);
    for (const n of doc.nodes || []) {
      const q = p[n.id] || { x: 0, y: 0 };
      n.position = { ...(n.position && typeof n.position === 'object' ? n.position : {}), x: q.x, y: q.y };
    }
  }

  // world converts a pointer's client position to canvas coordinates.
  world(cx, cy) {
    const r = this.svg.getBoundingClientRect();
    return { x: (cx - r.left - this.view.x) / this.view.k, y: (cy - r.top - this.view.y) / this.view.k };
  }

  applyView() {
    const v = this.view;
    this.viewG.setAttribute('transform', `translate(${v.x} ${v.y}) scale(${v.k})`);
  }

  zoom(f, cx, cy) {
    const r = this.svg.getBoundingClientRect();
    if (cx === undefined) { cx = r.left + r.width / 2; cy = r.top + r.height / 2; }
    const w = this.world(cx, cy);
    const k = Math.min(2.5, Math.max(0.25, this.view.k * f));
    this.view = { k, x: cx - r.left - w.x * k, y: cy - r.top - w.y * k };
    this.applyView();
  }

  fit() {
    const ns = this.nodes();
    const r = this.svg.getBoundingClientRect();
    if (!ns.length || !r.width) { this.view = { x: 0, y: 0, k: 1 }; this.applyView(); return; }
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    ns.forEach((_, i) => {
      const p = this.posOf(i);
      minX = Math.min(minX, p.x); minY = Math.min(minY, p.y);
      maxX = Math.max(maxX, p.x + this.L.BOX_W); maxY = Math.max(maxY, p.y + this.L.BOX_H);
    });
    const pad = 24;
    const k = Math.max(0.25, Math.min(1, (r.width - 2 * pad) / (maxX - minX), (r.height - 2 * pad) / (maxY - minY)));
    this.view = { k, x: (r.width - (maxX - minX) * k) / 2 - minX * k, y: (r.height - (maxY - minY) * k) / 2 - minY * k };
    this.applyView();
  }

  // ---- drawing ----

  problemsUnder(path) {
    return this.problems.filter((p) => p.path && underPath(p.path, path));
  }

  renderCanvas() {
    this.fallback = null;
    const active = document.activeElement;
    const refocus = active === document.body || active === null || this.svg.contains(active);
    const g = this.viewG;
    g.replaceChildren();
    const ns = this.nodes();
    const index = new Map();
    ns.forEach((n, i) => { if (!index.has(n.id)) index.set(n.id, i); });
    const { BOX_W: W, BOX_H: H } = this.L;
    const edgeG = svgEl('g', { class: 'ed-edges' });
    this.edges().forEach((e, j) => {
      const a = index.get(e && e.from), b = index.get(e && e.to);
      if (a === undefined || b === undefined) return;
      const pa = this.posOf(a), pb = this.posOf(b);
      const d = this.L.edgePath(pa, pb);
      const cls = ['ed-edge'];
      if (this.sel && this.sel.kind === 'edge' && this.sel.i === j) cls.push('is-selected');
      if (this.problemsUnder(`edges[${j}]`).length) cls.push('has-problem');
      const eg = svgEl('g', { class: cls.join(' '), 'data-edge': j });
      const title = svgEl('title');
      title.textContent = `${e.from} → ${e.to}` + (e.when !== undefined ? ` when ${e.when}` : '');
      eg.append(title, svgEl('path', { class: 'ed-edge-hit', d }), svgEl('path', { class: 'edge', d, 'marker-end': 'url(#ed-arrow)' }));
      if (e.when !== undefined && e.when !== '') {
        const t = svgEl('text', { class: 'ed-when', x: (pa.x + W + pb.x) / 2, y: (pa.y + pb.y + H) / 2 - 6, 'text-anchor': 'middle' });
        t.textContent = String(e.when);
        eg.append(t);
      }
      edgeG.append(eg);
    });
    this.ghost = svgEl('path', { class: 'ed-ghost', d: '' });
    const nodeG = svgEl('g', { class: 'ed-nodes' });
    ns.forEach((n, i) => {
      const p = this.posOf(i);
      const cfg = (n.config && typeof n.config === 'object') ? n.config : {};
      const t = this.T.typeOf(n.type);
      const cls = ['node', 'ed-node', 'node-' + String(n.type).replace(/[^a-z0-9-]/gi, '')];
      if (cfg.can_communicate === true) cls.push('comm');
      if (this.sel && this.sel.kind === 'node' && this.sel.i === i) cls.push('is-selected');
      if (this.connectFrom === i) cls.push('is-source');
      const probs = this.problemsUnder(`nodes[${i}]`);
      if (probs.length) cls.push('has-problem');
      const name = typeof cfg.name === 'string' && cfg.name ? cfg.name : String(n.id || '(no id)');
      const ng = svgEl('g', {
        class: cls.join(' '), transform: `translate(${p.x} ${p.y})`, tabindex: 0, 'data-index': i, 'data-id': n.id,
        role: 'button', 'aria-label': `${t.label} node ${name}` + (probs.length ? `, ${probs.length} problem${probs.length > 1 ? 's' : ''}` : ''),
      });
      const title = svgEl('title');
      title.textContent = `${name} (${n.id}) · ${n.type}` + probs.map((q) => `\n${q.path}: ${q.message}`).join('');
      ng.append(title, svgEl('rect', { class: 'box', width: W, height: H, rx: 10 }));
      const ty = svgEl('text', { class: 'node-type', x: 14, y: 21 });
      ty.textContent = String(n.type || '?');
      const nm = svgEl('text', { class: 'node-name', x: 14, y: 44 });
      nm.textContent = shorten(name, 20);
      ng.append(ty, nm);
      if (cfg.can_communicate === true) {
        const cb = svgEl('g', { class: 'comm-badge', transform: `translate(${W - (probs.length ? 56 : 30)} 8)` });
        const ct = svgEl('text', { x: 10, y: 12, 'text-anchor': 'middle' });
        ct.textContent = '⇄';
        cb.append(svgEl('rect', { width: 20, height: 16, rx: 8 }), ct);
        ng.append(cb);
      }
      if (probs.length) {
        const bg = svgEl('g', { class: 'ed-badge', transform: `translate(${W - 30} 8)` });
        const bt = svgEl('text', { x: 10, y: 12, 'text-anchor': 'middle' });
        bt.textContent = String(probs.length);
        bg.append(svgEl('rect', { width: 20, height: 16, rx: 8 }), bt);
        ng.append(bg);
      }
      if (n.type !== 'end') ng.append(svgEl('circle', { class: 'ed-port ed-port-out', cx: W, cy: H / 2, r: 7 }));
      if (n.type !== 'start') ng.append(svgEl('circle', { class: 'ed-port-in', cx: 0, cy: H / 2, r: 4 }));
      nodeG.append(ng);
    });
    g.append(edgeG, this.ghost, nodeG);
    if (refocus && this.sel && this.sel.kind === 'node') {
      const el = nodeG.querySelector(`[data-index="${this.sel.i}"]`);
      if (el) el.focus({ preventScroll: true });
    }
    this.updateButtons();
  }

  buildPalette() {
    const list = this.root.querySelector('#ed-palette-list');
    for (const t of this.T.nodeTypes) {
      const b = this.F.el('button', { type: 'button', class: 'btn btn-sm ed-add', id: 'ed-add-' + t.type, 'data-type': t.type, title: t.about, text: t.label });
      list.append(b);
    }
  }

  // ---- the side panel ----

  renderPanel() {
    const F = this.F;
    const p = this.panel;
    p.replaceChildren();
    const s = this.sel;
    if (s && s.kind === 'node') this.nodePanel(s.i);
    else if (s && s.kind === 'edge') this.edgePanel(s.i);
    else this.workflowPanel();
    p.append(F.el('ul', { class: 'problems ed-panel-problems', id: 'ed-panel-problems' }));
    if (s) {
      p.append(F.el('p', { class: 'ed-panel-foot' }, F.el('button', {
        type: 'button', class: 'btn btn-sm btn-ghost', id: 'ed-panel-workflow', text: '← The workflow\'s settings and variables',
        onclick: () => this.select(null),
      })));
    }
    this.markPanel();
  }

  // fieldOpts are the form options for an object at base (a JSON path),
  // changed through set(key, value).
  fieldOpts(prefix, base, set, extra = {}) {
    return {
      prefix,
      pathOf: (key) => (key ? `${base}.${key}` : ''),
      onChange: (key, value) => this.commit((d) => set(d, key, value), { key: prefix + key, panel: false }),
      ...extra,
    };
  }

  nodePanel(i) {
    const F = this.F;
    const n = this.nodes()[i];
    const t = this.T.typeOf(n.type);
    const base = `nodes[${i}]`;
    const cfgOf = (d) => {
      const nd = d.nodes[i];
      if (!nd.config || typeof nd.config !== 'object' || Array.isArray(nd.config)) nd.config = {};
      return nd.config;
    };
    const head = F.el('div', { class: 'ed-panel-head' },
      F.el('h2', { text: `${t.label} node` }),
      F.el('button', { type: 'button', class: 'btn btn-sm btn-ghost btn-danger-text', id: 'ed-panel-delete', text: 'Delete node', onclick: () => this.deleteSelection() }));
    this.panel.append(head, F.el('p', { class: 'hint', text: t.about }));
    // The id: renaming it carries the node's arrows along.
    const idWrap = F.el('div', { class: 'field ed-field', 'data-path': `${base}.id` });
    const idIn = F.el('input', { type: 'text', id: 'ed-n-id', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'ed-n-id-problem' });
    idIn.value = n.id == null ? '' : String(n.id);
    idIn.addEventListener('input', () => this.commit((d) => {
      const old = d.nodes[i].id;
      d.nodes[i].id = idIn.value;
      for (const e of d.edges || []) {
        if (e.from === old) e.from = idIn.value;
        if (e.to === old) e.to = idIn.value;
      }
    }, { key: 'id' + i, panel: false }));
    idWrap.append(F.el('label', { for: 'ed-n-id', text: 'Id' }), idIn, F.el('p', { class: 'ed-field-problem', id: 'ed-n-id-problem', role: 'alert' }));
    this.panel.append(idWrap);
    const form = F.el('div', { class: 'stack ed-form' });
    const cfg = n.config && typeof n.config === 'object' ? n.config : {};
    const opts = this.fieldOpts('ed-f-', `${base}.config`, (d, key, value) => F.setPath(cfgOf(d), key, value), { hints: () => this.hintsFor(i) });
    for (const f of t.fields) form.append(F.buildField(f, cfg, opts));
    const known = new Set(t.fields.map((f) => f.key.split('.')[0]));
    form.append(F.buildRaw(cfg, known, {
      prefix: 'ed-f-', pathOf: () => '', rawLabel: t.fields.length ? 'Other settings (JSON)' : 'Settings (JSON)',
      onRaw: (next) => this.commit((d) => {
        const c = cfgOf(d);
        for (const k of Object.keys(c)) if (!known.has(k)) delete c[k];
        for (const [k, v] of Object.entries(next)) if (!known.has(k)) c[k] = v;
      }, { key: 'ed-f-other' + i, panel: false }),
    }));
    this.panel.append(form);
    // The node's arrows, so that they can be reached from the keyboard too.
    const touching = this.edges().map((e, j) => [e, j]).filter(([e]) => e && (e.from === n.id || e.to === n.id));
    if (touching.length) {
      const list = F.el('ul', { class: 'ed-arrows' });
      for (const [e, j] of touching) {
        list.append(F.el('li', {}, F.el('button', {
          type: 'button', class: 'btn btn-sm btn-ghost', 'data-edge': j,
          text: `${e.from} → ${e.to}` + (e.when !== undefined ? ` (when ${e.when})` : ''),
          onclick: () => this.select({ kind: 'edge', i: j }),
        })));
      }
      this.panel.append(F.el('div', { class: 'field' }, F.el('h3', { text: 'Arrows' }), list));
    }
  }

  // hintsFor lists what node i's text fields can refer to: the workflow's
  // variables, the outputs of the nodes that run before it, and, for an
  // agent that talks, the agents it can ask.
  hintsFor(i) {
    const ns = this.nodes();
    const hs = [];
    for (const v of Array.isArray(this.doc.variables) ? this.doc.variables : []) {
      if (v && v.name) hs.push({ text: `{{${v.name}}}`, about: `the variable ${v.name}` + (v.description ? `: ${v.description}` : '') });
    }
    const parents = new Map();
    for (const e of this.edges()) {
      if (!parents.has(e.to)) parents.set(e.to, []);
      parents.get(e.to).push(e.from);
    }
    const seen = new Set();
    const stack = [...(parents.get(ns[i].id) || [])];
    while (stack.length) {
      const id = stack.pop();
      if (seen.has(id) || id === ns[i].id) continue;
      seen.add(id);
      stack.push(...(parents.get(id) || []));
    }
    for (const n of ns) {
      if (seen.has(n.id) && n.type !== 'start') hs.push({ text: `{{outputs.${n.id}}}`, about: `the output of ${n.id}, which runs before this node` });
    }
    const cfg = ns[i].config || {};
    if (cfg.can_communicate === true) {
      for (const n of ns) {
        if (n.type === 'ai-processor' && n.id !== ns[i].id) hs.push({ text: `CALL: ask_node('${n.id}', 'your question')`, about: `ask ${n.id} while this node runs` });
      }
    }
    hs.push({ text: '{{execution_id}}', about: 'the id of the run' });
    return hs;
  }

  edgePanel(j) {
    const F = this.F;
    const e = this.edges()[j];
    const from = this.nodes().find((n) => n.id === e.from);
    const branches = from ? this.T.typeOf(from.type).branches : null;
    this.panel.append(F.el('div', { class: 'ed-panel-head' },
      F.el('h2', { text: 'Arrow' }),
      F.el('button', { type: 'button', class: 'btn btn-sm btn-ghost btn-danger-text', id: 'ed-panel-delete', text: 'Delete arrow', onclick: () => this.deleteSelection() })));
    this.panel.append(F.el('p', {}, F.el('code', { text: String(e.from) }), ' → ', F.el('code', { text: String(e.to) })));
    this.panel.append(F.el('p', { class: 'hint', text: `${e.to} runs after ${e.from}` + (branches ? ', on the branch named below.' : '.') }));
    if (branches || e.when !== undefined) {
      const f = { key: 'when', label: 'When (the branch this arrow takes)', kind: 'text', placeholder: (branches || ['true', 'false']).join(' or ') + ' or a case label' };
      const opts = this.fieldOpts('ed-e-', `edges[${j}]`, (d, key, value) => F.setPath(d.edges[j], key, value));
      const w = F.buildField(f, e, opts);
      const dl = F.el('datalist', { id: 'ed-when-options' });
      for (const b of branches || ['true', 'false']) dl.append(F.el('option', { value: b }));
      w.querySelector('input').setAttribute('list', 'ed-when-options');
      w.append(dl);
      this.panel.append(w);
    }
  }

  workflowPanel() {
    const F = this.F;
    const d = this.doc;
    this.panel.append(F.el('div', { class: 'ed-panel-head' }, F.el('h2', { text: 'Workflow' })));
    this.panel.append(F.el('p', { class: 'hint', text: 'Select a node or an arrow to edit it.' }));
    const form = F.el('div', { class: 'stack ed-form' });
    const top = this.fieldOpts('ed-w-', '', (doc, key, value) => F.setPath(doc, key, value));
    top.pathOf = (key) => key;
    form.append(F.buildField({ key: 'name', label: 'Name', kind: 'text' }, d, top));
    form.append(F.buildField({ key: 'status', label: 'Status', kind: 'select', options: ['draft', 'active'] }, d, top));
    const metaOf = (doc) => {
      if (!doc.metadata || typeof doc.metadata !== 'object' || Array.isArray(doc.metadata)) doc.metadata = {};
      return doc.metadata;
    };
    const meta = d.metadata && typeof d.metadata === 'object' ? d.metadata : {};
    const mopts = this.fieldOpts('ed-m-', 'metadata', (doc, key, value) => F.setPath(metaOf(doc), key, value));
    const limits = F.el('details', { class: 'ed-limits' }, F.el('summary', { text: 'Limits and other settings' }));
    this.T.metadataFields.forEach((f, k) => (k < 2 ? form : limits).append(F.buildField(f, meta, mopts)));
    const known = new Set(this.T.metadataFields.map((f) => f.key));
    limits.append(F.buildRaw(meta, known, {
      prefix: 'ed-m-', pathOf: () => '', rawLabel: 'Other metadata (JSON)',
      onRaw: (next) => this.commit((doc) => {
        const m = metaOf(doc);
        for (const k of Object.keys(m)) if (!known.has(k)) delete m[k];
        for (const [k, v] of Object.entries(next)) if (!known.has(k)) m[k] = v;
      }, { key: 'ed-m-other', panel: false }),
    }));
    form.append(limits);
    this.panel.append(form, this.variablesForm());
  }

  variablesForm() {
    const F = this.F;
    const vars = Array.isArray(this.doc.variables) ? this.doc.variables : [];
    const box = F.el('fieldset', { class: 'field ed-vars' }, F.el('legend', { text: 'Variables' }));
    const varsOf = (d) => (Array.isArray(d.variables) ? d.variables : (d.variables = []));
    vars.forEach((v, j) => {
      v = v && typeof v === 'object' ? v : {};
      const base = `variables[${j}]`;
      const row = F.el('div', { class: 'ed-var' });
      const opts = this.fieldOpts(`ed-v-${j}-`, base, (d, key, value) => {
        const vv = varsOf(d)[j];
        if (key === 'value') {
          // A typed variable holds JSON; a string one the text as it is.
          const typed = vv.type && vv.type !== 'string';
          let val = value === undefined ? '' : value;
          if (typed && value !== undefined) {
            try { val = JSON.parse(value); } catch { val = value; }
          }
          vv.value = val;
          return;
        }
        F.setPath(vv, key, value);
      });
      row.append(F.buildField({ key: 'name', label: 'Name', kind: 'text' }, v, opts));
      const shown = { value: typeof v.value === 'string' ? v.value : (v.value === undefined || v.value === null ? '' : JSON.stringify(v.value)) };
      row.append(F.buildField({ key: 'value', label: 'Value', kind: 'text', placeholder: v.secret ? 'given at run time, or stored masked' : '' }, shown, opts));
      row.append(F.buildField({ key: 'type', label: 'Type', kind: 'select', options: this.T.variableTypes }, v, opts));
      row.append(F.buildField({ key: 'secret', label: 'Secret', kind: 'checkbox' }, v, opts));
      row.append(F.el('button', { type: 'button', class: 'btn btn-sm btn-ghost btn-danger-text', text: 'Remove', 'aria-label': `Remove variable ${v.name || j + 1}`,
        onclick: () => this.commit((d) => { varsOf(d).splice(j, 1); }) }));
      box.append(row);
    });
    box.append(F.el('button', { type: 'button', class: 'btn btn-sm', id: 'ed-add-var', text: 'Add a variable',
      onclick: () => {
        this.commit((d) => { varsOf(d).push({ name: 'var' + (varsOf(d).length + 1), value: '', type: 'string' }); });
        const ins = this.panel.querySelectorAll('.ed-var input[type=text]');
        if (ins.length) ins[ins.length - 2].focus();
      } }));
    return box;
  }

  // markPanel shows each problem at the field its path names, and the
  // rest of the selection's problems above the form.
  markPanel() {
    const placed = new Set();
    for (const w of this.panel.querySelectorAll('.ed-field[data-path]')) {
      const path = w.dataset.path;
      const out = w.querySelector(':scope > .ed-field-problem, :scope > label > .ed-field-problem') || w.querySelector('.ed-field-problem');
      if (!path) continue;
      const ps = this.problemsUnder(path);
      ps.forEach((p) => placed.add(p));
      w.classList.toggle('has-problem', ps.length > 0);
      if (out && !w.classList.contains('ed-bad-text')) out.textContent = ps.map((p) => p.message).join(' · ');
    }
    const list = this.panel.querySelector('#ed-panel-problems');
    if (!list) return;
    let base = null;
    if (this.sel) base = `${this.sel.kind === 'node' ? 'nodes' : 'edges'}[${this.sel.i}]`;
    const mine = this.problems.filter((p) => !placed.has(p) && (base ? underPath(p.path || '', base)
      : !/^(nodes|edges)\[/.test(p.path || '')));
    list.replaceChildren(...mine.map((p) => this.F.el('li', {}, p.path ? this.F.el('code', { class: 'path', text: p.path }) : '', p.message)));
  }

  // ---- problems and saving ----

  scheduleValidate() {
    clearTimeout(this.timer);
    this.pending = true;
    this.updateButtons();
    this.timer = setTimeout(() => this.validate(), VALIDATE_DELAY);
  }

  async validate() {
    clearTimeout(this.timer);
    this.pending = true;
    const seq = ++this.seq;
    const body = this.text();
    let answer;
    try {
      const r = await fetch(this.validateURL, { method: 'POST', headers: this.headers(), body, credentials: 'same-origin' });
      answer = await this.answerOf(r);
      if (!r.ok) throw new Error(answer.detail || r.statusText);
    } catch (err) {
      if (seq !== this.seq) return;
      this.pending = false;
      this.valid = false;
      this.checkError = 'Could not check the workflow: ' + err.message;
      this.updateButtons();
      return;
    }
    if (seq !== this.seq) return; // a newer check is on its way
    this.checkError = '';
    this.pending = false;
    this.valid = answer.valid === true;
    this.problems = Array.isArray(answer.problems) ? answer.problems : [];
    this.checked = body;
    this.renderCanvas();
    this.markPanel();
    this.renderProblems();
    this.root.dataset.checked = String(seq);
  }

  // answerOf reads the server's JSON answer. Anything else (a login page
  // after the session ended, a refused form token) says what to do.
  async answerOf(r) {
    const type = r.headers.get('Content-Type') || '';
    if (type.startsWith('application/json') && !r.redirected) return r.json();
    throw new Error(`the server answered ${r.status} ${r.statusText}` + (r.redirected || r.status === 403
      ? ': the session or the form expired. Copy the document from the JSON tab, reload the page and paste it back.' : ''));
  }

  headers() {
    return { 'Content-Type': 'application/json', 'X-CSRF-Token': this.csrf, Accept: 'application/json' };
  }

  renderProblems() {
    const F = this.F;
    this.problemList.replaceChildren(...this.problems.map((p) => F.el('li', {},
      F.el('button', { type: 'button', class: 'ed-problem-link', onclick: () => this.reveal(p.path || '') },
        p.path ? F.el('code', { class: 'path', text: p.path }) : '', p.message))));
    this.noProblems.hidden = this.problems.length > 0;
  }

  // reveal selects what a problem's path names and focuses its field.
  reveal(path) {
    const m = /^(nodes|edges)\[(\d+)\]/.exec(path);
    this.select(m ? { kind: m[1] === 'nodes' ? 'node' : 'edge', i: Number(m[2]) } : null);
    this.showView('canvas');
    const fields = [...this.panel.querySelectorAll('.ed-field[data-path]')].filter((w) => w.dataset.path && underPath(path, w.dataset.path));
    const w = fields.sort((a, b) => b.dataset.path.length - a.dataset.path.length)[0];
    if (w) {
      const details = w.closest('details');
      if (details) details.open = true;
      const c = w.querySelector('input, textarea, select');
      if (c) c.focus();
    }
  }

  saveBlocker() {
    if (this.jsonError) return 'The JSON does not parse: ' + this.jsonError;
    if (this.saving) return 'Saving…';
    if (this.checkError) return this.checkError;
    if (this.pending || this.checked !== this.text()) return 'Checking…';
    if (!this.valid) {
      const n = this.problems.length;
      return `Fix ${n} problem${n === 1 ? '' : 's'} to save`;
    }
    if (!this.dirty()) return this.id ? 'Saved; no changes' : 'Nothing to save yet';
    return '';
  }

  updateButtons() {
    const b = this.btn;
    if (!b.save) return;
    b.undo.disabled = this.undoStack.length === 0;
    b.redo.disabled = this.redoStack.length === 0;
    b.del.disabled = !this.sel || this.readOnly;
    const why = this.saveBlocker();
    b.save.disabled = why !== '';
    b.save.title = why || 'Save the workflow';
    const text = why || (this.note || 'Valid, not saved yet');
    if (this.status.textContent !== text) this.status.textContent = text;
    this.note = '';
    this.root.classList.toggle('is-dirty', this.dirty());
  }

  async save() {
    if (this.saveBlocker()) return;
    this.saving = true;
    this.updateButtons();
    const body = this.text();
    let r, answer;
    try {
      r = await fetch(this.saveURL, { method: 'POST', headers: this.headers(), body, credentials: 'same-origin' });
      answer = await this.answerOf(r);
    } catch (err) {
      this.saving = false;
      this.checkError = 'Could not save: ' + err.message;
      this.updateButtons();
      return;
    }
    this.saving = false;
    if (!r.ok) {
      this.problems = answer.problems || [{ path: '', message: answer.detail || r.statusText }];
      this.valid = false;
      this.checked = body;
      this.renderCanvas();
      this.markPanel();
      this.renderProblems();
      return;
    }
    this.baseline = body;
    if (!this.id) {
      this.id = answer.id;
      this.validateURL = `/ui/workflows/${answer.id}/validate`;
      this.saveURL = `/ui/workflows/${answer.id}/document`;
      this.root.dataset.id = answer.id;
      history.replaceState(history.state, '', answer.edit_url);
    }
    this.btn.open.href = answer.url;
    this.btn.open.hidden = false;
    const h = document.getElementById('ed-title');
    if (h) h.textContent = 'Edit ' + (this.doc.name || '');
    this.root.dataset.saved = answer.id;
    this.updateButtons();
    this.status.textContent = 'Saved';
  }

  // ---- edits ----

  select(sel) {
    const same = (a, b) => (a === b) || (a && b && a.kind === b.kind && a.i === b.i);
    if (same(sel, this.sel)) return;
    this.sel = sel;
    this.lastKey = null;
    this.renderCanvas();
    this.renderPanel();
  }

  freeSpot(x, y) {
    const { BOX_W: W, BOX_H: H, ROW_GAP } = this.L;
    const taken = (px, py) => this.nodes().some((_, i) => {
      const p = this.posOf(i);
      return Math.abs(p.x - px) < W + 8 && Math.abs(p.y - py) < H + 8;
    });
    let n = 0;
    while (taken(x, y) && n++ < 50) y += H + ROW_GAP;
    return { x: Math.round(x), y: Math.round(y) };
  }

  addNode(type, at) {
    const ns = this.nodes();
    const base = type === 'ai-processor' ? 'agent' : type;
    let id = base;
    for (let k = 2; ns.some((n) => n.id === id); k++) id = `${base}-${k}`;
    let spot;
    if (at) {
      spot = this.freeSpot(at.x - this.L.BOX_W / 2, at.y - this.L.BOX_H / 2);
    } else if (this.sel && this.sel.kind === 'node') {
      const p = this.posOf(this.sel.i);
      spot = this.freeSpot(p.x + this.L.BOX_W + this.L.COL_GAP, p.y);
    } else if (ns.length) {
      let right = -Infinity, y = 0;
      ns.forEach((_, i) => { const p = this.posOf(i); if (p.x > right) { right = p.x; y = p.y; } });
      spot = this.freeSpot(right + this.L.BOX_W + this.L.COL_GAP, y);
    } else {
      spot = { x: this.L.MARGIN, y: this.L.MARGIN + 60 };
    }
    const node = { id, type, position: spot, config: {} };
    this.commit((d) => {
      if (!Array.isArray(d.nodes)) d.nodes = [];
      d.nodes.push(node);
    });
    this.sel = { kind: 'node', i: this.nodes().length - 1 };
    this.lastKey = null;
    this.renderCanvas();
    this.renderPanel();
    this.ensureVisible(spot);
    this.focusNode(this.sel.i);
  }

  ensureVisible(p) {
    const r = this.svg.getBoundingClientRect();
    const v = this.view;
    const x1 = p.x * v.k + v.x, y1 = p.y * v.k + v.y;
    const x2 = x1 + this.L.BOX_W * v.k, y2 = y1 + this.L.BOX_H * v.k;
    if (x1 < 0 || y1 < 0 || x2 > r.width || y2 > r.height) this.fit();
  }

  focusNode(i) {
    const el = this.viewG.querySelector(`.ed-node[data-index="${i}"]`);
    if (el) el.focus({ preventScroll: true });
  }

  connect(a, b) {
    const ns = this.nodes();
    const from = ns[a].id, to = ns[b].id;
    this.endConnect();
    if (a === b) { this.say('A node cannot follow itself.'); return; }
    if (this.edges().some((e) => e.from === from && e.to === to)) { this.say(`${from} is already connected to ${to}.`); return; }
    this.commit((d) => {
      if (!Array.isArray(d.edges)) d.edges = [];
      d.edges.push({ from, to });
    });
    const branches = this.T.typeOf(ns[a].type).branches;
    this.select(branches ? { kind: 'edge', i: this.edges().length - 1 } : { kind: 'node', i: b });
    this.say(`Connected ${from} → ${to}.`);
    if (!branches) this.focusNode(b);
  }

  startConnect(i) {
    this.connectFrom = i;
    this.say(`Connecting from ${this.nodes()[i].id}: choose the next node (Tab or Alt+arrows) and press Enter, or click it. Esc cancels.`);
    this.renderCanvas();
  }

  endConnect() {
    if (this.connectFrom === null) return;
    this.connectFrom = null;
    this.say('');
  }

  say(text) {
    this.help.textContent = text || this.helpText;
  }

  deleteSelection() {
    const s = this.sel;
    if (!s || this.readOnly) return;
    if (s.kind === 'node') {
      const id = this.nodes()[s.i].id;
      this.sel = null;
      this.commit((d) => {
        d.nodes.splice(s.i, 1);
        if (Array.isArray(d.edges)) d.edges = d.edges.filter((e) => !(e && (e.from === id || e.to === id) && !d.nodes.some((n) => n.id === id)));
      });
    } else {
      this.sel = null;
      this.commit((d) => { d.edges.splice(s.i, 1); });
    }
    this.svg.focus({ preventScroll: true });
  }

  moveBy(i, dx, dy) {
    const p = this.posOf(i);
    this.commit((d) => {
      const n = d.nodes[i];
      n.position = { ...(n.position && typeof n.position === 'object' ? n.position : {}), x: Math.round(p.x + dx), y: Math.round(p.y + dy) };
    }, { key: 'keymove' + i, panel: false });
  }

  // neighbour is the nearest node from node i in an arrow's direction.
  neighbour(i, dx, dy) {
    const p = this.posOf(i);
    let best = null, bestD = Infinity;
    this.nodes().forEach((_, j) => {
      if (j === i) return;
      const q = this.posOf(j);
      const vx = q.x - p.x, vy = q.y - p.y;
      const along = vx * dx + vy * dy;
      if (along <= 0) return;
      const d = along + 2 * Math.abs(vx * dy - vy * dx);
      if (d < bestD) { bestD = d; best = j; }
    });
    return best;
  }

  // ---- JSON tab ----

  syncJSON() {
    this.jsonError = '';
    this.jsonNote.classList.remove('error-text');
    this.jsonNote.textContent = 'Edits here show on the canvas as soon as the text is JSON.';
    const t = JSON.stringify(this.doc, null, 2);
    if (this.jsonTA.value !== t) this.jsonTA.value = t;
  }

  onJSONInput() {
    let next;
    try {
      next = JSON.parse(this.jsonTA.value);
      if (next === null || typeof next !== 'object' || Array.isArray(next)) throw new Error('the document must be a JSON object');
    } catch (err) {
      this.jsonError = err.message;
      this.jsonNote.textContent = 'Not JSON yet: ' + err.message;
      this.jsonNote.classList.add('error-text');
      this.updateButtons();
      return;
    }
    this.jsonError = '';
    this.jsonNote.classList.remove('error-text');
    this.jsonNote.textContent = 'Edits here show on the canvas as soon as the text is JSON.';
    this.commit(() => next, { key: 'json', fromJSON: true });
    this.updateButtons();
  }

  showView(which) {
    const json = which === 'json';
    this.lastKey = null; // an edit in the other view is a step of its own
    this.views.json.hidden = !json;
    this.views.canvas.hidden = json;
    this.btn.tabJSON.setAttribute('aria-selected', String(json));
    this.btn.tabCanvas.setAttribute('aria-selected', String(!json));
    // The problems stay in sight in either view.
    const box = this.root.querySelector('#ed-problems-box');
    (json ? this.views.json.parentNode.insertBefore(box, this.views.json.nextSibling) : this.root.querySelector('.ed-left').append(box));
    if (!json) {
      if (this.jsonError) this.syncJSON();
      this.renderCanvas();
    }
  }

  // ---- events ----

  bind() {
    const on = (el, ev, fn, opts) => el.addEventListener(ev, fn, { signal: this.ac.signal, ...opts });
    const b = this.btn;
    on(b.undo, 'click', () => this.undo());
    on(b.redo, 'click', () => this.redo());
    on(b.del, 'click', () => this.deleteSelection());
    on(b.arrange, 'click', () => { this.commit((d) => this.placeAll(d), { panel: false }); this.fit(); });
    on(b.zoomIn, 'click', () => this.zoom(1.2));
    on(b.zoomOut, 'click', () => this.zoom(1 / 1.2));
    on(b.fit, 'click', () => this.fit());
    on(b.save, 'click', () => this.save());
    on(b.tabCanvas, 'click', () => this.showView('canvas'));
    on(b.tabJSON, 'click', () => this.showView('json'));
    on(this.jsonTA, 'input', () => this.onJSONInput());

    const palette = this.root.querySelector('#ed-palette-list');
    on(palette, 'click', (e) => {
      const btn = e.target.closest('.ed-add');
      if (!btn) return;
      if (this.suppressClick) { this.suppressClick = false; return; }
      this.addNode(btn.dataset.type);
    });
    on(palette, 'pointerdown', (e) => {
      const btn = e.target.closest('.ed-add');
      if (!btn || e.button !== 0 || this.readOnly) return;
      this.suppressClick = false;
      this.drag = { kind: 'palette', type: btn.dataset.type, sx: e.clientX, sy: e.clientY, moved: false };
    });

    on(this.svg, 'pointerdown', (e) => this.pointerDown(e));
    on(window, 'pointermove', (e) => this.pointerMove(e));
    on(window, 'pointerup', (e) => this.pointerUp(e));
    on(this.svg, 'wheel', (e) => { e.preventDefault(); this.zoom(e.deltaY < 0 ? 1.1 : 1 / 1.1, e.clientX, e.clientY); }, { passive: false });
    on(this.svg, 'focusin', (e) => {
      const n = e.target.closest && e.target.closest('.ed-node');
      if (n) this.select({ kind: 'node', i: Number(n.dataset.index) });
    });
    on(this.root, 'keydown', (e) => this.keyDown(e));

    // Leaving with unsaved changes asks first: a page load...
    on(window, 'beforeunload', (e) => {
      if (!this.alive() || !this.dirty()) return;
      e.preventDefault();
      e.returnValue = '';
    });
    // ...and a link or form that htmx follows without one.
    on(document, 'htmx:confirm', (e) => {
      if (!this.alive() || !this.dirty()) return;
      const elt = e.detail && e.detail.elt;
      if (!elt || this.root.contains(elt)) return;
      e.preventDefault();
      if (window.confirm('Leave the editor? Your changes are not saved.')) e.detail.issueRequest(true);
    });
  }

  // alive reports whether the editor is still in the page; once htmx has
  // swapped it out, its listeners go.
  alive() {
    if (this.root.isConnected) return true;
    this.ac.abort();
    clearTimeout(this.timer);
    return false;
  }

  pointerDown(e) {
    if (e.button !== 0) return;
    const port = e.target.closest('.ed-port');
    const node = e.target.closest('.ed-node');
    const edge = e.target.closest('.ed-edge');
    const w = this.world(e.clientX, e.clientY);
    e.preventDefault();
    if (node) {
      const i = Number(node.dataset.index);
      if (this.connectFrom !== null && !this.readOnly) { this.connect(this.connectFrom, i); return; }
      if (port && !this.readOnly) {
        this.drag = { kind: 'connect', from: i, moved: false };
        return;
      }
      this.select({ kind: 'node', i });
      this.focusNode(i);
      if (this.readOnly) return;
      const p = this.posOf(i);
      this.drag = { kind: 'move', i, sx: w.x, sy: w.y, ox: p.x, oy: p.y, moved: false, key: 'drag' + (++this.drags) };
      return;
    }
    if (edge) {
      this.select({ kind: 'edge', i: Number(edge.dataset.edge) });
      this.svg.focus({ preventScroll: true });
      return;
    }
    this.svg.focus({ preventScroll: true });
    this.drag = { kind: 'pan', sx: e.clientX, sy: e.clientY, vx: this.view.x, vy: this.view.y, moved: false };
  }

  pointerMove(e) {
    const d = this.drag;
    if (!d || !this.alive()) return;
    if (d.kind === 'pan') {
      const dx = e.clientX - d.sx, dy = e.clientY - d.sy;
      if (Math.abs(dx) + Math.abs(dy) > 3) d.moved = true;
      this.view.x = d.vx + dx;
      this.view.y = d.vy + dy;
      this.applyView();
    } else if (d.kind === 'move') {
      const w = this.world(e.clientX, e.clientY);
      const dx = w.x - d.sx, dy = w.y - d.sy;
      if (!d.moved && Math.abs(dx) + Math.abs(dy) < 3) return;
      d.moved = true;
      this.commit((doc) => {
        const n = doc.nodes[d.i];
        n.position = { ...(n.position && typeof n.position === 'object' ? n.position : {}), x: Math.round(d.ox + dx), y: Math.round(d.oy + dy) };
      }, { key: d.key, panel: false });
    } else if (d.kind === 'connect') {
      d.moved = true;
      const p = this.posOf(d.from);
      const w = this.world(e.clientX, e.clientY);
      const x1 = p.x + this.L.BOX_W, y1 = p.y + this.L.BOX_H / 2;
      this.ghost.setAttribute('d', `M${x1} ${y1} C${(x1 + w.x) / 2} ${y1} ${(x1 + w.x) / 2} ${w.y} ${w.x} ${w.y}`);
      for (const n of this.viewG.querySelectorAll('.ed-drop')) n.classList.remove('ed-drop');
      const over = this.nodeAt(e.clientX, e.clientY);
      if (over !== null && over !== d.from) this.viewG.querySelector(`.ed-node[data-index="${over}"]`).classList.add('ed-drop');
    } else if (d.kind === 'palette') {
      if (Math.abs(e.clientX - d.sx) + Math.abs(e.clientY - d.sy) > 6) d.moved = true;
      this.svg.classList.toggle('ed-drop-target', d.moved && this.overCanvas(e.clientX, e.clientY));
    }
  }

  pointerUp(e) {
    const d = this.drag;
    if (!d || !this.alive()) return;
    this.drag = null;
    if (d.kind === 'pan') {
      if (!d.moved) this.select(null);
    } else if (d.kind === 'connect') {
      this.ghost.setAttribute('d', '');
      const to = this.nodeAt(e.clientX, e.clientY);
      if (to !== null && to !== d.from) this.connect(d.from, to);
      else this.renderCanvas();
    } else if (d.kind === 'move') {
      this.lastKey = null;
    } else if (d.kind === 'palette') {
      this.svg.classList.remove('ed-drop-target');
      if (d.moved) {
        // The click that ends a drag on its own button must not add a second node.
        this.suppressClick = !!(e.target.closest && e.target.closest('.ed-add'));
        if (this.overCanvas(e.clientX, e.clientY)) this.addNode(d.type, this.world(e.clientX, e.clientY));
      }
    }
  }

  overCanvas(x, y) {
    const r = this.svg.getBoundingClientRect();
    return x >= r.left && x <= r.right && y >= r.top && y <= r.bottom;
  }

  // nodeAt is the index of the node drawn at a client position, or null.
  nodeAt(x, y) {
    const w = this.world(x, y);
    let found = null;
    this.nodes().forEach((_, i) => {
      const p = this.posOf(i);
      if (w.x >= p.x && w.x <= p.x + this.L.BOX_W && w.y >= p.y && w.y <= p.y + this.L.BOX_H) found = i;
    });
    return found;
  }

  keyDown(e) {
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key;
    if (mod && (key === 'z' || key === 'Z' || key === 'y')) {
      if (e.target === this.jsonTA) return; // the text's own undo
      e.preventDefault();
      if (key === 'y' || e.shiftKey) this.redo();
      else this.undo();
      return;
    }
    if (isField(e.target) || mod) return;
    const inCanvas = this.svg.contains(e.target);
    if (!inCanvas) return;
    const s = this.sel && this.sel.kind === 'node' ? this.sel.i : null;
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (key === 'Delete' || key === 'Backspace') {
      e.preventDefault();
      this.deleteSelection();
    } else if (arrows[key] && s !== null) {
      e.preventDefault();
      const [dx, dy] = arrows[key];
      if (e.altKey) {
        const j = this.neighbour(s, dx, dy);
        if (j !== null) { this.select({ kind: 'node', i: j }); this.focusNode(j); }
      } else if (!this.readOnly) {
        const step = e.shiftKey ? 2 : 20;
        this.moveBy(s, dx * step, dy * step);
      }
    } else if ((key === 'c' || key === 'C') && s !== null && !this.readOnly) {
      e.preventDefault();
      if (this.connectFrom !== null && this.connectFrom !== s) this.connect(this.connectFrom, s);
      else this.startConnect(s);
    } else if (key === 'Enter' && s !== null && this.connectFrom !== null) {
      e.preventDefault();
      this.connect(this.connectFrom, s);
    } else if (key === 'Escape') {
      if (this.connectFrom !== null) { this.endConnect(); this.renderCanvas(); } else this.select(null);
    } else if (key === '+' || key === '=') {
      this.zoom(1.2);
    } else if (key === '-') {
      this.zoom(1 / 1.2);
    } else if (key === '0') {
      this.fit();
    }
  }
}
