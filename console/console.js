// Event stream console: plain browser JavaScript, no framework and no build step.
// Every call is ftn18es.admin:1.1 over one FutoIn (FTN7 JSON) WebSocket to the service root,
// with the administrator's name:secret in each message. Values reach the DOM as text only.
// The service takes admin calls only from its own origin (a WebSocket opened from a page
// elsewhere is refused), so a page elsewhere cannot act through an admin's browser.
'use strict';

(() => {
  const IFACE = 'ftn18es.admin:1.1:';
  const STORE_KEY = 'evtstream.console.credentials';
  const REFRESH_MS = 1000;
  const CALL_TIMEOUT_MS = 15000;
  const CONNECT_TIMEOUT_MS = 5000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  /** Lagging events counted per consumer at most (more shows as "10,000+"). */
  const LAG_LIMIT = 10000;
  /** Lag history kept for the sparklines. */
  const HISTORY_MS = 5 * 60 * 1000;
  const SPARK_W = 120;
  const SPARK_H = 24;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const TYPE_RE = /^[A-Z_]{1,16}$/;
  const ID_RE = /^(0|[1-9][0-9]{0,17})$/;

  const utf8 = new TextDecoder();
  const $ = (id) => document.getElementById(id);
  const el = {
    stats: $('stats'),
    newest: $('st-newest'),
    rate: $('st-rate'),
    active: $('st-active'),
    warehouseBox: $('st-warehouse-box'),
    warehouse: $('st-warehouse'),
    consumersN: $('st-consumers'),
    push: $('st-push'),
    time: $('st-time'),
    conn: $('conn'),
    who: $('who'),
    logout: $('logout'),
    login: $('login'),
    loginForm: $('login-form'),
    loginName: $('login-name'),
    loginSecret: $('login-secret'),
    loginError: $('login-error'),
    app: $('app'),
    consumers: $('consumers').tBodies[0],
    consumersCount: $('consumers-count'),
    consumersEmpty: $('consumers-empty'),
    filters: $('filters'),
    source: $('f-source'),
    limit: $('f-limit'),
    last: $('f-last'),
    live: $('f-live'),
    types: $('f-types'),
    from: $('f-from'),
    to: $('f-to'),
    since: $('f-since'),
    until: $('f-until'),
    eventsStatus: $('events-status'),
    events: $('events').tBodies[0],
    detailTitle: $('detail-title'),
    detailEmpty: $('detail-empty'),
    detailJson: $('detail-json'),
    parked: $('parked').tBodies[0],
    parkedCount: $('parked-count'),
    parkedStatus: $('parked-status'),
    pConsumer: $('p-consumer'),
    pResolved: $('p-resolved'),
    pReplayAll: $('p-replay-all'),
    pSkipAll: $('p-skip-all'),
    act: $('act'),
    actForm: $('act-form'),
    actTitle: $('act-title'),
    actBody: $('act-body'),
    actEffect: $('act-effect'),
    actError: $('act-error'),
    actCancel: $('act-cancel'),
    actPreview: $('act-preview'),
    actOk: $('act-ok'),
  };

  // ---- Small helpers -------------------------------------------------------------------------

  const fmtInt = (n) => Number(n).toLocaleString('en-US');

  function fmtDuration(ms) {
    if (!(ms > 0)) return '0 s';
    const s = ms / 1000;
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 60) return `${Math.floor(s)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  /** "2024-05-01T10:00:00Z" → "2024-05-01 10:00:00". */
  const fmtTime = (iso) =>
    String(iso || '')
      .replace('T', ' ')
      .replace(/(\.\d+)?Z$/, '');

  function node(tag, text, className) {
    const n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = String(text);
    if (className) n.className = className;
    return n;
  }

  /**
   * Puts `rows` in `tbody` moving as few nodes as it can: rows that stay are not re-inserted, so
   * hover, focus and the arrival highlight survive a refresh.
   */
  function setRows(tbody, rows) {
    const keep = new Set(rows);
    for (const child of [...tbody.children]) if (!keep.has(child)) child.remove();
    rows.forEach((row, i) => {
      const at = tbody.children[i];
      if (at !== row) tbody.insertBefore(row, at || null);
    });
  }

  function rpcError(code, info) {
    const e = new Error(info ? `${code}: ${info}` : code);
    e.code = code;
    e.info = info || '';
    return e;
  }

  // ---- Connection: one WebSocket, calls matched by rid, reconnect with backoff ----------------

  const conn = {
    ws: null,
    open: false,
    wanted: false,
    seq: 0,
    pending: new Map(),
    waiters: [],
    backoff: BACKOFF_MIN_MS,
    retryTimer: 0,
  };

  function serviceUrl() {
    // The service root: the page is at <root>/console/.
    const u = new URL('../', location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.search = '';
    u.hash = '';
    return u.toString();
  }

  function setConn(state, text) {
    el.conn.dataset.state = state;
    el.conn.textContent = text;
  }

  function settleWaiters(err) {
    const waiters = conn.waiters.splice(0);
    for (const w of waiters) {
      clearTimeout(w.timer);
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  function failPending(err) {
    for (const p of conn.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    conn.pending.clear();
  }

  function connect() {
    if (conn.ws) return;
    clearTimeout(conn.retryTimer);
    conn.retryTimer = 0;
    setConn('connecting', 'connecting…');
    let ws;
    try {
      ws = new WebSocket(serviceUrl());
    } catch (err) {
      scheduleReconnect(rpcError('CommError', String(err && err.message)));
      return;
    }
    // Answers come as binary frames (UTF-8 JSON).
    ws.binaryType = 'arraybuffer';
    conn.ws = ws;
    ws.onopen = () => {
      if (conn.ws !== ws) return;
      conn.open = true;
      conn.backoff = BACKOFF_MIN_MS;
      setConn('online', 'live');
      settleWaiters(null);
      refreshSoon();
    };
    ws.onmessage = (ev) => {
      if (conn.ws === ws) onMessage(ev.data);
    };
    ws.onclose = () => {
      if (conn.ws !== ws) return;
      conn.ws = null;
      conn.open = false;
      const err = rpcError('CommError', 'the connection to the service was lost');
      failPending(err);
      scheduleReconnect(err);
    };
  }

  function scheduleReconnect(err) {
    settleWaiters(err);
    if (!conn.wanted) {
      setConn('off', 'not connected');
      return;
    }
    const delay = conn.backoff;
    conn.backoff = Math.min(BACKOFF_MAX_MS, conn.backoff * 2);
    setConn('retry', `disconnected, retrying in ${Math.ceil(delay / 1000)} s`);
    conn.retryTimer = setTimeout(connect, delay);
  }

  function disconnect() {
    conn.wanted = false;
    clearTimeout(conn.retryTimer);
    conn.retryTimer = 0;
    const ws = conn.ws;
    conn.ws = null;
    conn.open = false;
    const err = rpcError('Cancelled', 'logged out');
    failPending(err);
    settleWaiters(err);
    if (ws) ws.close();
    setConn('off', 'not connected');
  }

  /** Resolves once the socket is open (connecting now if it is not). */
  function opened() {
    if (conn.open) return Promise.resolve();
    conn.wanted = true;
    if (!conn.ws) connect();
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, timer: 0 };
      w.timer = setTimeout(() => {
        conn.waiters = conn.waiters.filter((x) => x !== w);
        reject(rpcError('CommError', 'the service does not answer'));
      }, CONNECT_TIMEOUT_MS);
      conn.waiters.push(w);
    });
  }

  function onMessage(data) {
    let msg;
    try {
      msg = JSON.parse(typeof data === 'string' ? data : utf8.decode(data));
    } catch {
      return;
    }
    if (!msg || typeof msg.rid !== 'string') return;
    const p = conn.pending.get(msg.rid);
    if (!p) return;
    conn.pending.delete(msg.rid);
    clearTimeout(p.timer);
    if (msg.e !== undefined) p.reject(rpcError(String(msg.e), msg.edesc ? String(msg.edesc) : ''));
    else p.resolve(msg.r);
  }

  /** Calls ftn18es.admin:1.0:<fn> with the logged-in credentials; resolves with its result. */
  async function call(fn, params) {
    const creds = session.creds;
    if (!creds) throw rpcError('SecurityError', 'not logged in');
    await opened();
    if (session.creds !== creds || !conn.open) throw rpcError('Cancelled', 'logged out');
    return new Promise((resolve, reject) => {
      const rid = `C${++conn.seq}`;
      const timer = setTimeout(() => {
        conn.pending.delete(rid);
        reject(rpcError('Timeout', `${fn} got no answer`));
      }, CALL_TIMEOUT_MS);
      conn.pending.set(rid, { resolve, reject, timer });
      conn.ws.send(
        JSON.stringify({ f: IFACE + fn, p: params, rid, sec: `${creds.name}:${creds.secret}` }),
      );
    });
  }

  // ---- Session: login form, credentials in sessionStorage only -------------------------------

  const session = { creds: null, loopTimer: 0 };

  function storedCreds() {
    try {
      const c = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
      return c && typeof c.name === 'string' && typeof c.secret === 'string' ? c : null;
    } catch {
      return null;
    }
  }

  function showLogin(message) {
    el.app.hidden = true;
    el.stats.hidden = true;
    el.logout.hidden = true;
    el.who.textContent = '';
    el.login.hidden = false;
    el.loginError.hidden = !message;
    el.loginError.textContent = message || '';
    el.loginSecret.value = '';
    (el.loginName.value ? el.loginSecret : el.loginName).focus();
  }

  function showApp() {
    el.login.hidden = true;
    el.loginError.hidden = true;
    el.app.hidden = false;
    el.stats.hidden = false;
    el.logout.hidden = false;
    el.who.textContent = session.creds ? session.creds.name : '';
  }

  /** Forgets the credentials and everything shown, and asks for credentials again. */
  function logout(message) {
    session.creds = null;
    sessionStorage.removeItem(STORE_KEY);
    clearTimeout(session.loopTimer);
    session.loopTimer = 0;
    disconnect();
    clearData();
    showLogin(message);
  }

  async function login(creds, fromStorage) {
    session.creds = creds;
    el.loginError.hidden = true;
    try {
      const r = await call('stats', {});
      if (session.creds !== creds) return;
      sessionStorage.setItem(STORE_KEY, JSON.stringify(creds));
      showApp();
      renderStats(r.stats);
      startLoop();
      void loadEvents(true);
    } catch (err) {
      if (session.creds !== creds || err.code === 'Cancelled') return;
      if (fromStorage && err.code !== 'SecurityError') {
        // Service away for now: keep the session and let the loop retry.
        showApp();
        startLoop();
        return;
      }
      logout(
        err.code === 'CommError' ? `Cannot reach the service: ${err.info}` : String(err.message),
      );
    }
  }

  /** What to do with a failed call; true if the session ended. */
  function handleError(err, show) {
    if (!session.creds || err.code === 'Cancelled') return true;
    if (err.code === 'SecurityError') {
      logout(err.message);
      return true;
    }
    if (err.code !== 'CommError' && show) show(err.message);
    return false;
  }

  // ---- Periodic refresh ----------------------------------------------------------------------

  const data = {
    skewMs: 0,
    history: new Map(),
    rows: new Map(),
    query: null,
    /** Why the filters as typed cannot be read: shown until they can (the table keeps the last query). */
    filterError: null,
    querySeq: 0,
    eventRows: new Map(),
    selected: null,
    loaded: false,
  };

  function startLoop() {
    clearTimeout(session.loopTimer);
    session.loopTimer = setTimeout(tick, 0);
  }

  function refreshSoon() {
    if (session.creds && session.loopTimer) startLoop();
  }

  async function tick() {
    session.loopTimer = 0;
    const creds = session.creds;
    if (!creds) return;
    const started = Date.now();
    if (conn.open) {
      try {
        const [s, c] = await Promise.all([
          call('stats', {}),
          call('listConsumers', { lag_limit: LAG_LIMIT }),
        ]);
        if (session.creds !== creds) return;
        renderStats(s.stats);
        renderConsumers(c.consumers);
        if (el.conn.dataset.state === 'error') setConn('online', 'live');
        await loadParked();
        if (el.live.checked) await loadEvents(false);
      } catch (err) {
        if (handleError(err, (msg) => setConn('error', msg))) return;
      }
    }
    if (session.creds === creds && !session.loopTimer) {
      session.loopTimer = setTimeout(tick, Math.max(100, REFRESH_MS - (Date.now() - started)));
    }
  }

  function clearData() {
    data.history.clear();
    data.rows.clear();
    data.eventRows.clear();
    data.selected = null;
    data.loaded = false;
    el.consumers.replaceChildren();
    el.events.replaceChildren();
    el.parked.replaceChildren();
    el.parkedCount.textContent = '';
    if (el.act.open) el.act.close();
    el.consumersCount.textContent = '';
    el.eventsStatus.textContent = '';
    showDetail(null);
    for (const dd of el.stats.querySelectorAll('dd')) dd.textContent = '–';
  }

  // ---- Stats ---------------------------------------------------------------------------------

  function renderStats(s) {
    if (!s) return;
    const serverMs = Date.parse(s.server_time);
    if (!Number.isNaN(serverMs)) data.skewMs = serverMs - Date.now();
    el.newest.textContent = s.newest_id;
    el.rate.textContent = Number(s.events_per_sec).toFixed(s.events_per_sec < 10 ? 2 : 1);
    el.rate.title = `New event IDs per second over the last ${s.rate_window_s} s`;
    el.active.textContent = fmtInt(s.active_events);
    el.active.title = `IDs ${s.oldest_id}…${s.newest_id}, delivered up to ${s.horizon}`;
    const hasWarehouse = typeof s.warehouse_events === 'number';
    el.warehouseBox.hidden = !hasWarehouse;
    el.warehouse.textContent = hasWarehouse ? fmtInt(s.warehouse_events) : '–';
    el.source.options[1].disabled = !hasWarehouse;
    el.consumersN.textContent = fmtInt(s.consumers);
    el.push.textContent = fmtInt(s.push_sessions);
    el.time.textContent = fmtTime(s.server_time).replace(/^\d{4}-\d\d-\d\d /, '');
    el.time.title = s.server_time;
  }

  // ---- Consumers -----------------------------------------------------------------------------

  function agoText(iso) {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return String(iso);
    const d = Date.now() + data.skewMs - ms;
    return d < 1500 ? 'just now' : `${fmtDuration(d).replace(/\.\d/, '')} ago`;
  }

  function remember(consumers) {
    const now = Date.now();
    const seen = new Set();
    for (const c of consumers) {
      seen.add(c.ident);
      let h = data.history.get(c.ident);
      if (!h) data.history.set(c.ident, (h = []));
      h.push({ t: now, v: c.lag_events });
      while (h.length && h[0].t < now - HISTORY_MS) h.shift();
    }
    for (const ident of data.history.keys()) if (!seen.has(ident)) data.history.delete(ident);
  }

  function sparkline(samples) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('width', String(SPARK_W));
    svg.setAttribute('height', String(SPARK_H));
    svg.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
    svg.setAttribute('role', 'img');
    const now = Date.now();
    const peak = samples.reduce((m, s) => Math.max(m, s.v), 0);
    const last = samples.length ? samples[samples.length - 1].v : 0;
    // The time axis spans the history kept so far: 1 to 5 minutes.
    const span = Math.min(HISTORY_MS, Math.max(60000, samples.length ? now - samples[0].t : 0));
    const x = (t) => (((t - (now - span)) / span) * (SPARK_W - 3) + 1).toFixed(1);
    const y = (v) => (SPARK_H - 2 - (peak > 0 ? v / peak : 0) * (SPARK_H - 5)).toFixed(1);
    const pts = samples.map((s) => `${x(s.t)},${y(s.v)}`);
    const title = document.createElementNS(SVG_NS, 'title');
    title.textContent = `Lag over the last ${Math.round(span / 6000) / 10} min: now ${fmtInt(last)}, peak ${fmtInt(peak)}`;
    svg.setAttribute('aria-label', title.textContent);
    svg.appendChild(title);
    const base = document.createElementNS(SVG_NS, 'line');
    base.setAttribute('class', 'base');
    base.setAttribute('x1', '1');
    base.setAttribute('x2', String(SPARK_W - 1));
    base.setAttribute('y1', String(SPARK_H - 1.5));
    base.setAttribute('y2', String(SPARK_H - 1.5));
    svg.appendChild(base);
    if (pts.length) {
      const area = document.createElementNS(SVG_NS, 'polygon');
      area.setAttribute('class', 'area');
      const first = pts[0].split(',')[0];
      const end = pts[pts.length - 1].split(',')[0];
      area.setAttribute(
        'points',
        `${first},${SPARK_H - 1.5} ${pts.join(' ')} ${end},${SPARK_H - 1.5}`,
      );
      svg.appendChild(area);
      const line = document.createElementNS(SVG_NS, 'polyline');
      line.setAttribute('points', pts.join(' '));
      svg.appendChild(line);
      const dot = document.createElementNS(SVG_NS, 'circle');
      const [cx, cy] = pts[pts.length - 1].split(',');
      dot.setAttribute('cx', cx);
      dot.setAttribute('cy', cy);
      dot.setAttribute('r', '2');
      svg.appendChild(dot);
    }
    svg.dataset.samples = String(samples.length);
    svg.dataset.peak = String(peak);
    return svg;
  }

  function consumerRow(ident) {
    const tr = node('tr');
    tr.dataset.ident = ident;
    const identCell = node('td', null, 'ident');
    identCell.append(node('span', null, 'user'), node('span', ':', 'muted'), node('b'));
    tr.append(
      identCell,
      node('td', null, 'mode'),
      node('td', null, 'num pointer'),
      node('td', null, 'num lag'),
      node('td', null, 'num lagtime'),
      node('td', null, 'last'),
      node('td', null, 'chart'),
      node('td', null, 'num parked'),
      actionCell([
        ['Reset…', () => resetAction(tr.info)],
        ['Parking…', () => parkingAction(tr.info)],
        ['Drop…', () => dropAction(tr.info), 'danger'],
      ]),
    );
    return tr;
  }

  function renderConsumers(consumers) {
    remember(consumers);
    const rows = [];
    const next = new Map();
    for (const c of consumers) {
      const tr = data.rows.get(c.ident) || consumerRow(c.ident);
      next.set(c.ident, tr);
      tr.info = c;
      const [identCell, mode, pointer, lag, lagTime, last, chart, parked] = tr.cells;
      identCell.children[0].textContent = c.user;
      identCell.children[2].textContent = c.component;
      const badge = node('span', c.mode, `badge ${c.mode}`);
      const dot = node('span', null, c.connected ? 'dot on' : 'dot');
      dot.title = c.connected ? 'connected' : 'not connected';
      mode.replaceChildren(dot, badge);
      mode.dataset.mode = c.mode;
      mode.dataset.connected = String(c.connected);
      pointer.textContent = c.pointer;
      lag.textContent = fmtInt(c.lag_events) + (c.lag_capped ? '+' : '');
      lag.className = `num lag${c.lag_events > 0 ? ' behind' : ''}`;
      lagTime.textContent = fmtDuration(c.lag_ms);
      last.textContent = agoText(c.last_time);
      last.title = `Registered or last moved: ${c.last_time}`;
      chart.replaceChildren(sparkline(data.history.get(c.ident) || []));
      renderParkedCell(parked, c);
      tr.dataset.parked = String(c.parked);
      rows.push(tr);
    }
    syncParkedConsumers(consumers);
    data.rows = next;
    setRows(el.consumers, rows);
    el.consumersEmpty.hidden = consumers.length > 0;
    el.consumersCount.textContent = consumers.length ? `(${fmtInt(consumers.length)})` : '';
  }

  // ---- Event browser -------------------------------------------------------------------------

  /** The readEvents parameters the filter form asks for; throws with a message if invalid. */
  function readFilters() {
    const f = el;
    const p = {
      source: f.source.value === 'warehouse' ? 'warehouse' : 'active',
      limit: Number(f.limit.value) || 50,
      last: f.last.checked,
    };
    const types = f.types.value
      .split(/[\s,]+/)
      .map((t) => t.trim())
      .filter(Boolean);
    for (const t of types) {
      if (!TYPE_RE.test(t))
        throw new Error(`Invalid event type "${t}": A-Z and _ only, 16 at most`);
    }
    if (types.length) p.types = [...new Set(types)];
    for (const [key, name, label] of [
      ['from_id', 'from', 'From ID'],
      ['to_id', 'to', 'To ID'],
    ]) {
      const v = f[name].value.trim();
      if (!v) continue;
      if (!ID_RE.test(v)) throw new Error(`${label} must be an event ID (digits)`);
      p[key] = v;
    }
    if (p.from_id && p.to_id && BigInt(p.from_id) > BigInt(p.to_id)) {
      throw new Error('From ID is above To ID');
    }
    for (const [key, name, label] of [
      ['since', 'since', 'Since'],
      ['until', 'until', 'Until'],
    ]) {
      const v = f[name].value;
      if (!v) continue;
      // datetime-local is the browser's local time; the service takes UTC.
      const ms = new Date(v).getTime();
      if (Number.isNaN(ms)) throw new Error(`${label} is not a valid time`);
      p[key] = new Date(ms).toISOString();
    }
    return p;
  }

  function describeQuery(p, n) {
    const parts = [`${fmtInt(n)} event${n === 1 ? '' : 's'}`, p.source];
    if (p.types) parts.push(`types ${p.types.join(', ')}`);
    if (p.from_id || p.to_id) parts.push(`IDs ${p.from_id || '…'}–${p.to_id || '…'}`);
    if (p.since || p.until) parts.push(`${p.since || '…'} to ${p.until || '…'}`);
    parts.push(p.last ? 'newest first' : 'oldest first');
    if (n >= p.limit) parts.push(`limit ${p.limit} reached`);
    if (el.live.checked) parts.push('live');
    return parts.join(' · ');
  }

  function eventRow(e) {
    const tr = node('tr');
    tr.dataset.id = e.id;
    tr.dataset.type = e.type;
    tr.tabIndex = 0;
    let preview = JSON.stringify(e.data);
    if (preview === undefined) preview = '';
    if (preview.length > 120) preview = `${preview.slice(0, 119)}…`;
    tr.append(
      node('td', e.id, 'num id'),
      node('td', e.type, 'type'),
      node('td', fmtTime(e.ts), 'ts'),
      node('td', preview, 'data'),
    );
    tr.event = e;
    return tr;
  }

  async function loadEvents(fresh) {
    let p;
    if (fresh || !data.query) {
      try {
        p = readFilters();
      } catch (err) {
        data.filterError = err.message;
        el.eventsStatus.textContent = err.message;
        el.eventsStatus.classList.add('error');
        return;
      }
      data.filterError = null;
      data.query = p;
    } else {
      p = data.query;
    }
    const seq = ++data.querySeq;
    try {
      const r = await call('readEvents', p);
      if (seq !== data.querySeq || !session.creds) return;
      renderEvents(r.events, fresh || !data.loaded);
      // A live refresh of the last query leaves the error of the filters as typed in view.
      el.eventsStatus.classList.toggle('error', data.filterError !== null);
      el.eventsStatus.textContent = data.filterError ?? describeQuery(p, r.events.length);
    } catch (err) {
      if (seq !== data.querySeq) return;
      handleError(err, (msg) => {
        el.eventsStatus.textContent = msg;
        el.eventsStatus.classList.add('error');
      });
    }
  }

  function renderEvents(events, fresh) {
    const next = new Map();
    const rows = [];
    for (const e of events) {
      let tr = data.eventRows.get(e.id);
      if (!tr) {
        tr = eventRow(e);
        if (!fresh) {
          tr.classList.add('new');
          tr.addEventListener('animationend', () => tr.classList.remove('new'), { once: true });
        }
      }
      tr.classList.toggle('sel', e.id === data.selected);
      next.set(e.id, tr);
      rows.push(tr);
    }
    data.eventRows = next;
    data.loaded = true;
    if (!rows.length) {
      const td = node('td', 'No events match.', 'muted');
      td.colSpan = 4;
      rows.push(node('tr'));
      rows[0].appendChild(td);
    }
    setRows(el.events, rows);
  }

  function showDetail(e) {
    el.detailJson.hidden = !e;
    el.detailEmpty.hidden = !!e;
    el.detailTitle.textContent = e ? `Event ${e.id} · ${e.type}` : 'Event';
    el.detailJson.textContent = e ? JSON.stringify(e, null, 2) : '';
  }

  function select(tr) {
    if (!tr || !tr.event) return;
    data.selected = tr.event.id;
    for (const r of data.eventRows.values()) r.classList.toggle('sel', r === tr);
    showDetail(tr.event);
  }

  // ---- Actions: each asks for confirmation and shows its effect -----------------------------

  /** A cell of small buttons: [label, onClick, className]. */
  function actionCell(buttons) {
    const td = node('td', null, 'actions');
    for (const [label, onClick, cls] of buttons) {
      const b = node('button', label, `small${cls ? ` ${cls}` : ''}`);
      b.type = 'button';
      b.addEventListener('click', (ev) => {
        ev.stopPropagation();
        onClick();
      });
      td.appendChild(b);
    }
    return td;
  }

  function field(label, input) {
    const l = node('label', label);
    l.appendChild(input);
    return l;
  }

  function inputOf(attrs) {
    const i = document.createElement(attrs.tag || 'input');
    for (const [k, v] of Object.entries(attrs)) if (k !== 'tag') i.setAttribute(k, String(v));
    return i;
  }

  const reasonInput = (required) =>
    inputOf({ id: 'act-reason', maxlength: 200, ...(required ? { required: '' } : {}) });

  const lagText = (n, capped) => `${fmtInt(n)}${capped ? '+' : ''}`;

  const act = { spec: null, busy: false };

  /**
   * Opens the dialog for one action: `fields`, the current state (`effect`); with `preview`,
   * the action can be confirmed only once its effect was shown for the current input; `run`
   * does it and says what it did.
   */
  function openAction(spec) {
    act.spec = spec;
    el.actTitle.textContent = spec.title;
    el.actBody.replaceChildren(...spec.fields);
    el.actEffect.textContent = spec.effect || '';
    el.actError.hidden = true;
    el.actPreview.hidden = !spec.preview;
    el.actOk.hidden = false;
    el.actOk.textContent = spec.label;
    el.actOk.className = spec.danger ? 'danger' : '';
    el.actOk.disabled = !!spec.preview;
    el.actCancel.textContent = 'Cancel';
    el.act.showModal();
  }

  async function actStep(work, then) {
    if (act.busy || !act.spec) return;
    act.busy = true;
    el.actError.hidden = true;
    try {
      el.actEffect.textContent = await work();
      then();
    } catch (err) {
      if (!handleError(err)) {
        el.actError.textContent = err.message;
        el.actError.hidden = false;
      }
    } finally {
      act.busy = false;
    }
  }

  el.actPreview.addEventListener('click', () =>
    actStep(act.spec.preview, () => (el.actOk.disabled = false)),
  );
  el.actBody.addEventListener('input', () => {
    if (act.spec && act.spec.preview) el.actOk.disabled = true;
  });
  el.actForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (el.actOk.disabled || el.actOk.hidden) return;
    void actStep(act.spec.run, () => {
      el.actOk.hidden = true;
      el.actPreview.hidden = true;
      el.actCancel.textContent = 'Close';
      refreshSoon();
    });
  });
  el.actCancel.addEventListener('click', () => el.act.close());
  el.act.addEventListener('close', () => (act.spec = null));

  function resetAction(c) {
    const to = inputOf({ tag: 'select', id: 'act-to' });
    for (const t of ['start', 'newest', 'id', 'time']) to.appendChild(node('option', t));
    const id = inputOf({ id: 'act-id', inputmode: 'numeric', placeholder: 'event ID' });
    const time = inputOf({ id: 'act-time', type: 'datetime-local', step: 1 });
    const reason = reasonInput(false);
    const params = () => {
      const p = { ident: c.ident, to: to.value, reason: reason.value };
      if (to.value === 'id') {
        if (!ID_RE.test(id.value.trim())) throw new Error('Give an event ID (digits)');
        p.id = id.value.trim();
      } else if (to.value === 'time') {
        const ms = new Date(time.value).getTime();
        if (!time.value || Number.isNaN(ms)) throw new Error('Give a time');
        p.time = new Date(ms).toISOString();
      }
      return p;
    };
    const said = (r) => `${lagText(r.lag_events, r.lag_capped)} events to deliver from there`;
    openAction({
      title: `Reset ${c.ident}`,
      fields: [
        field('To', to),
        field('Event ID', id),
        field('Time (local)', time),
        field('Reason', reason),
      ],
      effect: `Pointer ${c.pointer}, ${lagText(c.lag_events, c.lag_capped)} events behind.`,
      label: 'Move the pointer',
      danger: true,
      preview: async () => {
        const r = await call('moveConsumer', { ...params(), dry_run: true });
        return `The pointer would move from ${r.from} to ${r.pointer}: ${said(r)} (now ${lagText(c.lag_events, c.lag_capped)}).`;
      },
      run: async () => {
        const r = await call('moveConsumer', params());
        return `Moved from ${r.from} to ${r.pointer}: ${said(r)}.`;
      },
    });
  }

  function dropAction(c) {
    const reason = reasonInput(false);
    openAction({
      title: `Drop ${c.ident}`,
      fields: [field('Reason', reason)],
      effect:
        `Pointer ${c.pointer}, ${lagText(c.lag_events, c.lag_capped)} events not delivered` +
        (c.parked ? `, ${fmtInt(c.parked)} parked events (skipped)` : '') +
        '. It is unregistered: it no longer holds events back, and its push session ends.',
      label: 'Drop the consumer',
      danger: true,
      run: async () => {
        const r = await call('dropConsumer', { ident: c.ident, reason: reason.value });
        return r.dropped ? `${c.ident} was dropped.` : `${c.ident} was not registered.`;
      },
    });
  }

  function parkingAction(c) {
    const max = inputOf({
      id: 'act-max',
      type: 'number',
      min: 0,
      max: 1000,
      value: c.max_attempts,
    });
    const reason = reasonInput(false);
    openAction({
      title: `Parking of ${c.ident}`,
      fields: [
        field('Max attempts (0: never park, delivery waits on a failing event)', max),
        field('Reason', reason),
      ],
      effect:
        (c.max_attempts ? `Parks after ${c.max_attempts} failed calls` : 'Parks nothing') +
        (c.parking_suspended ? '; stopped after too many parks in a row' : '') +
        '.',
      label: 'Apply',
      run: async () => {
        const n = Number(max.value);
        if (!Number.isInteger(n) || n < 0 || n > 1000) throw new Error('0 to 1000');
        const r = await call('setMaxAttempts', {
          ident: c.ident,
          max_attempts: n,
          reason: reason.value,
        });
        return r.max_attempts
          ? `${c.ident} parks an event after ${r.max_attempts} failed calls.`
          : `${c.ident} parks nothing.`;
      },
    });
  }

  /** Replay or skip one parked event (`p`) or all of a consumer's (`ident`). */
  function parkedAction(kind, ident, p) {
    const reason = reasonInput(kind === 'skip');
    const what = p ? `event ${p.event.id} (${p.event.type})` : 'every parked event';
    openAction({
      title: `${kind === 'skip' ? 'Skip' : 'Replay'} ${p ? `event ${p.event.id}` : 'all'} of ${ident}`,
      fields: [field(kind === 'skip' ? 'Reason (required)' : 'Reason', reason)],
      effect:
        kind === 'skip'
          ? `${what} is resolved without being delivered to ${ident}.`
          : `${what} goes to ${ident} again, in ID order and marked "replayed", at its next push session (its session here restarts).`,
      label: kind === 'skip' ? 'Skip' : 'Replay',
      danger: kind === 'skip',
      run: async () => {
        if (kind === 'skip' && !reason.value.trim()) throw new Error('Say why');
        const params = { ident, event_id: p ? p.event.id : null, reason: reason.value };
        const r = await call(kind === 'skip' ? 'skipParked' : 'replayParked', params);
        return `${fmtInt(r.count)} event${r.count === 1 ? '' : 's'} ${kind === 'skip' ? 'skipped' : 'to replay'}.`;
      },
    });
  }

  // ---- Parked events ---------------------------------------------------------------------------

  function renderParkedCell(td, c) {
    const parts = [];
    if (c.parked > 0) {
      const b = node('span', fmtInt(c.parked), 'badge parked');
      b.title = 'Parked events: show them';
      b.addEventListener('click', () => {
        el.pConsumer.value = c.ident;
        void loadParked(true);
      });
      parts.push(b);
    }
    if (c.parking_suspended) parts.push(node('span', 'stopped', 'badge stopped'));
    if (!parts.length) parts.push(node('span', c.max_attempts ? '0' : '–', 'muted'));
    td.replaceChildren(...parts);
    td.title = c.max_attempts ? `Parks after ${c.max_attempts} failed calls` : 'Parks nothing';
  }

  /** The consumers the parked view can be narrowed to. */
  function syncParkedConsumers(consumers) {
    const want = ['', ...consumers.map((c) => c.ident)];
    const have = [...el.pConsumer.options].map((o) => o.value);
    if (want.join('\n') === have.join('\n')) return;
    const chosen = el.pConsumer.value;
    el.pConsumer.replaceChildren(...want.map((v) => node('option', v || 'all')));
    [...el.pConsumer.options].forEach((o, i) => (o.value = want[i]));
    el.pConsumer.value = want.includes(chosen) ? chosen : '';
  }

  async function loadParked(fresh) {
    const ident = el.pConsumer.value || null;
    el.pReplayAll.disabled = el.pSkipAll.disabled = !ident;
    try {
      const r = await call('listParked', {
        ident,
        include_resolved: el.pResolved.checked,
        limit: 100,
      });
      if (ident !== (el.pConsumer.value || null)) return;
      const rows = r.parked.map((p) => {
        const tr = node('tr');
        tr.dataset.id = p.event.id;
        tr.dataset.ident = p.ident;
        tr.dataset.state = p.state;
        tr.append(
          node('td', p.ident),
          node('td', p.event.id, 'num'),
          node('td', p.event.type),
          node('td', p.state, 'state'),
          node('td', fmtInt(p.attempts), 'num'),
          node('td', fmtTime(p.last_failure)),
          node('td', `${p.error_code}: ${p.error_info}`, 'err'),
          p.state === 'parked' || p.state === 'replay'
            ? actionCell([
                ...(p.state === 'parked'
                  ? [['Replay…', () => parkedAction('replay', p.ident, p)]]
                  : []),
                ['Skip…', () => parkedAction('skip', p.ident, p), 'danger'],
              ])
            : node('td', p.acted_by ? `${p.acted_by}: ${p.acted_reason || ''}` : '', 'muted'),
        );
        tr.title = `First failure ${p.first_failure}; parked ${p.parked_at}`;
        tr.addEventListener('click', () => showDetail(p.event));
        return tr;
      });
      el.parked.replaceChildren(...rows);
      el.parkedCount.textContent = rows.length ? `(${fmtInt(rows.length)})` : '';
      el.parkedStatus.textContent = rows.length ? '' : 'Nothing parked.';
    } catch (err) {
      if (fresh) handleError(err, (msg) => (el.parkedStatus.textContent = msg));
      else throw err;
    }
  }

  el.pConsumer.addEventListener('change', () => loadParked(true));
  el.pResolved.addEventListener('change', () => loadParked(true));
  el.pReplayAll.addEventListener('click', () => parkedAction('replay', el.pConsumer.value, null));
  el.pSkipAll.addEventListener('click', () => parkedAction('skip', el.pConsumer.value, null));

  // ---- Wiring --------------------------------------------------------------------------------

  el.loginForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = el.loginName.value.trim();
    const secret = el.loginSecret.value;
    if (!name || !secret) return;
    disconnect();
    clearData();
    void login({ name, secret }, false);
  });

  el.logout.addEventListener('click', () => logout(''));

  el.filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void loadEvents(true);
  });
  el.filters.addEventListener('reset', () => setTimeout(() => loadEvents(true), 0));
  el.live.addEventListener('change', () => {
    if (el.live.checked) void loadEvents(false);
  });

  el.events.addEventListener('click', (ev) => select(ev.target.closest('tr')));
  el.events.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      select(ev.target.closest('tr'));
    }
  });

  const saved = storedCreds();
  if (saved) {
    el.loginName.value = saved.name;
    el.login.hidden = true;
    void login(saved, true);
  } else {
    showLogin('');
  }
})();
