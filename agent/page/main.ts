// The agent's labelling page: recent samples with thumbnails and predictions, click a class to label,
// the head version and its holdout accuracy.

import type { ClassesJson, HeadJson, HealthJson, SampleJson, SamplesJson, TrainJson } from '../api-types.js';
import { ApiClient, takeToken } from '../../web/api.js';
import { byId, el, percent } from '../../web/dom.js';

const api = new ApiClient({ token: takeToken('edgetune-agent-token') });
let classes: string[] = [];
const extraClasses = new Set<string>();
const onlyUnlabelled = byId<HTMLInputElement>('only-unlabelled');

function status(text: string, isError = false): void {
  const node = byId('status');
  node.textContent = text;
  node.className = isError ? 'err' : '';
}
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function refresh(): Promise<void> {
  const [health, head, cls, list] = await Promise.all([
    api.get<HealthJson>('/health'),
    api.get<HeadJson>('/api/head'),
    api.get<ClassesJson>('/api/classes'),
    api.get<SamplesJson>(`/api/samples?limit=60${onlyUnlabelled.checked ? '&labelled=false' : ''}`),
  ]);
  byId('device').textContent = health.device;
  byId('head-version').textContent = head.version == null ? 'none' : String(head.version);
  byId('head-accuracy').textContent = percent(head.accuracy);
  byId('sample-count').textContent = String(health.samples);
  byId('capture').hidden = !health.sources.some((s) => s.name.startsWith('camera:'));
  classes = [...new Set([...cls.classes.map((c) => c.label), ...extraClasses])].sort();
  byId('classes').replaceChildren(...cls.classes.map((c) => el('span', { textContent: `${c.label}: ${c.count}  ` })));
  byId('samples').replaceChildren(...list.samples.map(card));
}

function card(s: SampleJson): HTMLElement {
  const prediction = s.prediction ? `${s.prediction} (${Math.round((s.predictionScore ?? 0) * 100)} %)` : 'no prediction yet';
  const buttons = classes.map((c) =>
    el('button', {
      textContent: c,
      className: s.label === c ? 'on' : '',
      title: `label as ${c}`,
      onclick: () => void label(s.id, s.label === c ? null : c),
    }),
  );
  return el('div', { className: 'card', dataset: { id: s.id, label: s.label ?? '' } }, [
    s.hasImage
      ? el('img', { src: `/api/samples/${s.id}/image`, alt: s.label ?? 'sample', loading: 'lazy' })
      : el('div', { textContent: '(image not kept)' }),
    el('div', { className: 'meta' }, [
      el('div', { textContent: `label: ${s.label ?? '–'}` }),
      el('div', { textContent: `predicted: ${prediction}` }),
    ]),
    el('div', { className: 'labels' }, buttons),
  ]);
}

/** Runs an action, says how it went in the status line, and refreshes. */
async function act(pending: string | null, run: () => Promise<string>): Promise<void> {
  if (pending) status(pending);
  try {
    status(await run());
    await refresh();
  } catch (e) {
    status(message(e), true);
  }
}

const label = (id: string, value: string | null) =>
  act(null, async () => {
    await api.request('PUT', `/api/samples/${id}/label`, { label: value });
    return value ? `labelled ${value}` : 'label removed';
  });

byId('add-class').onclick = () => {
  const input = byId<HTMLInputElement>('new-class');
  const name = input.value.trim();
  if (!name) return;
  extraClasses.add(name);
  input.value = '';
  void refresh();
};
byId('train').onclick = () =>
  act('training…', async () => {
    const r = await api.request<TrainJson>('POST', '/api/train');
    return r.kept ? `new head v${r.version}` : `head not kept: ${r.reason}`;
  });
byId('capture').onclick = () =>
  act('capturing…', async () => {
    await api.request('POST', '/api/capture');
    return 'captured';
  });
onlyUnlabelled.onchange = () => void refresh();
refresh().catch((e: unknown) => status(message(e), true));
setInterval(() => refresh().catch(() => undefined), 3000);
