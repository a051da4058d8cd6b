// The admin page. Every call to /api/admin needs the session cookie; changes also send
// the session's CSRF token. Data is written with textContent only (never as HTML).

const $ = (id) => document.getElementById(id);
let csrf = null;
let refreshTimer = null;

async function api(method, url, body) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (csrf && method !== 'GET') init.headers['x-csrf-token'] = csrf;
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  if (res.status === 401) {
    showLogin();
    throw new Error('log in first');
  }
  const data = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function button(text, onClick, cls) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

const localToIso = (v) => (v ? new Date(v).toISOString() : null);
const isoToLocal = (v) => {
  if (!v) return '';
  const d = new Date(v);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const splitGroups = (s) =>
  String(s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

// ---------- login ----------

function showLogin() {
  csrf = null;
  clearInterval(refreshTimer);
  $('app').hidden = true;
  $('nav').hidden = true;
  $('login').hidden = false;
  $('admin-video').removeAttribute('src');
  $('password').focus();
}

function showApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('nav').hidden = false;
  $('admin-video').src = `/api/live.mjpg?t=${Date.now()}`;
  void refresh();
  refreshTimer = setInterval(() => void refreshStatus(), 2000);
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  const res = await fetch('/api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password: $('password').value }),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    $('login-error').textContent = data.error || data.message || `login failed (${res.status})`;
    return;
  }
  $('password').value = '';
  csrf = data.csrf;
  showApp();
});

$('logout').addEventListener('click', async () => {
  await fetch('/api/logout', { method: 'POST', headers: { 'x-csrf-token': csrf ?? '' } });
  showLogin();
});

// ---------- people ----------

async function refreshPeople() {
  const q = $('search').value;
  let data;
  try {
    data = await api('GET', `/api/admin/people?q=${encodeURIComponent(q)}`);
  } catch (err) {
    $('people-error').textContent = err.message;
    return;
  }
  $('people-error').textContent = data.available ? '' : 'The gallery is not running on this kiosk.';
  $('people-count').textContent = `${data.people.length} ${data.people.length === 1 ? 'person' : 'people'}`;
  const tbody = $('people');
  tbody.replaceChildren();
  for (const p of data.people) {
    const tr = document.createElement('tr');
    tr.dataset.person = p.name;
    const thumb = cell(tr, '');
    const img = document.createElement('img');
    img.className = 'thumb';
    img.alt = '';
    img.src = `/api/admin/people/${encodeURIComponent(p.id)}/thumbnail`;
    img.addEventListener('error', () => img.remove());
    thumb.appendChild(img);
    cell(tr, p.name, 'name');
    cell(tr, p.groups.join(', '));
    cell(tr, p.validFrom ? new Date(p.validFrom).toLocaleString() : '—');
    cell(tr, p.validUntil ? new Date(p.validUntil).toLocaleString() : '—');
    cell(tr, String(p.templates));
    const actions = cell(tr, '');
    actions.append(
      button('Edit', () => editPerson(tr, p)),
      button('Export', () => window.open(`/api/admin/people/${encodeURIComponent(p.id)}/export`)),
      button('Remove', () => removePerson(p), 'danger'),
    );
    tbody.appendChild(tr);
  }
}

function editPerson(tr, p) {
  tr.replaceChildren();
  cell(tr, '');
  const inputs = {
    name: Object.assign(document.createElement('input'), { value: p.name, name: 'name' }),
    groups: Object.assign(document.createElement('input'), { value: p.groups.join(', '), name: 'groups' }),
    validFrom: Object.assign(document.createElement('input'), {
      type: 'datetime-local',
      value: isoToLocal(p.validFrom),
    }),
    validUntil: Object.assign(document.createElement('input'), {
      type: 'datetime-local',
      value: isoToLocal(p.validUntil),
    }),
  };
  for (const i of Object.values(inputs)) cell(tr, '').appendChild(i);
  cell(tr, String(p.templates));
  const msg = document.createElement('span');
  msg.className = 'error';
  cell(tr, '').append(
    button('Save', async () => {
      try {
        await api('PATCH', `/api/admin/people/${encodeURIComponent(p.id)}`, {
          name: inputs.name.value.trim(),
          groups: splitGroups(inputs.groups.value),
          validFrom: localToIso(inputs.validFrom.value),
          validUntil: localToIso(inputs.validUntil.value),
        });
        await refreshPeople();
      } catch (err) {
        msg.textContent = err.message;
      }
    }),
    button('Cancel', () => void refreshPeople()),
    msg,
  );
}

function removePerson(p) {
  const dlg = $('confirm-remove');
  $('confirm-name').textContent = p.name;
  dlg.returnValue = '';
  dlg.onclose = async () => {
    if (dlg.returnValue !== 'remove') return;
    try {
      await api('DELETE', `/api/admin/people/${encodeURIComponent(p.id)}?confirm=${encodeURIComponent(p.name)}`);
    } catch (err) {
      $('people-error').textContent = err.message;
    }
    await refreshPeople();
  };
  dlg.showModal();
}

$('search').addEventListener('input', () => void refreshPeople());

// ---------- enrolment ----------

$('enrol-camera').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const out = $('enrol-camera-progress');
  out.className = '';
  out.textContent = 'Starting… ask the person to look at the camera.';
  const body = { name: String(f.get('name')).trim(), groups: splitGroups(f.get('groups')) };
  if (f.get('validFrom')) body.validFrom = localToIso(f.get('validFrom'));
  if (f.get('validUntil')) body.validUntil = localToIso(f.get('validUntil'));
  const res = await fetch('/api/admin/people/camera', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf ?? '' },
    body: JSON.stringify(body),
  });
  if (!res.ok || !res.body) {
    const data = await res.json().catch(() => ({}));
    out.className = 'error';
    out.textContent = data.error || `enrolment failed (${res.status})`;
    if (res.status === 401) showLogin();
    return;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (msg.progress) {
        const p = msg.progress;
        out.textContent = `${p.good} of ${p.needed} good pictures${p.hint ? ` — ${p.hint}` : ''}`;
      } else if (msg.result) {
        out.className = 'ok';
        out.textContent = `Enrolled ${msg.result.person.name} (${msg.result.accepted} pictures).`;
        e.target.reset();
        await refreshPeople();
      } else if (msg.error) {
        out.className = 'error';
        out.textContent = msg.error;
      }
    }
  }
});

$('enrol-photos').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const out = $('enrol-photos-result');
  for (const k of ['validFrom', 'validUntil']) {
    const v = f.get(k);
    if (v) f.set(k, localToIso(v));
    else f.delete(k);
  }
  try {
    const r = await api('POST', '/api/admin/people/photos', f);
    out.className = 'ok';
    const refused = r.rejected.map((x) => `photo ${x.index + 1}: ${x.message}`).join('; ');
    out.textContent = `Enrolled ${r.person.name}: ${r.accepted} photos used${refused ? `; refused ${refused}` : ''}.`;
    e.target.reset();
    await refreshPeople();
  } catch (err) {
    out.className = 'error';
    out.textContent = err.message;
  }
});

// ---------- events, health, model, config ----------

async function refreshEvents() {
  const { events, thumbnails } = await api('GET', '/api/admin/events');
  $('events-face').hidden = !thumbnails;
  const tbody = $('events');
  tbody.replaceChildren();
  for (const e of events.slice(0, 30)) {
    const tr = document.createElement('tr');
    tr.dataset.seq = String(e.seq);
    if (thumbnails) {
      const td = cell(tr, '');
      if (e.thumbnail) {
        const img = document.createElement('img');
        img.className = 'thumb';
        img.alt = e.name ?? 'unknown face';
        img.src = `/api/admin/events/${e.seq}/thumbnail`;
        td.appendChild(img);
      }
    }
    cell(tr, new Date(e.time).toLocaleString());
    cell(tr, e.kind);
    cell(tr, e.name ?? '—');
    cell(tr, e.score.toFixed(3));
    cell(tr, e.modelVersion);
    tbody.appendChild(tr);
  }
}

async function refreshStatus() {
  let s;
  try {
    s = await api('GET', '/api/admin/status');
  } catch {
    return;
  }
  const rows = [
    ['Camera', s.health.camera],
    ['Broker', s.health.broker],
    ['Ready', s.health.ready ? 'yes' : 'no'],
    ['Frames per second', s.fps ?? '—'],
    ['Frames in', s.framesIn ?? '—'],
    ['Dropped frames', s.framesDropped ?? '—'],
    ['Frame errors', s.frameErrors ?? '—'],
    ['Events waiting for the broker', s.health.pendingEvents],
    ['Gallery', s.gallery],
    ['Door', s.door ? s.door.state : 'not reported'],
    ...s.temperatures.map((t) => [`Temperature (${t.type})`, `${t.celsius} °C`]),
  ];
  if (s.temperatures.length === 0) rows.push(['Temperature', 'not readable here']);
  const tbody = $('health');
  tbody.replaceChildren();
  for (const [k, v] of rows) {
    const tr = document.createElement('tr');
    tr.dataset.key = k;
    cell(tr, k);
    cell(tr, String(v), k === 'Camera' || k === 'Broker' ? (v === 'ok' || v === 'connected' ? 'ok' : 'error') : '');
    tbody.appendChild(tr);
  }
  const ok = s.health.camera === 'ok' && s.health.broker === 'connected';
  $('health-pill').textContent = ok ? 'healthy' : `camera ${s.health.camera}, broker ${s.health.broker}`;
  $('health-pill').className = ok ? 'ok' : 'error';
  const models = $('models');
  models.replaceChildren();
  for (const m of s.models) {
    const tr = document.createElement('tr');
    cell(tr, m.version);
    cell(tr, new Date(m.since).toLocaleString());
    models.appendChild(tr);
  }
  const updates = $('updates');
  updates.replaceChildren();
  if (s.updates === null) {
    const tr = document.createElement('tr');
    cell(tr, 'Model updates over MQTT are off (updates.enabled).').colSpan = 3;
    updates.appendChild(tr);
  }
  for (const u of s.updates ?? []) {
    const tr = document.createElement('tr');
    tr.dataset.version = u.version;
    cell(tr, u.forced ? `${u.version} (forced)` : u.version);
    cell(tr, new Date(u.attemptedAt).toLocaleString());
    if (u.refusedAt) cell(tr, `${u.reason ?? 'refused'} (${new Date(u.refusedAt).toLocaleString()})`, 'error');
    else if (u.installedAt) cell(tr, `installed ${new Date(u.installedAt).toLocaleString()}`, 'ok');
    else cell(tr, 'not installed');
    updates.appendChild(tr);
  }
  $('config').textContent = JSON.stringify(s.config, null, 2);
  await refreshEvents();
}

async function refresh() {
  await Promise.all([refreshPeople(), refreshStatus()]);
}

const session = await (await fetch('/api/session')).json();
if (!session.passwordSet) {
  showLogin();
  $('login-error').textContent =
    'No admin password is set. On the kiosk run: facegate admin set-password --config <your config file>, then restart facegate.';
} else if (session.authenticated) {
  csrf = session.csrf;
  showApp();
} else showLogin();
