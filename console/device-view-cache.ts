// The device table of a fleet of thousands, kept built: a device's view is rebuilt when the registry
// says that device changed (a state, a head, a message seen, its tags), not for every request; logins
// issued since (add-device, maybe from another process) show in a cheap fingerprint of the credentials
// and rebuild the whole table.

import { type DeviceView, byId, deviceView, deviceViews } from './device-view.js';
import type { Registry } from './registry.js';

export interface DeviceViewSources {
  registry: Registry;
  canaries: string[];
  issued(): { device: string; issuedAt: number }[];
  /** Changes whenever a login is issued or issued again. */
  issuedFingerprint(): string;
}

export class DeviceViewCache {
  private readonly views = new Map<string, DeviceView>();
  private sorted: DeviceView[] = [];
  private readonly dirty = new Set<string>();
  private fingerprint: string | null = null;

  constructor(private readonly sources: DeviceViewSources) {
    sources.registry.onDeviceChange((device) => this.dirty.add(device));
  }

  /** Every device, by id. The views are shared: read them, do not change them. */
  all(): DeviceView[] {
    const fingerprint = this.sources.issuedFingerprint();
    if (fingerprint !== this.fingerprint) this.rebuild(fingerprint);
    else if (this.dirty.size > 0) this.refreshDirty();
    return this.sorted;
  }

  private rebuild(fingerprint: string): void {
    const { registry, canaries } = this.sources;
    this.dirty.clear();
    this.sorted = deviceViews(registry, canaries, this.sources.issued());
    this.views.clear();
    for (const view of this.sorted) this.views.set(view.id, view);
    this.fingerprint = fingerprint;
  }

  private refreshDirty(): void {
    const { registry, canaries } = this.sources;
    let added = false;
    for (const id of this.dirty) {
      const row = registry.device(id);
      if (!row) continue; // a message seen before the device's first state: no row yet
      const before = this.views.get(id);
      added ||= before === undefined;
      this.views.set(
        id,
        deviceView(row, {
          canary: canaries.includes(id),
          issuedAt: before?.issuedAt ?? null,
          headsReceived: registry.deviceHeadCount(id),
          tags: registry.tagsOf(id),
        }),
      );
    }
    this.dirty.clear();
    this.sorted = added ? [...this.views.values()].sort(byId) : this.sorted.map((v) => this.views.get(v.id)!);
  }
}
