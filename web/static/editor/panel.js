// The editor's side panel: a form for the selected node (built from its
// type's field specs in types.js), for the selected arrow, or for the
// workflow itself, and the server's problems placed at the fields their
// JSON paths name. Its methods are the Editor's (see editor.js).

export class Panel {
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
    const keys = t.fields.map((f) => f.key);
    form.append(F.buildRaw(cfg, keys, {
      prefix: 'ed-f-', pathOf: () => '', rawLabel: t.fields.length ? 'Other settings (JSON)' : 'Settings (JSON)',
      onRaw: (make) => this.commit((d) => { d.nodes[i].config = make(cfgOf(d)); }, { key: 'ed-f-other' + i, panel: false }),
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
    const keys = this.T.metadataFields.map((f) => f.key);
    limits.append(F.buildRaw(meta, keys, {
      prefix: 'ed-m-', pathOf: () => '', rawLabel: 'Other metadata (JSON)',
      onRaw: (make) => this.commit((doc) => { doc.metadata = make(metaOf(doc)); }, { key: 'ed-m-other', panel: false }),
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
    const mine = this.problems.filter((p) => !placed.has(p) && (base ? this.F.underPath(p.path || '', base)
      : !/^(nodes|edges)\[/.test(p.path || '')));
    list.replaceChildren(...mine.map((p) => this.F.el('li', {}, p.path ? this.F.el('code', { class: 'path', text: p.path }) : '', p.message)));
  }
}
