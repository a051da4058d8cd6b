// The kiosk screen: live camera view with face boxes and names, and a banner that tells
// the person at the door what happened. Read-only; fed by /api/live (server-sent events)
// and /api/live.mjpg (the camera view). No outside scripts, fonts or styles.

const DECISION_SHOWN_MS = 4000; // a welcome stays this long
const FACES_STALE_MS = 1500; // boxes older than this are cleared
const TOO_FAR = 0.18; // a face shorter than this share of the frame height: "come closer"

const video = document.getElementById('video');
const canvas = document.getElementById('boxes');
const banner = document.getElementById('banner');
const bannerMain = document.getElementById('banner-main');
const bannerSub = document.getElementById('banner-sub');
const notice = document.getElementById('notice');
const door = document.getElementById('door');
const facesList = document.getElementById('faces');

const state = {
  status: null, // { camera, broker, ready, model, door }
  decision: null, // { kind, name, time, receivedAt }
  faces: [],
  facesAt: 0,
  connected: false,
};

function setBanner(kind, main, sub) {
  banner.className = `banner ${kind}`;
  if (bannerMain.textContent !== main) bannerMain.textContent = main;
  if (bannerSub.textContent !== sub) bannerSub.textContent = sub;
}

function render() {
  const now = Date.now();
  const s = state.status;
  const faces = now - state.facesAt < FACES_STALE_MS ? state.faces : [];
  const d = state.decision && now - state.decision.receivedAt < DECISION_SHOWN_MS ? state.decision : null;

  if (!state.connected) setBanner('error', 'Kiosk service not reachable', 'The screen reconnects on its own.');
  else if (s && s.camera !== 'ok' && s.camera !== 'starting')
    setBanner('error', 'Camera missing', 'The camera delivers no picture. Please ask staff for help.');
  else if (s && s.camera === 'starting') setBanner('idle', 'Starting…', 'The camera is starting.');
  else if (d && d.kind === 'recognized') setBanner('welcome', `Welcome, ${d.name}`, '');
  else if (d) setBanner('unknown', 'Not recognised', 'Please look at the camera.');
  else if (faces.length > 0 && tooFar(faces)) setBanner('hint', 'Please come closer', 'Your face is too far away.');
  else if (faces.length > 0) setBanner('hint', 'Hold still…', 'Looking at your face.');
  else setBanner('idle', 'Please look at the camera', '');

  const notes = [];
  if (s && s.broker !== 'connected') notes.push('Door controller not reachable (MQTT broker offline)');
  notice.textContent = notes.join(' · ');
  notice.className = notes.length ? 'notice warn' : 'notice';

  if (s && s.door) {
    door.hidden = false;
    door.textContent = `Door ${s.door.state}`;
    door.className = `door door-${String(s.door.state).replace(/[^a-z-]/gi, '')}`;
  } else door.hidden = true;
  drawBoxes(faces);
  // The same names as text, for screen readers (and the browser tests).
  const names = faces.map((f) => f.label ?? 'unknown').join('|');
  if (facesList.dataset.names !== names) {
    facesList.dataset.names = names;
    facesList.replaceChildren(
      ...faces.map((f) => Object.assign(document.createElement('li'), { textContent: f.label ?? 'unknown' })),
    );
  }
}

function tooFar(faces) {
  const h = video.naturalHeight;
  if (!h) return false;
  return Math.max(...faces.map((f) => f.height)) / h < TOO_FAR;
}

/** Where the image is drawn inside the <img> box (object-fit: contain). */
function imageRect() {
  const w = video.naturalWidth;
  const h = video.naturalHeight;
  const bw = video.clientWidth;
  const bh = video.clientHeight;
  if (!w || !h || !bw || !bh) return null;
  const s = Math.min(bw / w, bh / h);
  return { x: video.offsetLeft + (bw - w * s) / 2, y: video.offsetTop + (bh - h * s) / 2, s };
}

function drawBoxes(faces) {
  const dpr = window.devicePixelRatio || 1;
  const cw = canvas.clientWidth;
  const ch = canvas.clientHeight;
  if (canvas.width !== Math.round(cw * dpr) || canvas.height !== Math.round(ch * dpr)) {
    canvas.width = Math.round(cw * dpr);
    canvas.height = Math.round(ch * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cw, ch);
  const r = imageRect();
  if (!r) return;
  const font = Math.max(14, Math.round(ch / 24));
  ctx.font = `bold ${font}px sans-serif`;
  ctx.lineWidth = Math.max(2, font / 6);
  for (const f of faces) {
    const x = r.x + f.x * r.s;
    const y = r.y + f.y * r.s;
    const colour = f.label ? '#22c55e' : '#f59e0b';
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, f.width * r.s, f.height * r.s);
    const text = f.label ?? 'unknown';
    const tw = ctx.measureText(text).width + font / 2;
    ctx.fillStyle = colour;
    ctx.fillRect(x, Math.max(0, y - font * 1.3), tw, font * 1.3);
    ctx.fillStyle = '#000';
    ctx.fillText(text, x + font / 4, Math.max(font, y - font * 0.3));
  }
}

function connect() {
  const es = new EventSource('/api/live');
  es.addEventListener('open', () => {
    state.connected = true;
    render();
  });
  es.addEventListener('error', () => {
    state.connected = false;
    render();
  });
  es.addEventListener('status', (e) => {
    state.connected = true;
    state.status = JSON.parse(e.data);
    render();
  });
  es.addEventListener('faces', (e) => {
    const m = JSON.parse(e.data);
    state.faces = m.faces;
    state.facesAt = Date.now();
    render();
  });
  es.addEventListener('decision', (e) => {
    state.decision = { ...JSON.parse(e.data), receivedAt: Date.now() };
    render();
  });
}

// The camera view: an MJPEG stream; restarted when it breaks (daemon restart, camera back).
function startVideo() {
  video.src = `/api/live.mjpg?t=${Date.now()}`;
}
video.addEventListener('error', () => setTimeout(startVideo, 2000));
video.addEventListener('load', () => render());
window.addEventListener('resize', () => render());

state.connected = true; // until the event stream says otherwise
connect();
startVideo();
setInterval(render, 250);
render();
