// What the broker sees go wrong with a device, as problem rows with their reason: a refused login, a
// refused publish (a device whose id is not its login), and a device that keeps losing its link. One
// row per device and kind a minute, so a device looping through reconnects does not flood the list.

import type { Refusal } from './broker.js';

export interface TroubleProblem {
  device: string;
  topic: string;
  code: string;
  message: string;
}

export interface TroubleOptions {
  fleet: string;
  /** Whether a login was ever issued for this device (the reason for a refused login differs). */
  issued: (device: string) => boolean;
  report: (problem: TroubleProblem) => void;
  /** Disconnects within `windowMs` that make a device "flapping" (default 5 in 60 s). */
  flapCount?: number;
  windowMs?: number;
  now?: () => number;
}

export class DeviceTrouble {
  private readonly disconnects = new Map<string, number[]>();
  private readonly lastReported = new Map<string, number>();
  private readonly lastRefusal = new Map<string, string>();

  constructor(private readonly options: TroubleOptions) {}

  /** Every broker refusal becomes one problem row (at most one a minute per device and kind) that says
   * what to do about it. */
  refused(refusal: Refusal): void {
    const { device } = refusal;
    if (refusal.action === 'packet')
      return this.report({ device, topic: 'broker', code: 'BROKER_REFUSED_PACKET', message: `packet refused: ${refusal.reason ?? ''}` });
    if (refusal.action === 'connect') {
      const reason =
        refusal.cause === 'client-id'
          ? `${refusal.reason ?? 'client id is not the login'}: a device connects with its login as client id (the agent does; something else holds "${device}"'s password)`
          : refusal.cause === 'address-blocked'
            ? `${refusal.reason ?? 'too many failed logins'}: refused unchecked for ten minutes`
            : this.options.issued(device)
              ? `wrong password for "${device}": the agent's fleet.password is not the one add-device issued last (run edgetune console add-device ${device} again and update the agent config)`
              : `no login was issued for "${device}": run edgetune console add-device ${device} and put its snippet in the agent config`;
      this.lastRefusal.set(device, `login refused (${reason})`);
      return this.report({ device, topic: 'connect', code: 'DEVICE_LOGIN_REFUSED', message: `login refused: ${reason}` });
    }
    const own = `edgetune/${this.options.fleet}/device/${device}/`;
    const other = /^edgetune\/[^/]+\/device\/([^/]+)\//.exec(refusal.topic)?.[1];
    const reason =
      refusal.action === 'publish' && other !== undefined && other !== device
        ? `login "${device}" published as device "${other}": the agent's device.id must be its login (set device.id: ${device})`
        : `device ${device} may not ${refusal.action} ${refusal.topic.slice(0, 200)} (a device writes only under ${own})`;
    this.lastRefusal.set(device, reason);
    this.report({ device, topic: refusal.topic.slice(0, 200), code: 'DEVICE_REFUSED', message: reason });
  }

  disconnected(device: string): void {
    const now = this.now();
    const windowMs = this.options.windowMs ?? 60_000;
    const recent = (this.disconnects.get(device) ?? []).filter((t) => t > now - windowMs);
    recent.push(now);
    this.disconnects.set(device, recent);
    if (recent.length < (this.options.flapCount ?? 5)) return;
    const why = this.lastRefusal.get(device);
    this.report({
      device,
      topic: 'connect',
      code: 'DEVICE_FLAPPING',
      message: `device ${device} lost its link ${recent.length} times in ${Math.round(windowMs / 1000)} s${why ? `; last refusal: ${why}` : ''}`,
    });
  }

  private report(problem: TroubleProblem): void {
    problem = { ...problem, device: problem.device.slice(0, 64) };
    const key = `${problem.device}\u0000${problem.code}`;
    const now = this.now();
    if ((this.lastReported.get(key) ?? -Infinity) > now - (this.options.windowMs ?? 60_000)) return;
    this.lastReported.set(key, now);
    this.options.report(problem);
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }
}
