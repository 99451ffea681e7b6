/**
 * One observation pass over 8 lab hosts (real sshd + libvirtd + QEMU, 2 guests each): wall time and
 * remote commands per host. The first pass includes the SSH handshakes; later passes reuse the pooled
 * connections, as the daemon does from one cycle to the next.
 *   npx tsx bench/lab-observe.ts
 */
import type { CommandRunner } from '../src/drivers/exec/command-runner.js';
import { VirshHypervisor } from '../src/drivers/hypervisor/virsh-hypervisor.js';
import { Lab } from '../test/lab/lab.js';
import { labDrivers, never } from '../test/lab/lab-drivers.js';

const HOSTS = 8;
const PASSES = 6;

process.once('SIGINT', () => process.exit(130));
const lab = await Lab.start({ hosts: HOSTS });
try {
  for (const h of lab.hosts) {
    await lab.startGuest(h.n, { name: `run${h.n}`, memoryMiB: 1024 });
    await lab.startGuest(h.n, { name: `idle${h.n}`, memoryMiB: 2048, paused: true });
  }
  const { runner, logger } = labDrivers(lab);
  const commands = new Map<string, number>();
  const counting: CommandRunner = {
    run: (host, argv, options) => {
      commands.set(host, (commands.get(host) ?? 0) + 1);
      return runner.run(host, argv, options);
    },
    close: () => runner.close(),
  };
  const hypervisor = new VirshHypervisor({ runner: counting, logger });
  const times: number[] = [];
  for (let pass = 1; pass <= PASSES; pass++) {
    commands.clear();
    const started = performance.now();
    const observations = await Promise.all(lab.hosts.map((h) => hypervisor.inspect(h.name, never())));
    const ms = performance.now() - started;
    times.push(ms);
    const perHost = [...new Set(commands.values())].join(',');
    const domains = observations.reduce((n, o) => n + o.domains.length, 0);
    console.log(`pass ${pass}${pass === 1 ? ' (cold: SSH handshakes)' : ''}: ${ms.toFixed(0)} ms for ${HOSTS} hosts, ${domains} domains, commands per host: ${perHost}`);
  }
  const warm = times.slice(1).sort((a, b) => a - b);
  console.log(`warm passes: min ${warm[0]?.toFixed(0)} ms, median ${warm[Math.floor(warm.length / 2)]?.toFixed(0)} ms, max ${warm.at(-1)?.toFixed(0)} ms; SSH connections opened: ${logger.count('ssh connected')}`);
  await runner.close();
} finally {
  await lab.down();
}
