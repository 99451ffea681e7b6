import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readOwnSystemUuid } from '../../../src/daemon/self-identity.js';

describe('readOwnSystemUuid', () => {
  it('reads the copy beside the control socket, lower-cased', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'consolidator-self-'));
    writeFileSync(join(dir, 'product_uuid'), '4C4C4544-0042-3510-8048-B4C04F4E3232\n');
    expect(await readOwnSystemUuid(dir)).toEqual({ uuid: '4c4c4544-0042-3510-8048-b4c04f4e3232', source: join(dir, 'product_uuid') });
  });

  it('never takes something that is not a UUID, and says why it found none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'consolidator-self-'));
    writeFileSync(join(dir, 'product_uuid'), 'Not Settable\n');
    const result = await readOwnSystemUuid(dir);
    // sysfs may hold the real one on this machine; the copy's content is never taken.
    if (result.uuid === undefined) expect(result.problem).toContain(`${join(dir, 'product_uuid')}: not a UUID`);
    else expect(result.source).toBe('/sys/class/dmi/id/product_uuid');
  });
});
