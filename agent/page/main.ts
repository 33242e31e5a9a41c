// The agent's labelling page: every sample, found by filter and order, labelled by click, key or in
// bulk; uploads by picker or drag-and-drop; deletes with undo; the current head's prediction on every
// card and its per-class confidence for the focused one. Live by Server-Sent Events, and nothing
// moves by itself: new samples wait behind a "N new" bar.

import type {
  AgentEventsJson,
  BrowseJson,
  BulkLabelJson,
  ClassesJson,
  FilterCountsJson,
  HeadJson,
  HealthJson,
  SampleJson,
  ScoresJson,
  TrainJson,
} from '../api-types.js';
import { ApiClient, ApiError, takeToken } from '../../web/api.js';
import { byId, el, percent, setText } from '../../web/dom.js';
import { CardGrid } from './cards.js';
import { inFilter } from './sample-filter.js';

const PAGE_SIZE = 60;
const UNDO_MS = 5000;
/** The largest page /api/browse serves. */
const REFRESH_CHUNK = 200;

const api = new ApiClient({ token: takeToken('edgetune-agent-token') });
const loginForm = byId<HTMLFormElement>('login');
const filterSelect = byId<HTMLSelectElement>('filter');
const orderSelect = byId<HTMLSelectElement>('order');
const extraClasses = new Set<string>();
/** The list shown: its query's time, what the server counts for it, and which list (`generation`, one per
 * reload) is loading a page, if any. */
const view = { asOf: 0, total: 0, newer: 0, generation: 0, loading: null as number | null };
let knownClasses: string[] = [];

function status(text: string, isError = false): void {
  const node = byId('status');
  node.textContent = text;
  node.title = text; // the whole message, where one line cuts it
  node.className = isError ? 'err' : '';
}
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

const grid = new CardGrid(
  byId('samples'),
  {
    label: (ids, value) => void label(ids, value),
    remove: (id) => remove(id),
    focus: (id) => focusCard(id),
  },
  () => renderBulk(),
);

// ---- undo: the last few actions, newest last; a delete only happens when its undo time is up
type Undo = {
  text: string;
  undo: () => Promise<void> | void;
  /** What happens when the undo time is up (or the page is left): `leaving` asks for a keepalive request. */
  commit?: (leaving?: boolean) => Promise<void>;
  timer?: ReturnType<typeof setTimeout>;
};
const undos: Undo[] = [];

function pushUndo(action: Undo): void {
  undos.push(action);
  if (undos.length > 10) undos.shift();
  if (action.commit) {
    action.timer = setTimeout(() => {
      const at = undos.indexOf(action);
      if (at >= 0) undos.splice(at, 1);
      void action.commit!().catch((e: unknown) => status(message(e), true));
      renderUndo();
    }, UNDO_MS);
  }
  renderUndo();
}

async function undoLast(): Promise<void> {
  const action = undos.pop();
  renderUndo();
  if (!action) return status('nothing to undo');
  clearTimeout(action.timer);
  try {
    await action.undo();
    status(`undone: ${action.text}`);
  } catch (e) {
    status(message(e), true);
  }
}

let undoHide: ReturnType<typeof setTimeout> | undefined;
function renderUndo(): void {
  const last = undos[undos.length - 1];
  byId('undo-bar').hidden = !last;
  clearTimeout(undoHide);
  if (!last) return;
  setText(byId('undo-text'), last.text);
  undoHide = setTimeout(() => (byId('undo-bar').hidden = true), UNDO_MS);
}

// A delete still waiting for its undo time goes through when the page is left.
addEventListener('pagehide', () => {
  for (const action of undos.splice(0)) if (action.commit) void action.commit(true);
});

// ---- actions
async function label(ids: string[], value: string | null): Promise<void> {
  const before = ids.map((id) => ({ id, label: grid.sample(id)?.label ?? null }));
  try {
    if (ids.length === 1) await api.request('PUT', `/api/samples/${ids[0]}/label`, { label: value });
    else await api.request<BulkLabelJson>('POST', '/api/samples/labels', { ids, label: value });
    grid.setLabel(ids, value);
    const what = `${ids.length === 1 ? '1 sample' : `${ids.length} samples`} ${value ? `labelled ${value}` : 'unlabelled'}`;
    status(what);
    pushUndo({
      text: what,
      undo: async () => {
        for (const previous of new Set(before.map((b) => b.label))) {
          const group = before.filter((b) => b.label === previous).map((b) => b.id);
          await api.request<BulkLabelJson>('POST', '/api/samples/labels', { ids: group, label: previous });
          grid.setLabel(group, previous);
        }
      },
    });
  } catch (e) {
    status(message(e), true);
  }
}

function remove(id: string): void {
  if (grid.isDeleted(id)) return;
  const action: Undo = {
    text: 'sample deleted',
    undo: () => grid.restore(id),
    commit: async (leaving) => {
      grid.seal(id);
      await api.request('DELETE', `/api/samples/${id}`, undefined, { keepalive: leaving ?? false });
    },
  };
  grid.markDeleted(id, () => {
    const at = undos.indexOf(action);
    if (at >= 0) undos.splice(at, 1);
    clearTimeout(action.timer);
    grid.restore(id);
    renderUndo();
  });
  const next = grid.neighbour('right');
  if (next && next !== id) grid.focus(next);
  pushUndo(action);
  status('sample deleted: undo within 5 s');
}

async function upload(files: File[]): Promise<void> {
  const as = byId<HTMLSelectElement>('upload-label').value;
  let stored = 0;
  for (const file of files) {
    try {
      await api.request('POST', `/api/samples${as ? `?label=${encodeURIComponent(as)}` : ''}`, file);
      stored++;
      status(`uploaded ${stored} of ${files.length}${as ? ` as ${as}` : ''}`);
    } catch (e) {
      return status(`${file.name}: ${message(e)}`, true);
    }
  }
}

// ---- the list: one query pinned to asOf; more pages append below

/** How far into the query's results the shown cards reach: cards labelled out of the filter or deleted
 * count no more, or the next page would start past samples nobody has seen. */
const reached = () => grid.held.filter((s) => inFilter(s, filterSelect.value || 'all')).length;

/** Orders that follow the head's predictions (and, for worth, turns taken within the set ranked): a new
 * head or a label reorders them under the shown cards, so their next page is not fetched by offset. */
const SHIFTING_ORDERS: ReadonlySet<string> = new Set(['least-confident', 'worth']);
/** How far below the window the end of the list starts loading the next page. */
const LOOKAHEAD_PX = 200;
/** The most pages one trigger loads while the end of the list stays in view. */
const FILL_PAGES = 10;

function browsePath(limit: number, offset: number): string {
  const query = new URLSearchParams({
    filter: filterSelect.value || 'all',
    order: orderSelect.value,
    limit: String(limit),
    offset: String(offset),
    asOf: String(view.asOf),
  });
  return `/api/browse?${query}`;
}

/** Appends the next page of the list begun as `generation`; says whether it added a card. A reply for an
 * earlier list (another filter or order chosen meanwhile) is dropped. */
async function loadPage(generation: number): Promise<boolean> {
  let page: BrowseJson;
  let fresh: SampleJson[] = [];
  if (!SHIFTING_ORDERS.has(orderSelect.value)) {
    page = await api.get<BrowseJson>(browsePath(PAGE_SIZE, reached()));
    if (generation !== view.generation) return false;
    fresh = page.samples;
  } else {
    // The order as it is now, from its start, skipping the cards shown (and refreshing them): a sample
    // that a new head moved is then neither shown twice nor skipped.
    let offset = 0;
    let limit = Math.min(REFRESH_CHUNK, grid.size + PAGE_SIZE);
    for (;;) {
      page = await api.get<BrowseJson>(browsePath(limit, offset));
      if (generation !== view.generation) return false;
      for (const s of page.samples) {
        if (grid.has(s.id)) grid.update(s);
        else fresh.push(s);
      }
      if (fresh.length >= PAGE_SIZE || page.samples.length < limit) break;
      offset += limit;
      limit = REFRESH_CHUNK;
    }
    fresh = fresh.slice(0, PAGE_SIZE);
  }
  const before = grid.size;
  grid.append(fresh);
  applyPage(page);
  return grid.size > before;
}

/** Whether the end of the list is in view (or nearly) while the server has more. */
function moreInView(): boolean {
  const more = byId('more');
  if (more.hidden || reached() >= view.total) return false;
  const box = more.getBoundingClientRect();
  return box.bottom >= 0 && box.top <= innerHeight + LOOKAHEAD_PX;
}

async function loadMore(): Promise<void> {
  const generation = view.generation;
  if (view.loading === generation) return;
  view.loading = generation;
  const list = byId('samples');
  list.setAttribute('aria-busy', 'true');
  try {
    // The page asked for, then more while the end of the list is still in view (a tall window, a short
    // page): the observer fires when #more comes into view, not while it stays there.
    for (let pages = 0; pages < FILL_PAGES; pages++) if (!(await loadPage(generation)) || !moreInView()) break;
  } finally {
    if (view.loading === generation) view.loading = null;
    list.setAttribute('aria-busy', String(view.loading !== null));
  }
}

function applyPage(page: BrowseJson): void {
  view.total = page.total;
  view.newer = page.newer;
  renderCounts(page.counts);
  renderNewBar();
  renderMore();
  byId('empty').hidden = view.total > 0;
  if (!grid.focusedId && grid.ids[0]) grid.focus(grid.ids[0]);
}

/** Starts the list again from the top: on a new filter or order, or when asked to show new samples. */
async function reload(): Promise<void> {
  view.generation++;
  view.asOf = Date.now();
  grid.clear();
  await loadMore();
}

/** Refreshes every shown card where it is (after a head change): the same query and asOf, paged through
 * in chunks until each shown card has been seen; cards the query no longer finds are fetched by id. */
async function refreshShown(): Promise<void> {
  const generation = view.generation;
  const waiting = new Set(grid.ids);
  let page: BrowseJson;
  for (let offset = 0; ; offset += REFRESH_CHUNK) {
    page = await api.get<BrowseJson>(browsePath(REFRESH_CHUNK, offset));
    if (generation !== view.generation) return;
    for (const s of page.samples) {
      grid.update(s);
      waiting.delete(s.id);
    }
    if (waiting.size === 0 || page.samples.length < REFRESH_CHUNK) break;
  }
  // Relabelled out of the filter or deleted meanwhile: a few at a time, a gone one left as it is.
  const rest = [...waiting].filter((id) => !grid.isDeleted(id));
  for (let i = 0; i < rest.length; i += 8)
    await Promise.all(
      rest.slice(i, i + 8).map((id) =>
        api.get<{ sample: SampleJson }>(`/api/samples/${id}`).then(
          (r) => generation === view.generation && grid.update(r.sample),
          () => undefined,
        ),
      ),
    );
  if (generation === view.generation) applyPage(page);
}

function renderMore(): void {
  const left = view.total - reached();
  const more = byId<HTMLButtonElement>('more');
  more.hidden = left <= 0;
  more.textContent = `show more (${left} left)`;
}

function renderNewBar(): void {
  // Always there, so that its appearing never pushes the cards down.
  const bar = byId<HTMLButtonElement>('new-bar');
  bar.disabled = view.newer === 0;
  setText(bar, view.newer === 0 ? 'no new samples' : `${view.newer} new sample${view.newer === 1 ? '' : 's'}: show them`);
}

function renderCounts(counts: FilterCountsJson): void {
  const options: [string, string][] = [
    ['all', `all (${counts.all})`],
    ['unlabelled', `unlabelled (${counts.unlabelled})`],
    ['labelled', `labelled (${counts.labelled})`],
    ['unknown', `unknown (${counts.unknown})`],
    ['quarantined', `quarantined (${counts.quarantined})`],
    ...Object.entries(counts.label).map(([c, n]): [string, string] => [`label:${c}`, `label ${c} (${n})`]),
    ...Object.entries(counts.predicted)
      .filter(([c]) => c !== 'unknown')
      .map(([c, n]): [string, string] => [`predicted:${c}`, `predicted ${c} (${n})`]),
  ];
  const current = filterSelect.value || 'all';
  if (!options.some(([value]) => value === current)) options.push([current, `${current.replace(':', ' ')} (0)`]);
  const same = [...filterSelect.options].map((o) => `${o.value}=${o.text}`).join('\n') === options.map(([v, t]) => `${v}=${t}`).join('\n');
  if (!same) {
    filterSelect.replaceChildren(...options.map(([value, text]) => el('option', { value, text })));
    filterSelect.value = current;
  }
  byId('classes').replaceChildren(...Object.entries(counts.label).map(([c, n]) => el('span', { textContent: `${c}: ${n}` })));
}

// ---- header, classes and the focused card's confidence
async function refreshHeader(): Promise<void> {
  const [health, head, cls] = await Promise.all([
    api.get<HealthJson>('/health'),
    api.get<HeadJson>('/api/head'),
    api.get<ClassesJson>('/api/classes'),
  ]);
  setText(byId('device'), health.device);
  setText(byId('head-version'), head.version == null ? 'none' : String(head.version));
  setText(byId('head-accuracy'), percent(head.accuracy));
  setText(byId('sample-count'), String(health.samples));
  byId('store-full').hidden = !health.store.full;
  byId('capture').hidden = !health.sources.some((s) => s.name.startsWith('camera:'));
  knownClasses = [...new Set([...cls.classes.map((c) => c.label), ...head.labels])];
  renderClasses();
}

/** The counts per filter and per class, and how many new samples the current filter would show, as of
 * the list's asOf: the same query with no samples. */
async function refreshCounts(): Promise<void> {
  const generation = view.generation;
  const page = await api.get<BrowseJson>(browsePath(0, 0));
  if (generation !== view.generation) return;
  view.newer = page.newer;
  view.total = page.total;
  renderCounts(page.counts);
  renderNewBar();
  renderMore();
}

// A burst of events (20 photos from an inbox, a bulk label) refreshes the header and counts once, not 20 times.
let headerTimer: ReturnType<typeof setTimeout> | undefined;
function refreshHeaderSoon(): void {
  headerTimer ??= setTimeout(() => {
    headerTimer = undefined;
    Promise.all([refreshHeader(), refreshCounts()]).catch((e: unknown) => status(message(e), true));
  }, 250);
}

function renderClasses(): void {
  const classes = [...new Set([...knownClasses, ...extraClasses])].sort();
  grid.setClasses(classes);
  const uploadLabel = byId<HTMLSelectElement>('upload-label');
  const chosen = uploadLabel.value;
  uploadLabel.replaceChildren(el('option', { value: '', text: 'no label' }), ...classes.map((c) => el('option', { value: c, text: c })));
  uploadLabel.value = classes.includes(chosen) ? chosen : '';
  byId('bulk-labels').replaceChildren(
    ...classes.map((c) =>
      el('button', { textContent: c, title: `label the selection as ${c}`, onclick: () => void label([...grid.selected], c) }),
    ),
  );
}

function renderBulk(): void {
  const n = grid.selected.size;
  byId('bulk').hidden = n === 0;
  setText(byId('bulk-count'), `${n} selected: label as`);
}

const MANY_CLASSES = 4; // one column up to four classes, two from five
let scoresFor: string | null = null;
function focusCard(id: string): void {
  grid.focus(id);
  if (scoresFor === id) return;
  scoresFor = id;
  void showScores(id);
}

async function showScores(id: string): Promise<void> {
  try {
    const reply = await api.get<ScoresJson>(`/api/samples/${id}/scores`);
    if (scoresFor !== id) return;
    setText(byId('details-head'), reply.headVersion == null ? 'no head yet' : `head v${reply.headVersion}`);
    const scores = byId('scores');
    // More classes than the phone's panel has lines for: two columns (see page.css).
    scores.classList.toggle('many', reply.scores.length > MANY_CLASSES);
    scores.replaceChildren(
      ...(reply.scores.length === 0
        ? [el('li', { className: 'muted', textContent: 'no prediction yet' })]
        : reply.scores.map((s) => {
            const bar = el('progress', { max: 1, value: s.score });
            bar.setAttribute('aria-label', `${s.label} confidence`);
            return el('li', { dataset: { label: s.label } }, [
              el('span', { textContent: s.label }),
              bar,
              el('span', { className: 'value', textContent: `${Math.round(s.score * 100)} %` }),
            ]);
          })),
    );
  } catch {
    // The sample went away meanwhile: nothing to show.
  }
}

// ---- live events: counted, not inserted; labels and deletions from elsewhere shown in place
function connect(): void {
  const live = byId('live');
  const events = new EventSource('/api/events');
  const on = <K extends keyof AgentEventsJson>(name: K, handle: (data: AgentEventsJson[K]) => void) =>
    events.addEventListener(name, (e) => handle(JSON.parse((e as MessageEvent<string>).data) as AgentEventsJson[K]));
  events.onopen = () => {
    live.className = 'on';
    live.textContent = 'live';
  };
  events.onerror = () => {
    live.className = 'off';
    live.textContent = 'reconnecting…';
  };
  on('hello', () => void refreshHeader().then(() => (grid.size > 0 ? refreshShown() : undefined)));
  // Only those the current filter would show count as new: the counts refresh asks the server.
  on('sample', () => refreshHeaderSoon());
  on('label', (e) => {
    grid.setLabel(e.ids, e.label);
    refreshHeaderSoon();
  });
  on('deleted', (e) => {
    // Deleted here once sent, or elsewhere: either way there is nothing left to undo.
    grid.markDeleted(e.id);
    grid.seal(e.id);
    refreshHeaderSoon();
  });
  on('head', () => {
    refreshHeaderSoon();
    void refreshShown();
    if (scoresFor) void showScores(scoresFor);
  });
}

// ---- keyboard: digits label, arrows move, space selects, delete deletes, u undoes
const ARROWS: Record<string, 'left' | 'right' | 'up' | 'down'> = {
  ArrowLeft: 'left',
  ArrowRight: 'right',
  ArrowUp: 'up',
  ArrowDown: 'down',
};
addEventListener('keydown', (event) => {
  const target = event.target as HTMLElement;
  if (target.matches('input:not(.pick), select, textarea') || event.ctrlKey || event.metaKey || event.altKey) return;
  const focused = grid.focusedId;
  const targets = grid.selected.size > 0 ? [...grid.selected] : focused ? [focused] : [];
  if (event.key in ARROWS) {
    const next = grid.neighbour(ARROWS[event.key]!);
    if (next) focusCard(next);
  } else if (/^[1-9]$/.test(event.key)) {
    const c = grid.classList[Number(event.key) - 1];
    if (c && targets.length) void label(targets, c);
  } else if (event.key === '0') {
    if (targets.length) void label(targets, null);
  } else if (event.key === ' ' && focused && !target.matches('button')) {
    grid.toggleSelected(focused);
  } else if ((event.key === 'Delete' || event.key === 'Backspace' || event.key === 'x') && focused) {
    remove(focused);
  } else if (event.key === 'u') {
    void undoLast();
  } else if (event.key === 'Escape') {
    grid.clearSelection();
  } else return;
  event.preventDefault();
});

// ---- drag and drop anywhere on the page
let dragDepth = 0;
addEventListener('dragenter', (e) => {
  if (!e.dataTransfer?.types.includes('Files')) return;
  dragDepth++;
  byId('drop').hidden = false;
});
addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) byId('drop').hidden = true;
});
addEventListener('dragover', (e) => e.preventDefault());
addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  byId('drop').hidden = true;
  const files = [...(e.dataTransfer?.files ?? [])].filter((f) => f.type.startsWith('image/') || f.type === '');
  if (files.length) void upload(files);
});

// ---- controls
const run = (pending: string, action: () => Promise<string>) => async () => {
  status(pending);
  try {
    status(await action());
  } catch (e) {
    status(message(e), true);
  }
};
byId('add-class').onclick = () => {
  const input = byId<HTMLInputElement>('new-class');
  const name = input.value.trim();
  if (!name) return;
  extraClasses.add(name);
  input.value = '';
  renderClasses();
};
byId('train').onclick = run('training…', async () => {
  const r = await api.request<TrainJson>('POST', '/api/train');
  return r.kept ? `new head v${r.version}` : `head not kept: ${r.reason}`;
});
byId('capture').onclick = run('capturing…', async () => {
  await api.request('POST', '/api/capture');
  return 'captured: see the new-samples bar';
});
byId<HTMLInputElement>('upload').onchange = (e) => {
  const input = e.target as HTMLInputElement;
  void upload([...(input.files ?? [])]).then(() => (input.value = ''));
};
byId('new-bar').onclick = () => void reload();
byId('more').onclick = () => void loadMore();
byId('undo').onclick = () => void undoLast();
byId('bulk-unlabel').onclick = () => void label([...grid.selected], null);
byId('bulk-clear').onclick = () => grid.clearSelection();
filterSelect.onchange = () => void reload();
orderSelect.onchange = () => void reload();
// Further pages load as the last card comes into view (appending below moves nothing above).
new IntersectionObserver(
  (entries) => {
    if (entries.some((e) => e.isIntersecting) && reached() < view.total) void loadMore();
  },
  { rootMargin: `0px 0px ${LOOKAHEAD_PX}px 0px` },
).observe(byId('more'));

filterSelect.append(el('option', { value: 'all', text: 'all' }));

/** The session cookie (HttpOnly, so this script never sees it) lets the photos and the event stream
 * through too: one login. */
async function login(token: string): Promise<void> {
  await api.request('POST', '/api/login', { token });
  loginForm.hidden = true;
}
loginForm.onsubmit = (e) => {
  e.preventDefault();
  login(byId<HTMLInputElement>('token').value)
    .then(start)
    .catch((err: unknown) => status(message(err), true));
};
async function start(): Promise<void> {
  await refreshHeader();
  await reload();
  connect();
  status('');
}
async function boot(): Promise<void> {
  // A token from the address bar (or kept for this tab) logs in; a wrong one may still meet a valid cookie.
  const refused = api.token
    ? await login(api.token).then(
        () => undefined,
        (e: unknown) => e,
      )
    : undefined;
  try {
    await start();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) loginForm.hidden = false;
    status(message(refused ?? e), true);
  }
}
void boot();
