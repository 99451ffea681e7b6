/**
 * Wall time of a live migration of a 1 GiB idle guest between two lab hosts, from the driver call
 * to verified arrival (VM running on the destination, gone from the source), no bandwidth cap.
 *   npx tsx bench/lab-migrate.ts
 */
import { Lab } from '../test/lab/lab.js';
import { labDrivers, MIGRATE_DEFAULTS, never } from '../test/lab/lab-drivers.js';

const RUNS = 5;

process.once('SIGINT', () => process.exit(130));
const lab = await Lab.start({ hosts: 2 });
try {
  await lab.startGuest(1, { name: 'idle1g', memoryMiB: 1024 });
  const { runner, hypervisor } = labDrivers(lab);
  // One observation first, so the SSH connections are pooled as in a running daemon.
  await Promise.all(lab.hosts.map((h) => hypervisor.inspect(h.name, never())));
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const [from, to] = run % 2 === 0 ? [lab.host(1).name, lab.host(2).name] : [lab.host(2).name, lab.host(1).name];
    const started = performance.now();
    const result = await hypervisor.migrate('idle1g', from, to, MIGRATE_DEFAULTS, never());
    const ms = performance.now() - started;
    times.push(ms);
    console.log(`run ${run + 1}: ${from} -> ${to}: ${ms.toFixed(0)} ms from call to verified arrival (${result.state})`);
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`1 GiB idle guest: min ${sorted[0]?.toFixed(0)} ms, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms`);
  await runner.close();
} finally {
  await lab.down();
}
