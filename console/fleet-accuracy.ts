// How the fleet head does across the fleet: the holdout confusion matrices of the devices that run it
// (their state's fleetVersion; with fleet.apply "merge" their head is the fleet head merged with their
// own), summed over the union of their classes, with recall and precision per class from the sum. A
// device's holdout is its own photos, so the sum weighs each device by its holdout size.

import { perClassOf } from '../runtime/eval/metrics.js';
import type { FleetAccuracyJson } from './api-types.js';
import type { DeviceView } from './device-view.js';

export function fleetAccuracy(views: DeviceView[], version: number | null): FleetAccuracyJson {
  const on = views.filter((d) => version !== null && d.fleetVersion === version);
  const reporting = on.filter((d) => d.holdout !== null && d.holdout.classes.length > 0);
  const classes: string[] = [];
  for (const d of reporting) for (const label of d.holdout!.classes) if (!classes.includes(label)) classes.push(label);
  const k = classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  for (const d of reporting) {
    const own = d.holdout!.classes;
    const at = own.map((label) => classes.indexOf(label));
    d.holdout!.confusion.forEach((row, i) =>
      row.forEach((count, j) => {
        // The last column of a device's matrix is "unknown", the last of the fleet's too.
        confusion[at[i]!]![j < own.length ? at[j]! : k]! += count;
      }),
    );
  }
  const total = confusion.reduce((a, row) => a + row.reduce((x, y) => x + y, 0), 0);
  const correct = confusion.reduce((a, row, i) => a + row[i]!, 0);
  return {
    version,
    devices: reporting.map((d) => d.id),
    withoutHoldout: on.filter((d) => !reporting.includes(d)).map((d) => d.id),
    classes,
    perClass: perClassOf(confusion, classes),
    confusion,
    total,
    accuracy: total > 0 ? correct / total : null,
  };
}
