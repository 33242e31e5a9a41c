// The page's fleet config editor: any agent setting (the list comes from the agent's schema, GET
// /api/config/fields) for the whole fleet, a tag or one device; "show changes" asks the console for a
// dry run, which checks the values with the agent's schema and lists what would change on each device;
// "push" sends exactly what was shown. Changing anything after the preview asks for a new one.

import type { ConfigFieldJson, ConfigPushJson, ConfigTargetJson } from '../api-types.js';
import type { ApiClient } from '../../web/api.js';
import { byId, child, el, setText } from '../../web/dom.js';

export interface ConfigEditorHost {
  api: ApiClient;
  status(text: string, isError?: boolean): void;
  refresh(): Promise<void>;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));

export function startConfigEditor(host: ConfigEditorHost): void {
  const form = byId<HTMLFormElement>('fc-form');
  const kind = byId<HTMLSelectElement>('fc-scope-kind');
  const name = byId<HTMLInputElement>('fc-scope-name');
  const rows = byId('fc-rows');
  const push = byId<HTMLButtonElement>('fc-push');
  const error = byId('fc-error');
  const fields = new Map<string, ConfigFieldJson>();
  let previewed: string | null = null;

  const scope = () => (kind.value === 'fleet' ? 'fleet' : `${kind.value}:${name.value.trim()}`);
  const settings = () =>
    [...rows.querySelectorAll<HTMLElement>('.fc-row')]
      .map((row) => ({
        field: child<HTMLInputElement>(row, '.fc-field').value.trim(),
        value: child<HTMLInputElement>(row, '.fc-value').value,
      }))
      .filter((s) => s.field !== '');
  // The values go as typed (JSON, or else text), the console reads them as the CLI does.
  const request = () => ({ scope: scope(), settings: Object.fromEntries(settings().map((s) => [s.field, s.value])) });
  const stale = () => {
    previewed = null;
    push.disabled = true;
    setText(push, 'push');
  };

  function hint(row: HTMLElement): void {
    const field = fields.get(child<HTMLInputElement>(row, '.fc-field').value.trim());
    const values = child<HTMLDataListElement>(row, 'datalist');
    values.replaceChildren(
      ...(field?.values ?? (field?.type === 'boolean' ? ['true', 'false'] : [])).map((v) => el('option', { value: v })),
    );
    setText(
      child(row, '.fc-hint'),
      field
        ? [
            field.values ? field.values.join(' | ') : field.type + (field.nullable ? ' or null' : ''),
            field.min !== undefined || field.max !== undefined ? `${field.min ?? ''}…${field.max ?? ''}` : '',
            field.default !== undefined ? `default ${JSON.stringify(field.default)}` : '',
            field.live ? 'at once' : 'after a restart',
          ]
            .filter(Boolean)
            .join(' · ')
        : '',
    );
  }

  function addRow(field = '', value = ''): void {
    const n = rows.children.length;
    const row = el('div', { className: 'fc-row' }, [
      el('input', { className: 'fc-field', value: field, placeholder: 'head.unknownThreshold', autocomplete: 'off' }),
      el('input', { className: 'fc-value', value, placeholder: 'value (JSON or text)', autocomplete: 'off' }),
      el('datalist', { id: `fc-values-${n}` }),
      el('span', { className: 'fc-hint muted' }),
      el('button', { type: 'button', className: 'fc-remove', textContent: '×', onclick: () => (row.remove(), stale()) }),
    ]);
    child(row, '.fc-field').setAttribute('list', 'fc-fields');
    child(row, '.fc-field').setAttribute('aria-label', 'setting');
    child(row, '.fc-value').setAttribute('list', `fc-values-${n}`);
    child(row, '.fc-value').setAttribute('aria-label', 'value');
    child(row, '.fc-remove').setAttribute('aria-label', 'remove this setting');
    child(row, '.fc-field').addEventListener('input', () => hint(row));
    rows.append(row);
    hint(row);
  }

  function render(targets: ConfigTargetJson[], dryRun: boolean): void {
    const body = byId('fc-diff-rows');
    body.replaceChildren(
      ...targets.map((t) =>
        el('tr', { dataset: { device: t.device, status: t.status } }, [
          el('td', { textContent: t.device }),
          el('td', { textContent: t.status }),
          el(
            'td',
            {},
            t.diff.length ? t.diff.map((c) => el('div', { textContent: `${c.field}: ${show(c.from)} → ${show(c.to)}` })) : ['–'],
          ),
          el('td', {
            textContent:
              t.error ?? (t.restartRequired?.length ? `after a restart: ${t.restartRequired.join(', ')}` : dryRun ? '' : 'applied'),
          }),
        ]),
      ),
    );
    byId('fc-diff').hidden = false;
  }

  async function send(dryRun: boolean): Promise<ConfigPushJson | null> {
    error.textContent = '';
    try {
      return await host.api.request<ConfigPushJson>('POST', '/api/config', { ...request(), dryRun });
    } catch (e) {
      error.textContent = message(e);
      return null;
    }
  }

  kind.onchange = () => {
    name.hidden = kind.value === 'fleet';
    name.placeholder = kind.value === 'tag' ? 'tag' : 'device id';
    stale();
  };
  form.addEventListener('input', stale);
  byId('fc-add').onclick = () => addRow();
  form.onsubmit = async (event) => {
    event.preventDefault();
    stale();
    const key = JSON.stringify(request());
    const reply = await send(true);
    if (!reply) return;
    render(reply.targets, true);
    const changes = reply.targets.filter((t) => t.diff.length > 0);
    if (changes.length === 0) return setText(push, 'nothing to push');
    previewed = key;
    push.disabled = false;
    setText(push, `push to ${changes.length} device${changes.length === 1 ? '' : 's'}`);
  };
  push.onclick = async () => {
    if (previewed === null || previewed !== JSON.stringify(request())) return stale(); // changed since the preview
    push.disabled = true;
    const reply = await send(false);
    previewed = null;
    setText(push, 'push');
    if (!reply) return;
    render(reply.targets, false);
    const failed = reply.targets.filter((t) => t.status === 'failed' || t.status === 'offline');
    host.status(
      `config for ${reply.scope}: ${reply.targets.filter((t) => t.status === 'pushed').length} pushed` +
        (failed.length ? `, not applied on ${failed.map((t) => `${t.device} (${t.status})`).join(', ')}` : ''),
      failed.length > 0,
    );
    await Promise.all([host.refresh(), layers()]);
  };

  async function layers(): Promise<void> {
    const reply = await host.api.request<{ layers: Record<string, unknown> }>('GET', '/api/config');
    const lines = Object.entries(reply.layers).map(([s, v]) => `${s}: ${JSON.stringify(v)}`);
    setText(byId('fc-layers'), lines.join('\n') || 'none yet');
  }

  void host.api.request<{ fields: ConfigFieldJson[] }>('GET', '/api/config/fields').then(
    (reply) => {
      for (const f of reply.fields) fields.set(f.field, f);
      byId('fc-fields').replaceChildren(...reply.fields.map((f) => el('option', { value: f.field })));
      for (const row of rows.querySelectorAll<HTMLElement>('.fc-row')) hint(row);
    },
    (e: unknown) => host.status(`could not read the config fields: ${message(e)}`, true),
  );
  void layers().catch(() => {});
  addRow();
}
