import { describe, expect, it } from 'vitest';
import { port, positiveInt, positiveNumber, wholeNumber } from '../../cli/number-options.js';
import { UsageError } from '../../cli/output.js';

describe('number options', () => {
  it('take decimal numbers in range', () => {
    expect(positiveInt('--workers')('4')).toBe(4);
    expect(port('--port')('65535')).toBe(65535);
    expect(port('--port', true)('0')).toBe(0);
    expect(positiveNumber('--timeout', 'seconds')('2.5')).toBe(2.5);
    expect(wholeNumber('--seed', 0, 10)('0')).toBe(0);
  });

  it('refuse what Number() would take but a person did not mean, naming the option and the value', () => {
    for (const value of ['abc', '', ' ', '0x10', '1e3', 'Infinity', '4abc'])
      expect(() => positiveInt('--concurrency')(value)).toThrow(`--concurrency must be a positive whole number, got "${value}"`);
    expect(() => port('--http-port')('0')).toThrow('--http-port must be a port from 1 to 65535, got "0"');
    expect(() => port('--port', true)('-1')).toThrow(UsageError);
    expect(() => positiveNumber('--health-timeout', 'seconds')('0')).toThrow(
      '--health-timeout must be a number of seconds above 0, got "0"',
    );
  });
});
