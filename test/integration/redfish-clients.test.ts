/**
 * The lab's Redfish service (test/lab/redfish-bmc.ts) read and driven by Debian's own Redfish clients,
 * so that it is a Redfish service and not a mirror of our driver: DMTF's redfishtool (python3
 * requests; session login, GET, AllowableValues checked before a reset, logout) and OpenStack's
 * python3-sushy (Ironic's library: session-or-basic auth, the CA verified, the system, its UUID and
 * allowed reset values, a reset). Both from scripts/install-test-deps.sh.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedfishBmc, startRedfishBmc } from '../lab/redfish-bmc.js';
import { makeTestCertificates, type TestCertificates } from '../lab/test-certificates.js';

const run = promisify(execFile);
const UUID = '5c0f7e1a-91b2-4d3e-8f00-0000000000aa';
/** Debian's python3 (sushy is a Debian package; a python3 earlier in PATH may not see it). */
const PYTHON = '/usr/bin/python3';

let dir = '';
let certs: TestCertificates;
let bmc: RedfishBmc | undefined;
let credentials = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'redfish-clients-'));
  certs = await makeTestCertificates(dir, 'clients');
  bmc = await startRedfishBmc({ name: 'clients', cert: certs.cert, key: certs.key, systemUuid: UUID, resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'ForceOn', 'PowerCycle'] });
  // redfishtool reads the credentials from a file (-c), not from argv.
  credentials = join(dir, 'redfishtool.json');
  await writeFile(credentials, JSON.stringify({ user: bmc.user, password: bmc.password }), { mode: 0o600 });
});

afterAll(async () => {
  await bmc?.stop();
  await rm(dir, { recursive: true, force: true });
});

function the(): RedfishBmc {
  if (bmc === undefined) throw new Error('no BMC');
  return bmc;
}

async function redfishtool(args: readonly string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const b = the();
  try {
    const { stdout, stderr } = await run('redfishtool', ['-r', `${b.address}:${b.port}`, '-c', credentials, '-S', 'Always', '-A', 'Session', '-T', '10', ...args], { timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number };
    return { stdout: x.stdout ?? '', stderr: x.stderr ?? '', code: x.code ?? -1 };
  }
}

const SUSHY = `
import json, os, sushy
password = open(os.environ['BMC_PASSWORD_FILE']).read().splitlines()[0]
root = sushy.Sushy(os.environ['BMC_URL'], username=os.environ['BMC_USER'], password=password, verify=os.environ['BMC_CA'])
members = sorted(root.get_system_collection().members_identities)
system = root.get_system(members[0])
seen = {'members': members, 'uuid': system.uuid, 'power': str(system.power_state),
        'allowed': sorted(str(v) for v in system.get_allowed_reset_system_values())}
action = os.environ.get('RESET')
if action:
    system.reset_system(getattr(sushy, action))
    system.refresh()
    seen['after'] = str(system.power_state)
print(json.dumps(seen))
`;

async function sushy(reset?: string): Promise<Record<string, unknown>> {
  const b = the();
  const { stdout } = await run(PYTHON, ['-c', SUSHY], {
    timeout: 60_000,
    env: { PATH: process.env['PATH'] ?? '', BMC_URL: b.url, BMC_USER: b.user, BMC_PASSWORD_FILE: b.passwordFile, BMC_CA: certs.caFile, ...(reset !== undefined ? { RESET: reset } : {}) },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

describe('the lab Redfish service, through Debian’s redfishtool and python3-sushy', () => {
  it('redfishtool reads the one system (System.Embedded.1) and its PowerState, in a session it logs out of', async () => {
    const before = the().requests().length;
    const list = await redfishtool(['Systems', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('/redfish/v1/Systems/System.Embedded.1');
    const state = await redfishtool(['-P', 'PowerState', 'Systems', '-1', 'get']);
    expect(state.code, state.stderr).toBe(0);
    expect(JSON.parse(state.stdout)).toEqual({ PowerState: 'On' });
    const seen = the().requests().slice(before);
    expect(seen.filter((r) => r.method === 'POST' && r.path.endsWith('/Sessions') && r.status === 201).length).toBeGreaterThanOrEqual(1);
    expect(seen.some((r) => r.auth === 'session' && r.path === '/redfish/v1/Systems/System.Embedded.1')).toBe(true);
    expect(seen.filter((r) => r.method === 'DELETE' && r.status === 204).length).toBeGreaterThanOrEqual(1);
    expect(the().sessions()).toEqual([]);
  });

  it('redfishtool resets the system with a ResetType it finds in AllowableValues, and refuses one that is not there', async () => {
    const off = await redfishtool(['Systems', '-1', 'reset', 'ForceOff']);
    expect(off.code, off.stderr).toBe(0);
    await the().hooksSettled();
    expect(the().power()).toBe('Off');
    const nmi = await redfishtool(['Systems', '-1', 'reset', 'Nmi']);
    expect(nmi.code).not.toBe(0);
    expect(nmi.stderr).toContain('not supported by the remote service (via @Redfish.AllowableValues)');
    expect(the().resets()).toEqual(['ForceOff']);
    const on = await redfishtool(['Systems', '-1', 'reset', 'On']);
    expect(on.code, on.stderr).toBe(0);
    await the().hooksSettled();
    expect(the().power()).toBe('On');
  });

  it('sushy verifies the certificate against the CA, reads the system, its UUID and allowed reset values, and resets it', async () => {
    const seen = await sushy();
    expect(seen).toMatchObject({ members: ['/redfish/v1/Systems/System.Embedded.1'], uuid: UUID, power: expect.stringMatching(/on/i) as unknown });
    expect((seen['allowed'] as string[]).length).toBe(5);
    const off = await sushy('RESET_FORCE_OFF');
    expect(String(off['after'])).toMatch(/off/i);
    expect(the().resets().at(-1)).toBe('ForceOff');
    const on = await sushy('RESET_ON');
    expect(String(on['after'])).toMatch(/on/i);
    expect(the().resets().at(-1)).toBe('On');
  });
});
