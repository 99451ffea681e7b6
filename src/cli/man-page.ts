import { DESCRIPTION_LINES } from './cli.js';
import { EXIT, GLOBAL_OPTIONS, type Command, type OptionSpecs } from './command.js';
import { COMMANDS } from './commands.js';
import { EXIT_REFUSED } from './drain.js';
import { EXIT_NOT_RUNNING } from './status.js';

/**
 * consolidator(8), rendered from the same command table as `--help`, so the page cannot drift from
 * what the CLI accepts. Plain man(7) macros: groff, mandoc and lintian's man checks read them.
 */
export function renderManPage(opts: { readonly version: string; readonly date: string }): string {
  const out: string[] = [];
  out.push(`.TH CONSOLIDATOR 8 "${opts.date}" "consolidator ${escapeText(opts.version)}" "System Administration"`);
  out.push('.SH NAME', 'consolidator \\- energy-saving VM consolidation daemon for KVM/libvirt hosts');
  out.push('.SH SYNOPSIS');
  for (const command of COMMANDS) out.push('.nf', `.B ${escapeText(command.usage)}`, '.fi');
  out.push('.SH DESCRIPTION', paragraph(DESCRIPTION_LINES.join(' ')));
  out.push(
    paragraph(
      'The daemon observes every host and VM over SSH, plans with a pure bin-packing planner, checks every plan against its ' +
        'safety invariants, live-migrates VMs with libvirt and powers emptied hosts off and on through their BMC. ' +
        'Operators send commands to the running daemon through its control socket; only members of the group ' +
        'consolidator (and root) may open it.',
    ),
  );
  out.push('.SH COMMANDS');
  for (const command of COMMANDS) out.push(...commandSection(command));
  out.push('.SH GLOBAL OPTIONS', ...optionList(GLOBAL_OPTIONS));
  out.push('.TP', '.B \\-V, \\-\\-version', 'print the version');
  out.push('.SH EXIT STATUS', ...exitStatus());
  out.push('.SH FILES', ...files());
  out.push('.SH ENVIRONMENT', '.TP', '.B CONSOLIDATOR_SOCKET', paragraph('The control socket the operator commands use when --socket is not given.'));
  out.push('.SH SEE ALSO', 'systemctl(1), journalctl(1), virsh(1), ipmitool(1), systemd.unit(5)');
  return `${out.join('\n')}\n`;
}

function commandSection(command: Command): string[] {
  const lines = ['.SS ' + escapeText(command.name), paragraph(command.summary), '.PP', '.nf', escapeText(command.usage), '.fi'];
  for (const block of command.description.split(/\n\s*\n/)) lines.push('.PP', paragraph(block.replace(/\s*\n\s*/g, ' ')));
  if (Object.keys(command.options).length > 0) lines.push('.PP', 'Options:', '.RS', ...optionList(command.options), '.RE');
  if (command.examples.length > 0) {
    lines.push('.PP', 'Examples:', '.RS');
    for (const [example, what] of command.examples) lines.push('.TP', '.B ' + escapeText(example), paragraph(what));
    lines.push('.RE');
  }
  return lines;
}

function optionList(specs: OptionSpecs): string[] {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}`;
    const value = spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : '';
    lines.push('.TP', `.B ${escapeText(flag)}${value ? `\\fI${escapeText(value)}\\fR` : ''}`, paragraph(spec.help));
  }
  return lines;
}

function exitStatus(): string[] {
  const codes: readonly (readonly [number, string])[] = [
    [EXIT.OK, 'success'],
    [EXIT.FAILURE, 'failure (the message on standard error says what and where); check: a check failed (each is named with its fix)'],
    [EXIT_REFUSED, 'drain or undrain refused by the daemon (the reason is printed)'],
    [EXIT_NOT_RUNNING, 'no daemon answers on the control socket (status)'],
    [EXIT.USAGE, 'wrong usage: an unknown command or option'],
    [EXIT.DATA, 'simulate: the workload data cannot be read'],
    [EXIT.NOPERM, 'permission denied on the control socket: not a member of group consolidator'],
    [EXIT.CONFIG, 'the policy is invalid; systemd does not restart the service for it'],
  ];
  return codes.flatMap(([code, what]) => ['.TP', `.B ${code}`, paragraph(what)]);
}

function files(): string[] {
  const entries: readonly (readonly [string, string])[] = [
    ['/etc/consolidator/consolidator.yaml', 'the policy (a conffile; dry-run until an operator changes mode)'],
    ['/etc/consolidator/credentials/', 'the SSH key and BMC password, root only, loaded by systemd as credentials'],
    ['/var/lib/consolidator/', 'the state: hosts powered off by consolidator, maintenance, history'],
    ['/run/consolidator/control.sock', 'the operator socket, group consolidator, mode 0660'],
    ['/usr/share/consolidator/consolidator.schema.json', "the policy's JSON Schema"],
    ['/usr/share/consolidator/demo/', 'the demo: a simulated datacenter replaying PlanetLab traces'],
  ];
  return entries.flatMap(([path, what]) => ['.TP', `.I ${escapeText(path)}`, paragraph(what)]);
}

/** A text line safe for roff: no request at its start, backslashes and hyphens written out. */
function paragraph(text: string): string {
  const escaped = escapeText(text.trim());
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

function escapeText(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
}
