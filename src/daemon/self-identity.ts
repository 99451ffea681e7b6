import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where Linux shows the SMBIOS system UUID (root-only on most systems). */
const DMI_PRODUCT_UUID = '/sys/class/dmi/id/product_uuid';
/** The copy the unit's privileged ExecStartPre leaves (the daemon is not root): see systemd/consolidator.service. */
const RUNTIME_COPY = 'product_uuid';
/** Where the unit writes it: the directory of the default control socket. */
const UNIT_RUNTIME_DIRECTORY = '/run/consolidator';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type SelfIdentity = { readonly uuid: string; readonly source: string } | { readonly uuid: undefined; readonly problem: string };

/**
 * The system UUID of the machine the daemon runs on: when that machine is a VM on a managed host, the
 * domain with this UUID is the controller itself, and its host must never be powered off. sysfs
 * shows it to root only, so the unit copies it into `runtimeDirectory` (where the control socket is)
 * before the daemon starts; read from there first, then from sysfs.
 */
export async function readOwnSystemUuid(runtimeDirectory: string): Promise<SelfIdentity> {
  const candidates = [...new Set([join(runtimeDirectory, RUNTIME_COPY), join(UNIT_RUNTIME_DIRECTORY, RUNTIME_COPY)]), DMI_PRODUCT_UUID];
  const problems: string[] = [];
  for (const file of candidates) {
    try {
      const text = (await readFile(file, 'utf8')).trim().toLowerCase();
      if (UUID.test(text)) return { uuid: text, source: file };
      problems.push(`${file}: not a UUID`);
    } catch (e) {
      problems.push(`${file}: ${(e as { code?: string }).code ?? 'unreadable'}`);
    }
  }
  return { uuid: undefined, problem: problems.join('; ') };
}
