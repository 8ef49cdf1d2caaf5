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
  const [types, lay, forms, panel, input] = await Promise.all([
    import(root.dataset.types), import(root.dataset.layout), import(root.dataset.forms),
    import(root.dataset.panel), import(root.dataset.input),
  ]);
  mixin(Editor, panel.Panel);
  mixin(Editor, input.Input);
  const ed = new Editor(root, types, lay, forms);
  ed.start();
  root.editor = ed; // for the browser tests and the console
  root.dataset.mounted = 'ready';
}

// mixin gives class "to" the methods of class "from": the editor's parts live
// in files of their own and share one object.
function mixin(to, from) {
  for (const name of Object.getOwnPropertyNames(from.prototype)) {
    if (name !== 'constructor') Object.defineProperty(to.prototype, name, Object.getOwnPropertyDescriptor(from.prototype, name));
  }
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  return e;
}

function shorten(s, n) {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}


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
    // Until the reader pans or zooms, the graph stays fitted to the canvas
    // as the page settles and the window changes size.
    this.autoFit = true;
    this.resizes = new ResizeObserver(() => { if (this.autoFit && this.alive()) this.fit(); });
    this.resizes.observe(this.svg);
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
    this.saveError = '';
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
    this.autoFit = false;
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
    return this.problems.filter((p) => p.path && this.F.underPath(p.path, path));
  }

  // renderCanvas draws the document. Node boxes are kept and updated in
  // place, not made anew: a box keeps its focus, and a click aimed at it
  // while a check's answer redraws the canvas still lands on it.
  renderCanvas() {
    this.fallback = null;
    if (!this.edgeG) {
      this.edgeG = svgEl('g', { class: 'ed-edges' });
      this.ghost = svgEl('path', { class: 'ed-ghost', d: '' });
      this.nodeG = svgEl('g', { class: 'ed-nodes' });
      this.viewG.append(this.edgeG, this.ghost, this.nodeG);
    }
    const ns = this.nodes();
    const index = new Map();
    ns.forEach((n, i) => { if (!index.has(n.id)) index.set(n.id, i); });
    const { BOX_W: W, BOX_H: H } = this.L;
    const edges = [];
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
      edges.push(eg);
    });
    this.edgeG.replaceChildren(...edges);
    const boxes = this.nodeG.children;
    while (boxes.length > ns.length) boxes[boxes.length - 1].remove();
    ns.forEach((n, i) => {
      const box = boxes[i] || this.newBox();
      const p = this.posOf(i);
      const cfg = (n.config && typeof n.config === 'object') ? n.config : {};
      const t = this.T.typeOf(n.type);
      const cls = ['node', 'ed-node', 'node-' + String(n.type).replace(/[^a-z0-9-]/gi, '')];
      const comm = cfg.can_communicate === true;
      if (comm) cls.push('comm');
      if (this.sel && this.sel.kind === 'node' && this.sel.i === i) cls.push('is-selected');
      if (this.connectFrom === i) cls.push('is-source');
      const probs = this.problemsUnder(`nodes[${i}]`);
      if (probs.length) cls.push('has-problem');
      const name = typeof cfg.name === 'string' && cfg.name ? cfg.name : String(n.id || '(no id)');
      const attrs = {
        class: cls.join(' '), transform: `translate(${p.x} ${p.y})`, 'data-index': i, 'data-id': n.id,
        'aria-label': `${t.label} node ${name}` + (probs.length ? `, ${probs.length} problem${probs.length > 1 ? 's' : ''}` : ''),
      };
      for (const [k, v] of Object.entries(attrs)) if (box.getAttribute(k) !== String(v)) box.setAttribute(k, String(v));
      const part = box.parts;
      part.title.textContent = `${name} (${n.id}) · ${n.type}` + probs.map((q) => `\n${q.path}: ${q.message}`).join('');
      part.type.textContent = String(n.type || '?');
      part.name.textContent = shorten(name, 20);
      part.comm.setAttribute('display', comm ? 'inline' : 'none');
      part.comm.setAttribute('transform', `translate(${W - (probs.length ? 56 : 30)} 8)`);
      part.badge.setAttribute('display', probs.length ? 'inline' : 'none');
      part.badgeText.textContent = String(probs.length);
      part.out.setAttribute('display', n.type === 'end' ? 'none' : 'inline');
      part.in.setAttribute('display', n.type === 'start' ? 'none' : 'inline');
      if (!box.parentNode) this.nodeG.append(box);
    });
    const active = document.activeElement;
    if ((active === document.body || active === null) && this.sel && this.sel.kind === 'node') this.focusNode(this.sel.i);
    this.updateButtons();
  }

  // newBox makes a node's box with its parts; renderCanvas fills them in.
  newBox() {
    const { BOX_W: W, BOX_H: H } = this.L;
    const box = svgEl('g', { tabindex: 0, role: 'button' });
    const text = (attrs) => svgEl('text', attrs);
    const parts = {
      title: svgEl('title'),
      type: text({ class: 'node-type', x: 14, y: 21 }),
      name: text({ class: 'node-name', x: 14, y: 44 }),
      comm: svgEl('g', { class: 'comm-badge' }),
      badge: svgEl('g', { class: 'ed-badge', transform: `translate(${W - 30} 8)` }),
      badgeText: text({ x: 10, y: 12, 'text-anchor': 'middle' }),
      out: svgEl('circle', { class: 'ed-port ed-port-out', cx: W, cy: H / 2, r: 7 }),
      in: svgEl('circle', { class: 'ed-port-in', cx: 0, cy: H / 2, r: 4 }),
    };
    const commText = text({ x: 10, y: 12, 'text-anchor': 'middle' });
    commText.textContent = '⇄';
    parts.comm.append(svgEl('rect', { width: 20, height: 16, rx: 8 }), commText);
    parts.badge.append(svgEl('rect', { width: 20, height: 16, rx: 8 }), parts.badgeText);
    box.append(parts.title, svgEl('rect', { class: 'box', width: W, height: H, rx: 10 }), parts.type, parts.name, parts.comm, parts.badge, parts.out, parts.in);
    box.parts = parts;
    return box;
  }

  buildPalette() {
    const list = this.root.querySelector('#ed-palette-list');
    for (const t of this.T.nodeTypes) {
      const b = this.F.el('button', { type: 'button', class: 'btn btn-sm ed-add', id: 'ed-add-' + t.type, 'data-type': t.type, title: t.about, text: t.label });
      list.append(b);
    }
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
    const fields = [...this.panel.querySelectorAll('.ed-field[data-path]')].filter((w) => w.dataset.path && this.F.underPath(path, w.dataset.path));
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
    const text = why || this.saveError || 'Valid, not saved yet';
    if (this.status.textContent !== text) this.status.textContent = text;
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
      // The button stays on: saving again is the way out.
      this.saving = false;
      this.saveError = 'Could not save: ' + err.message;
      this.updateButtons();
      return;
    }
    this.saveError = '';
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
    document.title = 'Edit ' + (this.doc.name || '') + ' · Switchboard';
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

}
