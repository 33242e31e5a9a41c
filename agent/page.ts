// The labelling page served at / by the agent: recent samples with thumbnails and predictions, click a
// class to label, the head version and its holdout accuracy. No build step, no framework: one page.

export const LABEL_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgetune agent</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 16px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header span { opacity: .85; }
  main { padding: 16px; }
  .bar { display: flex; gap: 8px; align-items: center; margin-bottom: 12px; flex-wrap: wrap; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 12px; }
  .card { background: #fff; border-radius: 8px; padding: 8px; box-shadow: 0 1px 2px rgba(0,0,0,.1); }
  .card img { width: 100%; aspect-ratio: 1; object-fit: cover; border-radius: 4px; background: #ddd; }
  .card .meta { font-size: 13px; margin: 6px 0; min-height: 36px; }
  .labels { display: flex; flex-wrap: wrap; gap: 4px; }
  button { font: inherit; font-size: 13px; border: 1px solid #b8bfcc; background: #fff; border-radius: 4px; padding: 2px 8px; cursor: pointer; }
  button.on { background: #2f6fed; color: #fff; border-color: #2f6fed; }
  input { font: inherit; padding: 3px 6px; }
  .err { color: #b00020; }
</style>
</head>
<body>
<header>
  <h1>edgetune</h1>
  <span>device <b id="device">…</b></span>
  <span>head <b id="head-version">none</b></span>
  <span>holdout accuracy <b id="head-accuracy">–</b></span>
  <span>samples <b id="sample-count">0</b></span>
</header>
<main>
  <div class="bar">
    <label>new class <input id="new-class" placeholder="e.g. daisy" maxlength="64"></label>
    <button id="add-class">add</button>
    <button id="train">train now</button>
    <button id="capture" hidden>capture</button>
    <label><input type="checkbox" id="only-unlabelled"> unlabelled only</label>
    <span id="status"></span>
  </div>
  <div class="bar" id="classes"></div>
  <div class="grid" id="samples"></div>
</main>
<script>
const token = new URLSearchParams(location.search).get('token');
const headers = token ? { authorization: 'Bearer ' + token } : {};
let classes = [];
const extraClasses = new Set();
const $ = (id) => document.getElementById(id);
const status = (text, isError) => { $('status').textContent = text; $('status').className = isError ? 'err' : ''; };

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: { ...headers, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function el(tag, props, children) {
  const { dataset, ...rest } = props || {};
  const node = Object.assign(document.createElement(tag), rest);
  Object.assign(node.dataset, dataset || {});
  for (const c of children || []) node.append(c);
  return node;
}

async function refresh() {
  const [health, head, cls, list] = await Promise.all([
    api('GET', '/health'), api('GET', '/api/head'), api('GET', '/api/classes'),
    // Unlabelled: most worth labelling first (unknown, then least confident).
    api('GET', '/api/samples?limit=60' + ($('only-unlabelled').checked ? '&order=worth' : '')),
  ]);
  $('device').textContent = health.device;
  $('head-version').textContent = head.version ?? 'none';
  $('head-accuracy').textContent = head.accuracy == null ? '–' : (head.accuracy * 100).toFixed(1) + ' %';
  $('sample-count').textContent = health.samples;
  $('capture').hidden = !health.sources.some((s) => s.name.startsWith('camera:'));
  classes = [...new Set([...cls.classes.map((c) => c.label), ...extraClasses])].sort();
  $('classes').replaceChildren(...cls.classes.map((c) => el('span', { textContent: c.label + ': ' + c.count + '  ' })));
  $('samples').replaceChildren(...list.samples.map(card));
}

function card(s) {
  const prediction = !s.prediction ? 'no prediction yet'
    : s.predictionUnknown ? 'unknown (distance ' + s.predictionDistance.toFixed(2) + ')'
    : s.prediction + ' (' + Math.round(s.predictionScore * 100) + ' %)';
  const buttons = classes.map((c) => el('button', {
    textContent: c, className: s.label === c ? 'on' : '', title: 'label as ' + c,
    onclick: () => label(s.id, s.label === c ? null : c),
  }));
  return el('div', { className: 'card', dataset: { id: s.id, label: s.label || '', unknown: s.predictionUnknown ? 'true' : 'false' } }, [
    s.hasImage ? el('img', { src: '/api/samples/' + s.id + '/image', alt: s.label || 'sample', loading: 'lazy' }) : el('div', { textContent: '(image not kept)' }),
    el('div', { className: 'meta' }, [
      el('div', { textContent: 'label: ' + (s.label || '–') }),
      el('div', { textContent: 'predicted: ' + prediction }),
    ]),
    el('div', { className: 'labels' }, buttons),
  ]);
}

async function label(id, value) {
  try {
    await api('PUT', '/api/samples/' + id + '/label', { label: value });
    status(value ? 'labelled ' + value : 'label removed');
    await refresh();
  } catch (e) { status(e.message, true); }
}

$('add-class').onclick = () => {
  const name = $('new-class').value.trim();
  if (!name) return;
  extraClasses.add(name);
  $('new-class').value = '';
  refresh();
};
$('train').onclick = async () => {
  status('training…');
  try {
    const r = await api('POST', '/api/train');
    status(r.kept ? 'new head v' + r.version : 'head not kept: ' + r.reason);
    await refresh();
  } catch (e) { status(e.message, true); }
};
$('capture').onclick = async () => {
  status('capturing…');
  try {
    await api('POST', '/api/capture');
    status('captured');
    await refresh();
  } catch (e) { status(e.message, true); }
};
$('only-unlabelled').onchange = refresh;
refresh().catch((e) => status(e.message, true));
setInterval(() => refresh().catch(() => {}), 3000);
</script>
</body>
</html>
`;
