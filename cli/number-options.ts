// Number-valued options, checked as commander parses them: a value that is not a number, or is out of
// range, is a usage error naming the option and the value ("--port must be ..., got "abc"").

import { UsageError } from './output.js';

type Parse = (value: string) => number;

/** A decimal number as written: Number() would also take "", " ", "0x10" and "1e3". */
const DECIMAL = /^-?(\d+\.?\d*|\.\d+)$/;
const decimal = (value: string): number => (DECIMAL.test(value.trim()) ? Number(value) : Number.NaN);

/** A whole number from `min` to `max`; `what` says what it counts in the error ("a port", "a positive whole number"). */
export function wholeNumber(name: string, min: number, max: number, what = `a whole number from ${min} to ${max}`): Parse {
  return (value) => {
    const n = decimal(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be ${what}, got "${value}"`);
    return n;
  };
}

/** 1, 2, 3...: workers, threads, devices at once. */
export function positiveInt(name: string): Parse {
  return wholeNumber(name, 1, Number.MAX_SAFE_INTEGER, 'a positive whole number');
}

/** A TCP port; `anyFree` allows 0 (the system picks a free port). */
export function port(name: string, anyFree = false): Parse {
  return wholeNumber(name, anyFree ? 0 : 1, 65535, `a port from ${anyFree ? '0 (any free port)' : '1'} to 65535`);
}

/** A duration above 0, in whatever unit the option names. */
export function positiveNumber(name: string, unit: string): Parse {
  return (value) => {
    const n = decimal(value);
    if (!(Number.isFinite(n) && n > 0)) throw new UsageError(`${name} must be a number of ${unit} above 0, got "${value}"`);
    return n;
  };
}

/** 0 or more: a strength, a count that may be none. */
export function nonNegativeNumber(name: string): Parse {
  return (value) => {
    const n = decimal(value);
    if (!(Number.isFinite(n) && n >= 0)) throw new UsageError(`${name} must be a number >= 0, got "${value}"`);
    return n;
  };
}
