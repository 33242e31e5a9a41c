// The released fleet head on the holdouts of the devices that run it: recall and precision per class,
// and the summed confusion matrix (GET /api/fleet/accuracy).

import type { FleetAccuracyJson } from '../api-types.js';
import { byId, el, percent, setText } from '../../web/dom.js';

export function renderFleetAccuracy(a: FleetAccuracyJson): void {
  setText(
    byId('fleet-accuracy-summary'),
    a.version === null
      ? 'No fleet head released yet.'
      : a.devices.length === 0
        ? `No device on fleet head v${a.version} reports a holdout yet.`
        : `fleet head v${a.version}: ${percent(a.accuracy)} of ${a.total} holdout photos on ${a.devices.join(', ')}` +
          (a.withoutHoldout.length ? ` (no holdout: ${a.withoutHoldout.join(', ')})` : ''),
  );
  byId('fleet-accuracy-rows').replaceChildren(
    ...a.perClass.map((c) =>
      el('tr', { dataset: { label: c.label } }, [
        el('td', { textContent: c.label }),
        el('td', { textContent: String(c.support) }),
        el('td', { className: 'recall', textContent: c.support ? percent(c.recall) : '–' }),
        el('td', { className: 'precision', textContent: percent(c.precision) }),
      ]),
    ),
  );
  const head = el('tr', {}, [
    el('th', { textContent: 'true \\ predicted' }),
    ...[...a.classes, 'unknown'].map((l) => el('th', { textContent: l })),
  ]);
  byId('fleet-confusion').replaceChildren(
    el('thead', {}, [head]),
    el(
      'tbody',
      {},
      a.confusion.map((row, i) =>
        el('tr', {}, [el('th', { textContent: a.classes[i]! }), ...row.map((n) => el('td', { textContent: String(n) }))]),
      ),
    ),
  );
}
