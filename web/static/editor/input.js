// The editor's mouse, touch and keyboard handling. Its methods are the
// Editor's (see editor.js).

const isField = (t) => t && t.closest && t.closest('input, textarea, select');

export class Input {
  bind() {
    const on = (el, ev, fn, opts) => el.addEventListener(ev, fn, { signal: this.ac.signal, ...opts });
    const b = this.btn;
    on(b.undo, 'click', () => this.undo());
    on(b.redo, 'click', () => this.redo());
    on(b.del, 'click', () => this.deleteSelection());
    on(b.arrange, 'click', () => { this.commit((d) => this.placeAll(d), { panel: false }); this.fit(); });
    on(b.zoomIn, 'click', () => this.zoom(1.2));
    on(b.zoomOut, 'click', () => this.zoom(1 / 1.2));
    on(b.fit, 'click', () => { this.autoFit = true; this.fit(); });
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
      if (!elt) return;
      e.preventDefault();
      if (window.confirm('Leave the editor? Your changes are not saved.')) e.detail.issueRequest(true);
    });
  }

  // alive reports whether the editor is still in the page; once htmx has
  // swapped it out, its listeners go.
  alive() {
    if (this.root.isConnected) return true;
    this.ac.abort();
    if (this.resizes) this.resizes.disconnect();
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
      this.autoFit = false;
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
