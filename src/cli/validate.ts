import { formatIssue, loadPolicyFile, type LoadedPolicy } from '../config/load.js';
import { EXIT, requirePositional, type Command } from './command.js';

export const validateCommand: Command = {
  name: 'validate',
  summary: 'check a policy file and report every problem with its line and column',
  usage: 'consolidator validate FILE',
  description:
    'Loads FILE as the daemon would: YAML syntax, the schema, then relations between values and the\n' +
    'files that hold secrets. Prints a one-line summary and exits 0 when the policy is valid; prints\n' +
    'every problem as FILE:LINE:COL path: message and exits 78 when it is not.',
  options: {},
  examples: [
    ['consolidator validate /etc/consolidator/consolidator.yaml', 'check the installed policy before a reload'],
    ['consolidator validate config/consolidator.example.yaml', 'check the shipped example'],
  ],
  async run(args, io) {
    const file = requirePositional(this, args, 0, 'FILE (the policy to check)');
    const result = await loadPolicyFile(file);
    if (!result.ok) {
      for (const issue of result.issues) io.stderr.write(`${formatIssue(issue)}\n`);
      io.stderr.write(`${file}: ${result.issues.length} problem${result.issues.length === 1 ? '' : 's'}, policy not valid\n`);
      return EXIT.CONFIG;
    }
    for (const warning of result.value.warnings) io.stderr.write(`warning: ${formatIssue(warning)}\n`);
    io.stdout.write(`${summarizePolicy(result.value)}\n`);
    return EXIT.OK;
  },
};

export function summarizePolicy(loaded: LoadedPolicy): string {
  const { policy, hosts } = loaded;
  const excluded = hosts.filter((h) => h.exclude).length;
  const hostText = `${hosts.length} host${hosts.length === 1 ? '' : 's'}${excluded > 0 ? ` (${excluded} excluded)` : ''}`;
  return (
    `${loaded.file}: valid policy, ${hostText}, mode ${policy.mode}, schedule "${policy.schedule}", ` +
    `drivers ${policy.hypervisor.driver}/${policy.power.driver}${powerChainsText(loaded)}`
  );
}

/** The hosts' power chains, when any is more than power.driver alone: ", power chain [ipmitool, wol] (4 hosts), [ipmitool] (1 host)". */
function powerChainsText(loaded: LoadedPolicy): string {
  const hostsByChain = new Map<string, number>();
  for (const h of loaded.hosts) {
    const chain = `[${h.powerChain.join(', ')}]`;
    hostsByChain.set(chain, (hostsByChain.get(chain) ?? 0) + 1);
  }
  if (loaded.hosts.every((h) => h.powerChain.length <= 1 && (h.powerChain[0] ?? loaded.policy.power.driver) === loaded.policy.power.driver)) return '';
  const parts = [...hostsByChain].map(([chain, n]) => `${chain} (${n} host${n === 1 ? '' : 's'})`);
  return `, power chain ${parts.join(', ')}`;
}
