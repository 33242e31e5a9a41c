import { describe, expect, it } from 'vitest';
import type { Refusal } from '../../console/broker.js';
import { DeviceTrouble, type TroubleProblem } from '../../console/device-trouble.js';

function trouble(now: { t: number }) {
  const rows: TroubleProblem[] = [];
  const t = new DeviceTrouble({ fleet: 'farm', issued: (d) => d === 'pi-a', report: (p) => rows.push(p), now: () => now.t });
  return { t, rows };
}
const refusal = (r: Partial<Refusal> & Pick<Refusal, 'device' | 'action'>): Refusal => ({ topic: '', at: 0, ...r });

describe('broker refusals as problem rows', () => {
  it('one row per refusal, naming the cause and what to do', () => {
    const { t, rows } = trouble({ t: 0 });
    t.refused(refusal({ device: 'pi-a', action: 'connect', cause: 'password' }));
    t.refused(refusal({ device: 'pi-x', action: 'connect', cause: 'password' }));
    t.refused(refusal({ device: 'pi-b', action: 'connect', cause: 'client-id', reason: 'client id "console-farm" is not the login' }));
    t.refused(refusal({ device: 'pi-c', action: 'connect', cause: 'address-blocked', reason: 'too many failed logins from 10.0.0.9' }));
    t.refused(refusal({ device: 'pi-a', action: 'publish', topic: 'edgetune/farm/device/pi-b/state' }));
    t.refused(refusal({ device: '(not logged in yet, or any)', action: 'packet', reason: 'a packet of 209715200 bytes from 10.0.0.9' }));
    expect(rows.map((r) => [r.device, r.code])).toEqual([
      ['pi-a', 'DEVICE_LOGIN_REFUSED'],
      ['pi-x', 'DEVICE_LOGIN_REFUSED'],
      ['pi-b', 'DEVICE_LOGIN_REFUSED'],
      ['pi-c', 'DEVICE_LOGIN_REFUSED'],
      ['pi-a', 'DEVICE_REFUSED'],
      ['(not logged in yet, or any)', 'BROKER_REFUSED_PACKET'],
    ]);
    expect(rows[0]!.message).toMatch(/wrong password for "pi-a".*add-device pi-a again/);
    expect(rows[1]!.message).toMatch(/no login was issued for "pi-x"/);
    expect(rows[2]!.message).toMatch(/client id "console-farm" is not the login/);
    expect(rows[3]!.message).toMatch(/too many failed logins from 10\.0\.0\.9: refused unchecked/);
    expect(rows[4]!.message).toMatch(/login "pi-a" published as device "pi-b"/);
    expect(rows[5]!.message).toMatch(/209715200 bytes/);
  });

  it('a device looping through refusals gets one row a minute, and a long name is cut to 64 characters', () => {
    const now = { t: 0 };
    const { t, rows } = trouble(now);
    const name = 'x'.repeat(300);
    for (let i = 0; i < 500; i++, now.t += 100) t.refused(refusal({ device: name, action: 'connect', cause: 'password' }));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.device).toBe('x'.repeat(64));
    now.t += 60_000;
    t.refused(refusal({ device: name, action: 'connect', cause: 'password' }));
    expect(rows).toHaveLength(2);
  });
});
