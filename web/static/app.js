// Switchboard dashboard behaviour. Everything here is progressive: the
// pages work with htmx alone, and this file adds error placement, live
// stream niceties and small conveniences. No inline script anywhere, so a
// strict Content-Security-Policy holds.
(function () {
  'use strict';

  // The error area for a request: the one inside the closest
  // [data-error-scope] or form of the element that sent it, else the page's
  // flash area.
  function errorArea(elt) {
    if (elt && elt.closest) {
      var scope = elt.closest('[data-error-scope]') || elt.closest('form');
      var area = scope && scope.querySelector('[data-error-area]');
      if (area) return area;
    }
    return document.getElementById('flash');
  }

  function showError(elt, text) {
    var area = errorArea(elt);
    if (!area) return;
    var box = document.createElement('div');
    box.className = 'alert alert-error';
    box.setAttribute('role', 'alert');
    var p = document.createElement('p');
    var strong = document.createElement('strong');
    strong.textContent = text;
    p.appendChild(strong);
    box.appendChild(p);
    area.replaceChildren(box);
  }

  document.addEventListener('htmx:beforeRequest', function (evt) {
    var area = errorArea(evt.detail.elt);
    if (area) area.replaceChildren();
    var scope = evt.detail.elt && evt.detail.elt.closest && evt.detail.elt.closest('form');
    var status = scope && scope.querySelector('.form-status');
    if (status) status.replaceChildren();
  });

  // A failed action says what went wrong where it was asked: the server
  // answers htmx requests with an error fragment (status 4xx/5xx), which
  // goes into the form's error area instead of the form's target. A boosted
  // page load shows the error page like any page.
  document.addEventListener('htmx:beforeSwap', function (evt) {
    var xhr = evt.detail.xhr;
    if (!xhr || xhr.status < 400) return;
    if (evt.detail.boosted) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
      return;
    }
    var elt = evt.detail.requestConfig ? evt.detail.requestConfig.elt : evt.detail.elt;
    var area = errorArea(elt);
    if (!area) return;
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
    evt.detail.target = area;
    evt.detail.swapOverride = 'innerHTML';
    evt.detail.selectOverride = 'unset';
  });

  document.addEventListener('htmx:sendError', function (evt) {
    showError(evt.detail.elt, 'The server could not be reached. Check that Switchboard is running, then try again.');
  });

  // Live streams: say when updates stop, and that they resume.
  function liveStatus(elt, text) {
    var root = elt && elt.closest ? elt.closest('[sse-connect]') : null;
    var box = root && root.querySelector('[data-live-status]');
    if (box) box.textContent = text;
  }
  document.addEventListener('htmx:sseError', function (evt) {
    liveStatus(evt.target, 'Live updates were interrupted; reconnecting…');
  });
  document.addEventListener('htmx:sseOpen', function (evt) {
    liveStatus(evt.target, '');
  });
  document.addEventListener('htmx:sseClose', function (evt) {
    if (evt.detail && evt.detail.type === 'message') liveStatus(evt.target, '');
  });

  // The element an event swaps into: a list or an output box that stays in
  // the page is filled through a hidden listener that names it with
  // hx-target, so replacing the box's content never drops a listener.
  function swapTarget(el) {
    var sel = el && el.getAttribute && el.getAttribute('hx-target');
    return (sel && document.querySelector(sel)) || el;
  }

  // Streamed output follows the text, unless the reader scrolled up.
  document.addEventListener('htmx:sseBeforeMessage', function (evt) {
    var el = swapTarget(evt.target);
    if (el && el.classList && el.classList.contains('output')) {
      el.dataset.pinned = (el.scrollHeight - el.scrollTop - el.clientHeight < 24) ? '1' : '';
    }
  });
  document.addEventListener('htmx:sseMessage', function (evt) {
    var el = swapTarget(evt.target);
    if (!el || !el.classList) return;
    if (el.classList.contains('output') && el.dataset.pinned === '1') {
      el.scrollTop = el.scrollHeight;
    }
    if (el.id === 'msglist') {
      var box = document.getElementById('messages');
      if (box) box.scrollTop = box.scrollHeight;
      var tl = document.getElementById('timeline');
      if (tl) tl.scrollTop = tl.scrollHeight;
    }
    var max = parseInt(el.getAttribute('data-max-rows') || '0', 10);
    if (max > 0) {
      while (el.rows && el.rows.length > max) el.deleteRow(el.rows.length - 1);
    }
  });

  // Timeline: an arrow opens its message in the list beside it.
  document.addEventListener('click', function (evt) {
    var link = evt.target.closest && evt.target.closest('a[data-msg]');
    if (!link) return;
    var item = document.getElementById('msg-' + link.getAttribute('data-msg'));
    if (!item) return;
    evt.preventDefault();
    var details = item.querySelector('details');
    if (details) details.open = true;
    document.querySelectorAll('.msg.is-selected').forEach(function (m) { m.classList.remove('is-selected'); });
    item.classList.add('is-selected');
    item.scrollIntoView({ block: 'nearest' });
    var summary = item.querySelector('summary');
    if (summary) summary.focus({ preventScroll: true });
  });

  // A chosen file is read into the import box, so it can be checked (and
  // fixed) before it is sent; the server reads the box.
  document.addEventListener('change', function (evt) {
    var input = evt.target;
    if (!input.matches || !input.matches('input[type=file][data-load-into]')) return;
    var file = input.files && input.files[0];
    var box = document.getElementById(input.getAttribute('data-load-into'));
    if (!file || !box) return;
    file.text().then(function (text) {
      box.value = text;
      box.focus();
    });
  });

  // Times are sent in UTC; show them in the reader's time zone.
  var dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  var clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3 });
  function localTimes(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var list = Array.prototype.slice.call(scope.querySelectorAll('time[datetime]'));
    if (scope.matches && scope.matches('time[datetime]')) list.push(scope);
    list.forEach(function (t) {
      if (t.dataset.local) return;
      var d = new Date(t.getAttribute('datetime'));
      if (isNaN(d)) return;
      // A relative time ("4 s ago") keeps its text; the exact time is its title.
      if (t.dataset.format === 'relative') {
        t.title = dateTime.format(d);
        t.dataset.local = '1';
        return;
      }
      t.title = t.textContent;
      t.textContent = (t.dataset.format === 'time' ? clock : dateTime).format(d);
      t.dataset.local = '1';
    });
  }
  // A page part that needs a module names it in data-module; the module's
  // mount(element) starts it. Loading it here, not with a script tag in
  // the page, makes it start on a page htmx swapped in too (htmx runs no
  // script of swapped content).
  function mountModules(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var list = Array.prototype.slice.call(scope.querySelectorAll('[data-module]'));
    if (scope.matches && scope.matches('[data-module]')) list.push(scope);
    list.forEach(function (el) {
      if (el.dataset.mounted) return;
      el.dataset.mounted = 'loading';
      import(el.dataset.module).then(function (m) { m.mount(el); }).catch(function (err) {
        el.dataset.mounted = 'failed';
        showError(el, 'This part of the page could not start: ' + err.message);
        throw err;
      });
    });
  }
  document.addEventListener('htmx:load', function (evt) { localTimes(evt.target); mountModules(evt.target); });
  document.addEventListener('DOMContentLoaded', function () { mountModules(document); });
  document.addEventListener('DOMContentLoaded', function () { localTimes(document); });
})();
