// Failed broker logins cost the one who fails them, not the fleet. Every refusal is answered after the
// same delay whether or not the login exists (no enumerating device ids by timing), and the delay
// doubles with each recent failure of that login or from that address, up to a cap. A login that
// succeeds is never delayed, so an attacker failing a device's login cannot lock the device out; an
// address with many recent failures is refused before its password is even checked.

export interface LoginGuardOptions {
  /** Delay of every refusal (default 200 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Failures from one address within the window after which it is refused unchecked (default 50). */
  maxAddressFailures?: number;
  windowMs?: number;
}

export class LoginGuard {
  private readonly failures = new Map<string, { count: number; last: number }>();
  private readonly base: number;
  private readonly max: number;
  private readonly maxAddressFailures: number;
  private readonly windowMs: number;

  constructor(options: LoginGuardOptions = {}) {
    this.base = options.baseDelayMs ?? 200;
    this.max = options.maxDelayMs ?? 30_000;
    this.maxAddressFailures = options.maxAddressFailures ?? 50;
    this.windowMs = options.windowMs ?? 600_000;
  }

  /** True when this address failed so often lately that its logins are refused without a check. */
  blocked(address: string | undefined, now = Date.now()): boolean {
    return this.recent(`address ${address ?? '?'}`, now) >= this.maxAddressFailures;
  }

  /** Records a failed login; returns how long to wait before answering it. */
  failed(login: string | undefined, address: string | undefined, now = Date.now()): number {
    const counts = [`login ${login ?? ''}`, `address ${address ?? '?'}`].map((key) => {
      const count = this.recent(key, now) + 1;
      this.failures.set(key, { count, last: now });
      return count;
    });
    if (this.failures.size > 100_000) this.forgetOld(now);
    return Math.min(this.max, this.base * 2 ** Math.min(16, Math.max(...counts) - 1));
  }

  succeeded(login: string): void {
    this.failures.delete(`login ${login}`);
  }

  private recent(key: string, now: number): number {
    const entry = this.failures.get(key);
    return entry && now - entry.last < this.windowMs ? entry.count : 0;
  }

  private forgetOld(now: number): void {
    for (const [key, entry] of this.failures) if (now - entry.last >= this.windowMs) this.failures.delete(key);
  }
}
