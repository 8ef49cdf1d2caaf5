// Forms built from the field specs of types.js. Every control gets a label,
// an id made from its key (so a problem's JSON path finds it), and a place
// for the problems the server reports about it.

// underPath reports whether a problem's JSON path p is path or inside it
// ("nodes[1].config.x" is inside "nodes[1]", "nodes[10]" is not).
export function underPath(p, path) {
  if (p === path) return true;
  return p.startsWith(path) && (p[path.length] === '.' || p[path.length] === '[');
}

// getPath reads a dotted key ("auth.type") from an object.
export function getPath(obj, key) {
  let v = obj;
  for (const part of key.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[part];
  }
  return v;
}

// setPath writes a dotted key, creating objects on the way; undefined
// removes the key, and an object left empty by that goes too.
export function setPath(obj, key, value) {
  const parts = key.split('.');
  const chain = [obj];
  let o = obj;
  for (const part of parts.slice(0, -1)) {
    if (o[part] === null || typeof o[part] !== 'object' || Array.isArray(o[part])) {
      if (value === undefined) return;
      o[part] = {};
    }
    o = o[part];
    chain.push(o);
  }
  const last = parts[parts.length - 1];
  if (value === undefined) delete o[last];
  else o[last] = value;
  for (let i = parts.length - 2; i >= 0 && value === undefined; i--) {
    if (Object.keys(chain[i + 1]).length === 0) delete chain[i][parts[i]];
  }
}

export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

// fieldID is the id of the control that edits key, under prefix.
export function fieldID(prefix, key) {
  return prefix + key.replace(/[^A-Za-z0-9_-]/g, '-');
}

// display turns a stored value into the control's text.
function display(f, v) {
  if (v === undefined || v === null) return '';
  switch (f.kind) {
    case 'list':
      if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n');
      return typeof v === 'string' ? v.split(',').map((x) => x.trim()).join('\n') : JSON.stringify(v);
    case 'json':
      return JSON.stringify(v, null, f.rows > 1 ? 2 : 0);
    default:
      return typeof v === 'string' ? v : JSON.stringify(v);
  }
}

// parse turns the control's text back into the value to store: undefined
// leaves the key out. A number field keeps text that is no number, so the
// server names the problem at its path. A JSON field that does not parse
// throws.
function parse(f, text, was) {
  switch (f.kind) {
    case 'number':
    case 'integer': {
      const t = text.trim();
      if (t === '') return undefined;
      const n = Number(t);
      return Number.isFinite(n) ? n : t;
    }
    case 'list': {
      const items = text.split('\n').map((s) => s.trim()).filter((s) => s !== '');
      if (!items.length) return undefined;
      // A list the document wrote as one string stays one string.
      return typeof was === 'string' ? items.join(', ') : items;
    }
    case 'json':
      if (text.trim() === '') return undefined;
      return JSON.parse(text);
    case 'select':
    case 'text':
    case 'textarea':
      return text === '' ? undefined : text;
  }
  return text === '' ? undefined : text;
}

// buildField makes one labelled control for field f of obj. onChange(key,
// value) gets every edit; hints(f), when the field asks for them, lists
// {text, about} snippets that a click inserts at the cursor.
export function buildField(f, obj, opts) {
  const id = fieldID(opts.prefix, f.key);
  const v = getPath(obj, f.key);
  const wrap = el('div', { class: 'field ed-field', 'data-key': f.key, 'data-path': opts.pathOf(f.key) });
  const problem = el('p', { class: 'ed-field-problem', id: id + '-problem', role: 'alert' });
  let control;
  if (f.kind === 'checkbox') {
    control = el('input', { type: 'checkbox', id, checked: v === true });
    control.addEventListener('change', () => opts.onChange(f.key, control.checked ? true : undefined));
    wrap.append(el('label', { class: 'choice', for: id }, control, ' ' + f.label), problem);
    return wrap;
  }
  const label = el('label', { for: id, text: f.label });
  if (f.kind === 'select') {
    control = el('select', { id });
    const opts2 = [...f.options];
    const cur = v === undefined ? '' : String(v);
    if (!opts2.includes(cur)) opts2.push(cur);
    for (const o of opts2) {
      const text = (f.optionLabels && f.optionLabels[o]) || (o === '' ? '(default)' : o);
      control.append(el('option', { value: o, selected: o === cur, text }));
    }
    control.addEventListener('change', () => opts.onChange(f.key, parse(f, control.value)));
  } else {
    const multi = f.kind === 'textarea' || f.kind === 'list' || (f.kind === 'json' && (f.rows || 2) > 1);
    control = multi
      ? el('textarea', { id, rows: f.rows || 3, class: f.kind === 'json' ? 'code' : null, spellcheck: f.kind === 'textarea' ? null : 'false' })
      : el('input', { id, type: 'text', inputmode: f.kind === 'number' ? 'decimal' : f.kind === 'integer' ? 'numeric' : null, autocomplete: 'off' });
    if (f.placeholder) control.placeholder = f.placeholder;
    control.value = display(f, v);
    control.addEventListener('input', () => {
      let value;
      try {
        value = parse(f, control.value, v);
      } catch (err) {
        wrap.classList.add('ed-bad-text');
        problem.textContent = 'Not JSON yet: ' + err.message;
        return;
      }
      if (wrap.classList.contains('ed-bad-text')) {
        wrap.classList.remove('ed-bad-text');
        problem.textContent = '';
      }
      opts.onChange(f.key, value);
    });
  }
  control.setAttribute('aria-describedby', id + '-problem');
  wrap.append(label, control, problem);
  if (f.hints && opts.hints) {
    const hs = opts.hints(f);
    if (hs.length) {
      const list = el('ul', { class: 'ed-hints', 'aria-label': 'Can use' });
      for (const h of hs) {
        list.append(el('li', {}, el('button', {
          type: 'button', class: 'ed-hint', title: h.about, text: h.text,
          onclick: () => {
            control.focus();
            control.setRangeText(h.text, control.selectionStart, control.selectionEnd, 'end');
            control.dispatchEvent(new Event('input', { bubbles: true }));
          },
        })));
      }
      wrap.append(el('p', { class: 'hint', text: 'Can use (click to insert):' }), list);
    }
  }
  return wrap;
}

// rest is a copy of obj without the values at the (dotted) keys of
// fields: what no field of a form edits, nested keys included.
export function rest(obj, keys) {
  const copy = JSON.parse(JSON.stringify(obj && typeof obj === 'object' ? obj : {}));
  for (const k of keys) setPath(copy, k, undefined);
  return copy;
}

// withRest is next with the values at keys taken from obj: the object a
// form's JSON field stands for once it is edited to next.
export function withRest(obj, keys, next) {
  const out = JSON.parse(JSON.stringify(next));
  for (const k of keys) {
    const v = getPath(obj, k);
    if (v !== undefined) setPath(out, k, JSON.parse(JSON.stringify(v)));
  }
  return out;
}

// buildRaw makes the JSON field of what no field of a form edits (see
// rest): it stays as it is, and an edit replaces exactly that. onRaw gets
// the whole new object.
export function buildRaw(obj, keys, opts) {
  const id = opts.prefix + 'other';
  const others = rest(obj, keys);
  const wrap = el('div', { class: 'field ed-field', 'data-key': '', 'data-path': opts.pathOf('') });
  const ta = el('textarea', { id, rows: Object.keys(others).length ? 4 : 2, class: 'code', spellcheck: 'false' });
  ta.value = Object.keys(others).length ? JSON.stringify(others, null, 2) : '';
  const problem = el('p', { class: 'ed-field-problem', id: id + '-problem', role: 'alert' });
  ta.setAttribute('aria-describedby', id + '-problem');
  ta.addEventListener('input', () => {
    let next = {};
    try {
      if (ta.value.trim() !== '') next = JSON.parse(ta.value);
      if (next === null || typeof next !== 'object' || Array.isArray(next)) throw new Error('it must be an object');
    } catch (err) {
      wrap.classList.add('ed-bad-text');
      problem.textContent = 'Not a JSON object yet: ' + err.message;
      return;
    }
    wrap.classList.remove('ed-bad-text');
    problem.textContent = '';
    opts.onRaw((current) => withRest(current, keys, next));
  });
  wrap.append(el('label', { for: id, text: opts.rawLabel || 'Other settings (JSON)' }), ta, problem);
  return wrap;
}
