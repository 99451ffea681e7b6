/**
 * The integration-test lab, by hand:
 *   npx tsx scripts/lab.ts up 3     start 3 hosts (and a couple of guests with --guests), print how
 *                                   to reach them, stay in the foreground; Ctrl-C tears it down
 *   npx tsx scripts/lab.ts down     tear down labs whose owner process is gone
 */
import { Lab, sweepStaleLabs } from '../test/lab/lab.js';

async function main(): Promise<void> {
  const [command, count, ...flags] = process.argv.slice(2);
  if (command === 'down') {
    await sweepStaleLabs();
    console.log('stale labs removed');
    return;
  }
  if (command !== 'up') {
    console.error('usage: lab.ts up N [--guests] | down');
    process.exitCode = 2;
    return;
  }
  // process.exit() runs the lab's exit hook, which tears down every lab this process started.
  const stop = () => process.exit(0);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const started = Date.now();
  const lab = await Lab.start({ hosts: Number(count ?? 3) });
  if (flags.includes('--guests')) {
    for (const h of lab.hosts) await lab.startGuest(h.n, { name: `vm${h.n}`, memoryMiB: 256 });
  }
  console.log(`lab ${lab.id} up in ${Date.now() - started} ms (folder ${lab.dir})`);
  for (const h of lab.hosts) {
    console.log(`  ${h.name}: ssh -i ${lab.keyFile} -o UserKnownHostsFile=${lab.knownHostsFile} root@${h.address}    nsenter -t ${h.initPid} -m -u -n virsh list`);
  }
  console.log('Ctrl-C (or SIGTERM to this process) tears it down');
  await new Promise(() => undefined);
}

await main();
