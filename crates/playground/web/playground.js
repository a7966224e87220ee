// Zentinel playground: the page around zentinel.js. Plain DOM, no framework, no network beyond
// fetching zentinel_playground.wasm next to the page (or a file the user picks, for file://).
// Everything shown comes from the wasm module's JSON; this file only renders it.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  let zen = null;            // the loaded module
  let lastValid = null;      // the last {ok:true, summary, config} from validate

  // --- DOM helpers ---------------------------------------------------------------------------
  // h('td', {class: 'mono'}, 'text', node, ...): children are strings (as text) or nodes.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }
  // Replaces an element's children, leaving out the null / false of optional parts.
  const fill = (el, ...nodes) => el.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
  const none = (v) => v === null || v === undefined;
  const show = (v) => none(v) ? '—' : (typeof v === 'object' ? JSON.stringify(v) : String(v));
  const ms = (v) => none(v) ? '—' : `${v} ms`;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : (many || one + 's')}`;
  const card = (title, ...body) => h('div', { class: 'card' }, h('h3', {}, title), ...body);
  // A two-column table of [label, value] rows; rows with an undefined value are left out.
  const facts = (rows) => h('table', { class: 'facts' },
    rows.filter((r) => r[1] !== undefined).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v instanceof Node ? v : show(v)))));
  // Every field of an object as rows (nested objects as compact JSON).
  const objectFacts = (obj, skip = []) => facts(Object.entries(obj || {}).filter(([k]) => !skip.includes(k)).map(([k, v]) => [k.replace(/_/g, ' '), v]));
  const holds = (b) => h('span', { class: b ? 'yes' : 'no', title: b ? 'holds' : 'does not hold' }, b ? '✓' : '✗');

  // --- loading -------------------------------------------------------------------------------
  function status(state, text) {
    const s = $('status');
    s.dataset.state = state;
    s.textContent = text;
  }
  async function start(source, label) {
    status('loading', `Loading ${label}…`);
    zen = await window.zentinel.load(source);
    status('ready', `Ready: ${label} loaded. Validation, explanation and conversion run in this tab.`);
    $('picker').hidden = true;
    $('defaults').textContent = zen.defaults();
    validateNow();
  }
  async function boot() {
    setupTabs();
    setupEditor();
    setupExplain();
    setupConvert();
    $('wasm-file').addEventListener('change', async (e) => {
      const f = e.target.files && e.target.files[0];
      if (!f) return;
      try { await start(new Uint8Array(await f.arrayBuffer()), f.name); } catch (err) {
        status('error', `Could not load ${f.name}: ${err.message}`);
      }
    });
    try {
      await start(undefined, 'zentinel_playground.wasm');
    } catch (err) {
      status('pick', `The module could not be fetched (${err.message}). Pick the .wasm file below.`);
      $('picker').hidden = false;
    }
  }

  // --- tabs ----------------------------------------------------------------------------------
  function selectTab(name) {
    for (const b of document.querySelectorAll('nav.tabs [role=tab]')) {
      const on = b.id === `tab-${name}`;
      b.setAttribute('aria-selected', String(on));
      $(b.getAttribute('aria-controls')).hidden = !on;
    }
    if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  }
  function setupTabs() {
    for (const b of document.querySelectorAll('nav.tabs [role=tab]')) {
      b.addEventListener('click', () => selectTab(b.id.slice(4)));
    }
    const wanted = location.hash.slice(1);
    if ($(`tab-${wanted}`)) selectTab(wanted);
  }

  // --- editor and validation -----------------------------------------------------------------
  const seed = () => $('seed').textContent;
  let timer = 0;
  function setupEditor() {
    const ta = $('config');
    ta.value = seed();
    ta.addEventListener('input', () => { paintLines([]); clearTimeout(timer); timer = setTimeout(validateNow, 250); });
    ta.addEventListener('scroll', syncScroll);
    // Tab inserts four spaces; Escape first, then Tab, moves the focus on (keyboard users).
    let escaped = false;
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { escaped = true; return; }
      const plainTab = e.key === 'Tab' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey;
      if (!plainTab || escaped) { escaped = false; return; }
      e.preventDefault();
      ta.setRangeText('    ', ta.selectionStart, ta.selectionEnd, 'end');
      ta.dispatchEvent(new Event('input'));
    });
    $('reset-seed').addEventListener('click', () => setConfig(seed()));
    paintLines([]);
  }
  function setConfig(text) {
    const ta = $('config');
    ta.value = text;
    ta.scrollTop = 0;
    paintLines([]);
    validateNow();
  }
  function syncScroll() {
    const ta = $('config');
    $('gutter').scrollTop = ta.scrollTop;
    $('marks').scrollTop = ta.scrollTop;
  }
  // Line numbers and the per-line marks behind the text; `problems` mark their lines.
  function paintLines(problems) {
    const n = $('config').value.split('\n').length;
    const marked = new Map();
    for (const p of problems) if (p.line && !marked.has(p.line)) marked.set(p.line, p.severity === 'warning' ? 'warning' : 'error');
    const gutter = $('gutter'), marks = $('marks');
    gutter.replaceChildren(); marks.replaceChildren();
    for (let i = 1; i <= n + 1; i++) {     // one spare line so the last can scroll fully into view
      const cls = marked.get(i);
      gutter.append(h('span', { class: cls, 'data-line': i }, i <= n ? String(i) : ''));
      marks.append(h('span', { class: cls, 'data-line': i }, ' '));
    }
    syncScroll();
  }
  function validateNow() {
    clearTimeout(timer);
    if (!zen) return;
    const text = $('config').value;
    let r;
    try { r = zen.validate(text); } catch (err) {
      renderVerdict({ ok: false, problems: [{ code: 'internal', message: String(err.message || err) }] });
      return;
    }
    renderVerdict(r);
  }
  function renderVerdict(r) {
    const v = $('verdict'), list = $('diagnostics');
    list.replaceChildren();
    if (r.ok) {
      lastValid = r;
      const s = r.summary;
      v.dataset.state = 'ok';
      v.textContent = `Valid: ${plural(s.listeners, 'listener')}, ${plural(s.routes, 'route')}, ` +
        `${plural(s.upstreams, 'upstream')}, ${plural(s.agents, 'agent')}, ${plural(s.filters, 'filter')}.`;
      $('normalised').textContent = JSON.stringify(r.config, null, 2);
      fill($('listener-ids'), ...(r.config.listeners || []).map((l) => h('option', { value: l.id })));
      paintLines([]);
      return;
    }
    lastValid = null;
    v.dataset.state = 'bad';
    v.textContent = `${plural(r.problems.length, 'problem')}: the proxy would refuse this configuration.`;
    $('normalised').textContent = 'Not valid: see the Config tab.';
    list.append(...r.problems.map(diagnostic));
    paintLines(r.problems);
  }
  function diagnostic(p) {
    const where = p.line ? `line ${p.line}, column ${p.column}` : 'whole file';
    return h('li', {
      class: p.severity === 'warning' ? 'warning' : 'error',
      'data-code': p.code, 'data-line': p.line, 'data-column': p.column,
      title: p.line ? 'Jump to the problem' : undefined,
      onclick: () => p.line && jumpTo(p),
    },
    h('span', { class: 'where' }, where), h('span', { class: 'code' }, p.code),
    h('span', { class: 'message' }, p.message),
    p.label ? h('span', { class: 'label' }, p.label) : null,
    p.help ? h('span', { class: 'help' }, p.help) : null,
    (p.related || []).map((q) => h('span', { class: 'where related' }, `line ${q.line}, column ${q.column}: ${q.message}`)));
  }
  // Index (UTF-16 units) of a 1-based line and column counted in Unicode scalar values.
  function indexOf(text, line, column) {
    let i = 0;
    for (let l = 1; l < line; l++) { const n = text.indexOf('\n', i); if (n < 0) return text.length; i = n + 1; }
    for (let c = 1; c < column && i < text.length && text[i] !== '\n'; c++) i += text.codePointAt(i) > 0xffff ? 2 : 1;
    return i;
  }
  function jumpTo(p) {
    const ta = $('config'), text = ta.value, start = indexOf(text, p.line, p.column);
    let end = start, bytes = 0;
    while (end < text.length && bytes < (p.length || 0)) {   // `length` is in UTF-8 bytes
      const cp = text.codePointAt(end);
      bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      end += cp > 0xffff ? 2 : 1;
    }
    ta.focus();
    ta.setSelectionRange(start, end);
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 19;
    ta.scrollTop = Math.max(0, (p.line - 4) * lh);
    for (const s of $('marks').children) s.classList.toggle('focus', Number(s.dataset.line) === p.line);
  }

  // --- explain -------------------------------------------------------------------------------
  function setupExplain() {
    $('request-form').addEventListener('submit', (e) => { e.preventDefault(); explainNow(); });
  }
  function explainNow() {
    const out = $('explanation');
    if (!zen) { fill(out, h('div', { class: 'error-box' }, 'The module is not loaded yet.')); return; }
    const request = {
      config: $('config').value,
      method: $('req-method').value.trim() || 'GET',
      url: $('req-url').value.trim(),
      headers: $('req-headers').value.split('\n').map((l) => l.trim()).filter(Boolean),
    };
    if ($('req-client').value.trim()) request.client_ip = $('req-client').value.trim();
    if ($('req-listener').value.trim()) request.listener = $('req-listener').value.trim();
    let r;
    try { r = zen.explain(request); } catch (err) { r = { ok: false, error: String(err.message || err) }; }
    if (r.ok) { fill(out, ...renderExplanation(r.explanation)); return; }
    if (r.problems) {
      fill(out, h('div', { class: 'error-box', 'data-testid': 'explain-error' },
        `The configuration is invalid (${plural(r.problems.length, 'problem')}); fix it in the Config tab first.`),
      h('ol', { class: 'diagnostics' }, r.problems.map(diagnostic)));
      return;
    }
    fill(out, h('div', { class: 'error-box', 'data-testid': 'explain-error' }, r.error));
  }
  function renderExplanation(x) {
    const o = x.outcome;
    const outcome = o.action === 'forward'
      ? h('div', { class: 'outcome forward', 'data-testid': 'outcome', 'data-action': 'forward' },
        `Forwarded to upstream “${o.upstream}”`, h('span', { class: 'muted' }, ' — once the route’s agents allow it'))
      : h('div', { class: 'outcome refuse', 'data-testid': 'outcome', 'data-action': o.action },
        `Refused: ${o.status} ${o.reason}`, h('div', { class: 'muted' }, o.cause));
    return [outcome,
      h('div', { class: 'grid2' }, requestCard(x.request), listenerCard(x.listener)),
      routingCard(x.routing),
      x.refusals.length ? card('Every reason the proxy would answer itself', h('ol', {},
        x.refusals.map((r) => h('li', {}, h('b', {}, `${r.status} ${r.reason}`), ` — ${r.cause}`)))) : null,
      x.route ? upstreamCard(x.route.upstream) : null,
      x.route ? filtersCard(x.route.filters) : null,
      x.route ? h('div', { class: 'grid2' }, timeoutsCard(x.route.timeouts), retryCard(x.route.retry, x.route.websocket)) : null,
      x.route && x.route.inference ? inferenceCard(x.route.inference) : null,
      limitsCard(x.limits),
      x.route ? headersCard(x.route) : null,
      h('details', {}, h('summary', {}, 'The explanation as JSON (identical to zentinel explain --format json)'),
        h('pre', { class: 'json' }, JSON.stringify(x, null, 2)))];
  }
  function requestCard(q) {
    const c = q.client;
    return card('Request', facts([
      ['request', h('span', { class: 'mono' }, `${q.method} ${q.scheme}://${q.host}${q.path}${q.query ? '?' + q.query : ''}`)],
      ['host looked up', q.lookup_host === null ? '(matches no configured name)' : q.lookup_host],
      ['target bytes', q.target_bytes],
      ['header lines / bytes', `${q.header_count} / ${q.header_bytes}`],
      ['declared body', none(q.declared_body_bytes) ? 'none (no Content-Length)' : `${q.declared_body_bytes} bytes`],
      ['upgrade', q.upgrade || undefined],
      ['client', c ? `${c.client_ip}${c.from_forwarded_for ? ' (from X-Forwarded-For)' : ''}; peer ${c.peer}${c.trusted_proxy ? ' (a trusted proxy)' : ''}` : 'not given'],
    ]));
  }
  function listenerCard(l) {
    const t = l.tls;
    return card('Listener', facts([
      ['listener', h('b', { 'data-testid': 'listener' }, l.id)],
      ['address / protocol', `${l.address} · ${l.protocol}`],
      ['why', l.why],
      ['routes served', l.routes ? l.routes.join(', ') : 'every route'],
      ['default route', l.default_route || 'none (404 when nothing matches)'],
      ['TLS', t ? `certificate ${t.cert_file} (chosen by ${t.cert_chosen_by}), SNI ${show(t.server_name)}, TLS ≥ ${t.min_version}` +
        (t.client_auth ? `, client auth ${show(t.client_auth)}` : '') : undefined],
    ]), l.notes.length ? h('ul', {}, l.notes.map((n) => h('li', {}, n))) : null);
  }
  function conditions(list) {
    if (!list.length) return h('p', { class: 'muted' }, 'No conditions: it matches every request.');
    return h('table', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'condition'), h('th', {}, 'expected'), h('th', {}, 'request has')),
      list.map((c) => h('tr', {}, h('td', {}, holds(c.holds)), h('td', { class: 'mono' }, c.key),
        h('td', { class: 'mono' }, c.expected), h('td', { class: 'mono' }, none(c.found) ? '(nothing)' : c.found))));
  }
  function routingCard(r) {
    const m = r.matched;
    return card(`Routing (${plural(r.candidates, 'candidate route')})`,
      m ? h('div', {}, h('p', {}, 'Matched route ', h('b', { 'data-testid': 'matched-route', class: 'mono' }, m.id),
        ` — priority ${m.priority}, rank ${m.rank}, ${m.by === 'default-route' ? 'the listener’s default route (nothing else matched)' : 'its conditions hold'}`),
      conditions(m.conditions))
        : h('p', { 'data-testid': 'matched-route', 'data-none': '' }, h('b', {}, 'No route matches: the proxy answers 404.')),
      r.shadowed.length ? h('div', {}, h('h4', {}, 'Shadowed (their conditions hold too, but they rank lower and never see this request)'),
        h('ul', { 'data-testid': 'shadowed' }, r.shadowed.map((s) => h('li', {}, h('span', { class: 'mono' }, s.id), ` — priority ${s.priority}, rank ${s.rank}`)))) : null,
      r.near_misses.length ? h('div', {}, h('h4', {}, 'Near misses (ranked above, missed by one condition)'),
        r.near_misses.map((n) => h('div', { class: 'near-miss' }, h('p', {}, h('span', { class: 'mono' }, n.id), ` — priority ${n.priority}, rank ${n.rank}`), conditions(n.conditions)))) : null,
      r.not_on_listener.length ? h('p', {}, 'Would match but not served by this listener: ', r.not_on_listener.join(', ')) : null);
  }
  function upstreamCard(u) {
    return card(`Upstream ${u.id}`, facts([
      ['load balancing', u.load_balancing + (u.hash_on ? ` on ${show(u.hash_on)} = ${show(u.hash_value)}` : '')],
      ['targets', h('span', {}, u.targets.map((t) => h('div', { class: 'mono' }, `${t.address} weight ${t.weight}`)))],
      ['health check', u.health_check ? show(u.health_check) : 'none (judged by traffic only)'],
      ['passive health', u.passive_health.enabled ? `eject after ${u.passive_health.consecutive_failures} failures for ${ms(u.passive_health.ejection_time)}` : 'off'],
      ['TLS to targets', u.tls ? show(u.tls) : 'none (clear text)'],
      ['connection pool', `${u.connection_pool.max_idle} idle, idle timeout ${ms(u.connection_pool.idle_timeout)}`],
    ]));
  }
  function failureTag(mode) { return h('span', { class: `tag ${mode}` }, `fail ${mode}`); }
  function filtersCard(filters) {
    if (!filters.length) return card('Filters and agents', h('p', { class: 'muted' }, 'None: the route sends the request straight upstream.'));
    return card(`Filters and agents (${filters.length}, in order)`, h('ol', {}, filters.map((f) => {
      if (f.filter === 'agent') {
        const of = f.on_failure;
        const onFail = of.action === 'refuse'
          ? `refuse: ${of.timeout_status} on timeout, ${of.failure_status} on failure` + (none(of.body_over_limit_status) ? '' : `, ${of.body_over_limit_status} when the body is over the inspection limit`)
          : 'continue: the request goes on without the agent';
        return h('li', { 'data-testid': 'filter', 'data-id': f.id }, h('b', {}, `agent ${f.id}`), failureTag(f.failure_mode),
          facts([
            ['transport', `${f.transport.kind} ${f.transport.address}`],
            ['events', f.events.join(', ')],
            ['timeout', ms(f.timeout)],
            ['concurrency', `${f.max_concurrent_calls} calls, queue timeout ${ms(f.queue_timeout)}, ${plural(f.connections, 'connection')}`],
            ['failure mode', `${f.failure_mode} (set by the ${f.failure_mode_from}; the agent’s own is ${f.agent_failure_mode})`],
            ['when it fails', onFail],
            ['request body', f.request_body ? `${f.request_body.mode}, up to ${f.request_body.max_bytes} bytes${f.request_body.over_limit ? ' — this request is over it' : ''}` : 'not inspected'],
            ['response body', f.response_body ? `${f.response_body.mode}, up to ${f.response_body.max_bytes} bytes` : 'not inspected'],
            ['circuit breaker', f.circuit_breaker ? `opens after ${f.circuit_breaker.failure_threshold} failures, closes after ${f.circuit_breaker.success_threshold} successes, ${ms(f.circuit_breaker.timeout)} open` : 'none'],
          ]));
      }
      const k = f.kind || {};
      return h('li', { 'data-testid': 'filter', 'data-id': f.id }, h('b', {}, `${k.type || f.filter} ${f.id}`), objectFacts(k, ['type']));
    })));
  }
  function timeoutsCard(t) {
    return card('Timeouts', facts([
      ['connect', ms(t.connect)], ['read', ms(t.read)], ['write', ms(t.write)], ['total', ms(t.total)],
      ['per try', ms(t.per_try)],
      ['first try', t.first_try ? `connect ${ms(t.first_try.connect)}, read ${ms(t.first_try.read)}, write ${ms(t.first_try.write)}` : undefined],
    ]));
  }
  function retryCard(r, websocket) {
    const p = r.policy;
    return card('Retries', facts([
      ['attempts', p.max_attempts], ['retry on', p.retry_on.join(', ') || 'nothing'],
      ['for this request', r.applies.length ? r.applies.join(', ') : 'no retry'],
      ['why not all', r.limited_by || undefined],
      ['budget', `${p.budget_percent}% of requests, at least ${p.min_retries_per_second}/s`],
      ['WebSocket', websocket ? 'upgrades passed through' : 'upgrades refused (403)'],
    ]));
  }
  function inferenceCard(i) {
    const key = i.key.map((k) => (k.name ? `${k.kind}:${k.name}` : k.kind)).join(' + ');
    return h('div', { 'data-testid': 'inference' }, card('Inference limits (LLM tokens)', facts([
      ['provider', i.provider], ['kept per', key],
      ['tokens per minute', none(i.tokens_per_minute) ? 'no limit' : i.tokens_per_minute],
      ['requests per minute', none(i.requests_per_minute) ? 'no limit' : i.requests_per_minute],
      ['budgets', i.budgets.length ? i.budgets.map((b) => `${b.period} ${b.limit} (${b.mode})`).join(', ') : 'none'],
      ['prompts counted by', i.tokenizer],
    ])));
  }
  function limitsCard(limits) {
    const over = limits.filter((l) => l.exceeded).length;
    return card(`Limits${over ? ` — ${over} exceeded` : ''}`, h('table', { 'data-testid': 'limits' },
      h('tr', {}, h('th', {}, 'limit'), h('th', {}, 'setting'), h('th', {}, 'max'), h('th', {}, 'request'), h('th', {}, 'beyond it')),
      limits.map((l) => h('tr', { class: l.exceeded ? 'exceeded' : undefined },
        h('td', {}, l.what, l.exceeded ? h('span', { class: 'tag closed' }, 'exceeded') : null),
        h('td', { class: 'mono' }, l.setting), h('td', {}, l.max),
        h('td', {}, none(l.request) ? '(not known ahead)' : l.request),
        h('td', {}, none(l.status) ? 'connection closed' : l.status)))));
  }
  function headersCard(route) {
    const policy = (p) => {
      const rows = [];
      for (const [a, b] of p.rename) rows.push(`rename ${a} → ${b}`);
      for (const a of p.remove) rows.push(`remove ${a}`);
      for (const [a, b] of p.set) rows.push(`set ${a}: ${b}`);
      for (const [a, b] of p.add) rows.push(`add ${a}: ${b}`);
      return rows.length ? h('span', {}, rows.map((r) => h('div', { class: 'mono' }, r))) : 'unchanged';
    };
    return card('Headers', facts([
      ['to the upstream', policy(route.request_headers)], ['to the client', policy(route.response_headers)],
      ['the proxy writes', `request: ${route.proxy_headers.request.join(', ') || 'none'}; response: ${route.proxy_headers.response.join(', ') || 'none'}`],
    ]));
  }

  // --- convert -------------------------------------------------------------------------------
  const EXAMPLES = {
    nginx: `http {
    upstream app {
        least_conn;
        server 10.0.0.1:8080 weight=3;
        server 10.0.0.2:8080;
    }
    server {
        listen 127.0.0.1:8080;
        server_name www.example.com;
        client_max_body_size 2m;
        location /api/ {
            proxy_pass http://app;
            proxy_read_timeout 20s;
            proxy_set_header X-Edge zentinel;
        }
        location / {
            proxy_pass http://app;
        }
        gzip on;
    }
}
`,
    haproxy: `defaults
    mode http
    timeout connect 2s
    timeout server 20s

frontend web
    bind 127.0.0.1:8080
    acl is_api path_beg /api/
    use_backend api if is_api
    default_backend site

backend api
    balance leastconn
    option httpchk GET /healthz
    server a1 10.0.0.1:8080 weight 3 check
    server a2 10.0.0.2:8080 check

backend site
    server s1 10.0.0.3:8080
`,
    'traefik-yaml': `http:
  routers:
    api:
      rule: "Host(\`api.example.com\`) && PathPrefix(\`/v1/\`)"
      service: api
  services:
    api:
      loadBalancer:
        servers:
          - url: "http://10.0.0.1:8080"
          - url: "http://10.0.0.2:8080"
`,
    'traefik-toml': `[http.routers.api]
  rule = "Host(\`api.example.com\`) && PathPrefix(\`/v1/\`)"
  service = "api"

[[http.services.api.loadBalancer.servers]]
  url = "http://10.0.0.1:8080"

[[http.services.api.loadBalancer.servers]]
  url = "http://10.0.0.2:8080"
`,
  };
  function setupConvert() {
    $('conv-source').value = EXAMPLES.nginx;
    $('convert-form').addEventListener('submit', (e) => { e.preventDefault(); convertNow(); });
    // Traefik's entry point addresses live in its static configuration: the examples give one.
    $('conv-example').addEventListener('click', () => {
      const from = $('conv-from').value;
      $('conv-source').value = EXAMPLES[from];
      $('conv-listen').value = from.startsWith('traefik') ? '127.0.0.1:8080' : '';
      convertNow();
    });
  }
  function convertNow() {
    const out = $('conversion');
    if (!zen) { fill(out, h('div', { class: 'error-box' }, 'The module is not loaded yet.')); return; }
    const request = { from: $('conv-from').value, text: $('conv-source').value };
    if ($('conv-listen').value.trim()) request.listen = $('conv-listen').value.trim();
    let r;
    try { r = zen.convert(request); } catch (err) { r = { ok: false, error: String(err.message || err) }; }
    if (r.error) { fill(out, h('div', { class: 'error-box', 'data-testid': 'convert-error' }, r.error)); return; }
    const count = (o) => r.report.filter((e) => e.outcome === o).length;
    const suggestions = r.report.filter((e) => e.suggestion);
    fill(out, 
      h('div', { class: `outcome ${r.ok ? 'forward' : 'refuse'}`, 'data-testid': 'convert-verdict', 'data-ok': String(r.ok) },
        r.ok ? 'The KDL validates.' : 'The KDL does not validate yet: see the blockers and problems below.'),
      h('p', { class: 'report-counts', 'data-testid': 'report-counts' },
        h('span', { class: 'mapped', 'data-count': count('mapped') }, `${count('mapped')} mapped`),
        h('span', { class: 'caveat', 'data-count': count('mapped-with-caveat') }, `${count('mapped-with-caveat')} mapped with a caveat`),
        h('span', { class: 'not-mapped', 'data-count': count('not-mapped') }, `${count('not-mapped')} not mapped`)),
      r.blockers.length ? card('Blockers', h('ul', { 'data-testid': 'blockers' }, r.blockers.map((b) => h('li', {}, b)))) : null,
      r.diagnostics && r.diagnostics.problems ? card('Problems in the KDL', h('ol', { class: 'diagnostics' }, r.diagnostics.problems.map(diagnostic))) : null,
      card('KDL', h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'load-kdl', onclick: () => { selectTab('config'); setConfig(r.kdl); } }, 'Load into the editor')),
      h('pre', { class: 'kdl', id: 'conv-kdl' }, r.kdl)),
      suggestions.length ? card('Suggestions', h('ul', {}, suggestions.map((e) => h('li', {}, h('span', { class: 'mono' }, e.directive), ` (line ${e.line}): ${e.suggestion}`)))) : null,
      card(`Report: every directive (${r.report.length})`, h('table', { 'data-testid': 'report' },
        h('tr', {}, h('th', {}, 'line:col'), h('th', {}, 'directive'), h('th', {}, 'context'), h('th', {}, 'outcome'), h('th', {}, 'reason')),
        r.report.map((e) => h('tr', { class: `outcome-${e.outcome}` },
          h('td', { class: 'mono' }, `${e.line}:${e.column}`), h('td', { class: 'mono' }, e.directive),
          h('td', { class: 'mono muted' }, e.context), h('td', {}, e.outcome.replace(/-/g, ' ')),
          h('td', {}, e.reason || '', e.suggestion ? h('div', { class: 'muted' }, `suggestion: ${e.suggestion}`) : null))))));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
