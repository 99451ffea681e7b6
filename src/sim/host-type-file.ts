import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { locate } from '../config/locate.js';
import { ConsolidatorError, errorMessage } from '../errors.js';
import type { HostType } from './trace-setup.js';

/**
 * A host type declared in a YAML file, for simulations of any workload on hardware of one model:
 *
 *   name: Dell PowerEdge R720
 *   cores: 32                 # schedulable CPUs (hardware threads a vCPU runs on)
 *   memoryMiB: 262144
 *   powerCurveWatts: [51, 75, 84.5, 95, 110, 120, 137, 159, 187, 217, 231]   # 0 %, 10 %, ..., 100 % CPU
 *   bootSeconds: 180
 *   bootWatts: 231            # optional; defaults to the power at 100 %
 *   offWatts: 0               # optional; BMC standby draw while off
 *   source: SPECpower_ssj2008 result ...   # optional, free text, shown in reports
 */
const HostTypeSchema = z.strictObject({
  name: z.string().min(1),
  cores: z.number().positive({ message: 'must be greater than 0' }),
  memoryMiB: z.number().positive({ message: 'must be greater than 0' }),
  powerCurveWatts: z
    .array(z.number().nonnegative({ message: 'must not be negative' }))
    .length(11, { message: 'must list 11 values: watts at 0 %, 10 %, ..., 100 % CPU' }),
  bootSeconds: z.number().nonnegative({ message: 'must not be negative' }),
  bootWatts: z.number().nonnegative({ message: 'must not be negative' }).optional(),
  offWatts: z.number().nonnegative({ message: 'must not be negative' }).optional(),
  source: z.string().optional(),
});

export interface DeclaredHostType extends HostType {
  readonly source?: string;
}

/** Reads and checks a host type file; a problem is a POLICY_INVALID error naming file:line:col and the key. */
export async function loadHostTypeFile(file: string): Promise<DeclaredHostType> {
  const text = await readFile(file, 'utf8').catch((e: unknown) => {
    throw new ConsolidatorError('POLICY_INVALID', `${file}:1:1: cannot read the host type file: ${errorMessage(e)}`, { details: { file }, cause: e });
  });
  return parseHostType(text, file);
}

export function parseHostType(text: string, file: string): DeclaredHostType {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const firstError = doc.errors[0];
  if (firstError !== undefined) {
    const pos = firstError.linePos?.[0] ?? lineCounter.linePos(firstError.pos[0]);
    const message = (firstError.message.split('\n')[0] ?? firstError.message).replace(/ at line \d+, column \d+:?$/, '');
    throw new ConsolidatorError('POLICY_INVALID', `${file}:${pos.line}:${pos.col}: ${message}`, { details: { file, line: pos.line } });
  }
  const parsed = HostTypeSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
      const where = issue.code === 'unrecognized_keys' ? [...path, issue.keys[0] ?? ''] : path;
      const pos = locate(doc, lineCounter, where, issue.code === 'unrecognized_keys');
      const key = where.length > 0 ? where.join('.') : '(root)';
      const message = issue.code === 'unrecognized_keys' ? `unknown key (known: ${Object.keys(HostTypeSchema.shape).join(', ')})` : issue.message;
      return `${file}:${pos.line}:${pos.col} ${key}: ${message}`;
    });
    throw new ConsolidatorError('POLICY_INVALID', `${file} is not a valid host type:\n${problems.join('\n')}`, { details: { file } });
  }
  const t = parsed.data;
  return {
    name: t.name,
    cores: t.cores,
    memoryMiB: t.memoryMiB,
    powerModel: { kind: 'curve', wattsAtTenths: t.powerCurveWatts },
    bootSeconds: t.bootSeconds,
    ...(t.bootWatts === undefined ? {} : { bootWatts: t.bootWatts }),
    ...(t.offWatts === undefined ? {} : { offWatts: t.offWatts }),
    ...(t.source === undefined ? {} : { source: t.source }),
  };
}
