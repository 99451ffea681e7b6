import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { operatorHint } from '../../../src/cli/run.js';
import { operatorContext, socketCandidates } from '../../../src/cli/operator-context.js';
import { DEFAULTS, DEMO_CONTROL_SOCKET } from '../../../src/config/defaults.js';
import { loadPolicyFile } from '../../../src/config/load.js';
import { captureIo } from '../../helpers/capture.js';
import { thrown } from '../../helpers/thrown.js';

const args = (values: Record<string, string | boolean> = {}) => ({ values, positionals: [] });

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('where the CLI looks for the running daemon', () => {
  it('takes --socket, then $CONSOLIDATOR_SOCKET, then --policy, and looks nowhere else when one is named', () => {
    const env = { CONSOLIDATOR_SOCKET: '/from/env.sock' };
    expect(socketCandidates(args({ socket: '/opt.sock' }), env, { policySocket: '/policy.sock' })).toEqual(['/opt.sock']);
    expect(socketCandidates(args(), env, { policySocket: '/policy.sock' })).toEqual(['/from/env.sock']);
    expect(socketCandidates(args(), {}, { policySocket: '/policy.sock', installedSocket: '/installed.sock' })).toEqual(['/policy.sock']);
  });

  it("with nothing named: the installed policy's socket, the default socket, then the demo's", () => {
    expect(socketCandidates(args(), { CONSOLIDATOR_SOCKET: '' }, {})).toEqual([DEFAULTS.control.socket, DEMO_CONTROL_SOCKET]);
    expect(socketCandidates(args(), {}, { installedSocket: '/installed.sock' })).toEqual(['/installed.sock', DEFAULTS.control.socket, DEMO_CONTROL_SOCKET]);
  });

  it("the demo policy's control.socket is the well-known demo socket", async () => {
    const loaded = await loadPolicyFile('config/demo.yaml');
    expect(loaded.ok && loaded.value.policy.control.socket).toBe(DEMO_CONTROL_SOCKET);
  });

  it('without a daemon and without a readable policy, says to pass --policy or start the daemon (exit 78 code)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'consolidator-ctx-'));
    dirs.push(dir);
    const socket = join(dir, 'none.sock');
    const e = await thrown(operatorContext(args({ socket }), captureIo(), {}));
    expect(e).toMatchObject({ code: 'POLICY_UNREADABLE' });
    expect(e.message).toContain(`no daemon answers on ${socket}`);
    expect(e.message).toContain('pass --policy FILE');
    expect(e.message).toContain('start the daemon');
  });

  it('the demo says how to reach it, with the variable only when the CLI would not find the socket by itself', () => {
    expect(operatorHint(DEMO_CONTROL_SOCKET)).toBe(`operator commands: npx consolidator status (socket ${DEMO_CONTROL_SOCKET})`);
    expect(operatorHint('/tmp/x/control.sock')).toBe('operator commands: CONSOLIDATOR_SOCKET=/tmp/x/control.sock npx consolidator status (socket /tmp/x/control.sock)');
    expect(operatorHint('/run/consolidator/control.sock', true)).toBe('operator commands: consolidator status (socket /run/consolidator/control.sock)');
  });
});
