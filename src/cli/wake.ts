import { EXIT, requirePositional, type Command } from './command.js';
import { operatorContext, POLICY_OPTION, SOCKET_OPTION, withStandaloneDaemon } from './operator-context.js';

const WAKE_TIMEOUT_MS = 3600 * 1000;

export const wakeCommand: Command = {
  name: 'wake',
  summary: 'power a host on through its BMC and wait until its hypervisor answers',
  usage: 'consolidator wake HOST [--policy FILE]',
  description:
    'Powers HOST on (any host of the policy, whoever powered it off) and waits until its hypervisor\n' +
    "answers, up to power.bootTimeoutSeconds. Clears the host's needs-attention mark once it answers.\n" +
    'A host in maintenance stays in maintenance. Exit 0 when it answers, 1 when it does not.',
  options: { ...POLICY_OPTION, ...SOCKET_OPTION },
  examples: [['consolidator wake kvm07', 'bring kvm07 back after its maintenance']],
  async run(args, io) {
    const host = requirePositional(this, args, 0, 'HOST');
    const ctx = await operatorContext(args, io);
    const upTo = ctx.daemon ? 'power.bootTimeoutSeconds' : `${ctx.loaded.policy.power.bootTimeoutSeconds} s`;
    io.stderr.write(`powering ${host} on and waiting for its hypervisor (up to ${upTo})...\n`);
    const result = ctx.daemon
      ? ((await ctx.daemon.post('/operator/wake', { host }, WAKE_TIMEOUT_MS)).body as { ok: boolean; message?: string; error?: string })
      : await withStandaloneDaemon(ctx, (daemon) => daemon.wake(host));
    const message = 'message' in result && result.message ? result.message : ('error' in result ? String(result.error) : 'failed');
    (result.ok ? io.stdout : io.stderr).write(`${message}\n`);
    return result.ok ? EXIT.OK : EXIT.FAILURE;
  },
};
