// The fleet's ACL, stated once: what a device may write and read. The embedded broker's hooks
// (console/broker.ts) and the mosquitto ACL file (console/mosquitto.ts) are both made from this list,
// so the two brokers cannot drift apart. `%u` is the device's login (= its client id and device id).

export interface AclRule {
  access: 'write' | 'read';
  /** Under edgetune/{fleet}/; MQTT wildcards allowed; %u is the device. */
  topic: string;
}

export const DEVICE_ACL: readonly AclRule[] = [
  { access: 'write', topic: 'device/%u/state' },
  { access: 'write', topic: 'device/%u/head' },
  { access: 'write', topic: 'device/%u/events' },
  { access: 'write', topic: 'device/%u/cmd/response' },
  { access: 'read', topic: 'device/%u/cmd' },
  { access: 'read', topic: 'fleet/head' },
  { access: 'read', topic: 'fleet/backbone' },
  { access: 'read', topic: 'fleet/agent' },
  { access: 'read', topic: 'blobs/#' },
];

function patterns(fleet: string, device: string, access: AclRule['access']): string[][] {
  return DEVICE_ACL.filter((r) => r.access === access).map((r) => `edgetune/${fleet}/${r.topic.replace('%u', device)}`.split('/'));
}

/** A device may publish on `topic` (no wildcards) when a write rule matches it. */
export function deviceMayPublish(fleet: string, device: string, topic: string): boolean {
  if (/[+#\u0000]/.test(topic)) return false;
  const levels = topic.split('/');
  return patterns(fleet, device, 'write').some((p) => covers(p, levels));
}

/** A device may subscribe to `filter` when a read rule covers every topic the filter can match. */
export function deviceMaySubscribe(fleet: string, device: string, filter: string): boolean {
  if (filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return patterns(fleet, device, 'read').some((p) => covers(p, levels));
}

/** Pattern levels cover filter levels: '#' covers the rest, '+' one level (but not a '#'), else equal. */
function covers(pattern: string[], filter: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '#') return filter.length >= i;
    const f = filter[i];
    if (f === undefined || f === '#') return false;
    if (p !== '+' && p !== f) return false;
  }
  return pattern.length === filter.length;
}

/** The mosquitto ACL file: the device rules as patterns, then full rights for the console's login. */
export function mosquittoAcl(fleet: string, consoleUser: string): string[] {
  return [
    ...DEVICE_ACL.map((r) => `pattern ${r.access} edgetune/${fleet}/${r.topic}`),
    '',
    `user ${consoleUser}`,
    `topic readwrite edgetune/${fleet}/#`,
  ];
}
