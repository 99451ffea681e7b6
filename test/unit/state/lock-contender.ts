/**
 * One contender for the state lock in state-lock.test.ts, a real process: for each `go DIR AT_MS`
 * line on stdin it waits until AT_MS (so all contenders start together), tries the lock on DIR and
 * answers `DIR won` or `DIR lost CODE`. It holds what it won until stdin closes, so a lock it won is
 * never stale while the others try.
 */
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { StateLock } from '../../../src/state/state-lock.js';

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [verb, dir, at] = line.split(' ');
  if (verb !== 'go' || dir === undefined || at === undefined) return;
  const startAtMs = Number(at);
  while (performance.timeOrigin + performance.now() < startAtMs) {
    // Spin rather than sleep: a timer would add a millisecond of jitter, much wider than the race.
  }
  new StateLock(dir).acquire().then(
    () => process.stdout.write(`${dir} won\n`),
    (e: unknown) => process.stdout.write(`${dir} lost ${(e as { code?: string }).code ?? 'unknown'}\n`),
  );
});
lines.on('close', () => process.exit(0));
