// Tests that tell one story, each continuing from the state the one before left. Declared with `step`
// instead of `it`, a test run alone (`-t NAME`) first runs the steps before it that were filtered out,
// so every test passes alone without copying its predecessors' set-up.
import { it } from 'vitest';

export function story(): (name: string, body: () => void | Promise<void>, timeoutMs?: number) => void {
  const bodies: (() => void | Promise<void>)[] = [];
  const ran = new Set<number>();
  return (name, body, timeoutMs = 60_000) => {
    const index = bodies.push(body) - 1;
    it(
      name,
      async () => {
        for (let i = 0; i <= index; i++) {
          if (ran.has(i)) continue;
          ran.add(i); // a step that fails is not run again by the next one
          await bodies[i]!();
        }
      },
      // Alone, a step also runs the ones before it.
      timeoutMs * (index + 1),
    );
  };
}
