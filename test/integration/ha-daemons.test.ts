import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DaemonClient } from '../../src/cli/daemon-client.js';
import { createHttpEtcdClient, type HttpEtcdClient } from '../../src/ha/http-etcd-client.js';
import { DaemonProcess, type DaemonLogLine } from '../e2e/daemon-process.js';
import { Timeline } from '../e2e/timeline.js';
import { EtcdCluster } from '../helpers/etcd-cluster.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Two real daemons (`node dist/main.js run`), each on its own simulated datacenter (the simulation
 * is in-process, so their worlds are not shared: what is checked is who acts, and when), one
 * 3-member etcd cluster on loopback. Who acted is read from etcd: every fenced step is recorded under
 * PREFIX/step in the transaction that checked the leader key, and the key's history (never
 * compacted here) lists every step that was allowed to start.
 */

const TTL_SECONDS = 5;
/** The test cluster's election timeout: a raft leader cut off renews leases until it notices. */
const ETCD_ELECTION_TIMEOUT_MS = 1000;
const CYCLE_SECONDS = 1;

interface StepRecord {
  readonly controller: string;
  readonly op: string;
  readonly subject: string;
  readonly atMs: number;
  readonly revision: number;
}

interface Controller {
  readonly name: string;
  readonly daemon: DaemonProcess;
  readonly url: string;
  readonly socket: string;
}

const STEP_STARTS = new Set(['migration started', 'powering off', 'powering on']);
const isStepStart = (l: DaemonLogLine) => STEP_STARTS.has(l.message);

describe('HA: two daemons, one etcd cluster', () => {
  let etcd: EtcdCluster;
  let client: HttpEtcdClient;
  let dir: string;
  let timeline: Timeline;
  const running: Controller[] = [];
  let scenario = 0;

  beforeAll(async () => {
    etcd = await EtcdCluster.start();
    client = await createHttpEtcdClient({ endpoints: etcd.endpoints, requestTimeoutMs: 2000 });
    dir = await mkdtemp(join(tmpdir(), 'consolidator-ha-'));
  });
  afterEach(async (ctx) => {
    for (const c of running.splice(0)) {
      c.daemon.signal('SIGCONT');
      await c.daemon.stop();
    }
    for (let i = 0; i < 3; i++) etcd.startMember(i);
    await etcd.waitHealthy();
    timeline.printIfFailed(ctx);
  });
  afterAll(async () => {
    await client?.close();
    await etcd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(name: string, prefix: string): Promise<Controller> {
    const port = await freePort();
    const socket = join(dir, `${name}.sock`);
    const demo = await readFile('config/demo.yaml', 'utf8');
    const policy =
      demo
        .replace('listen: 127.0.0.1:9464', `listen: 127.0.0.1:${port}`)
        .replace('socket: /tmp/consolidator-demo.sock', `socket: ${socket}`)
        .replace('workload: demo-workload', `workload: ${resolve('config/demo-workload')}`)
        .replace('schedule: "*/2 * * * * *"', `schedule: "*/${CYCLE_SECONDS} * * * * *"`)
        .replace('format: pretty', 'format: json') +
      `\nha:\n  name: ${name}\n  endpoints: [${etcd.endpoints.join(', ')}]\n  keyPrefix: ${prefix}\n  leaseTtlSeconds: ${TTL_SECONDS}\n`;
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, policy.replace('stopAtEnd: true', 'stopAtEnd: false'));
    const daemon = await DaemonProcess.start(file, timeline, name);
    const c = { name, daemon, url: `http://127.0.0.1:${port}`, socket };
    running.push(c);
    return c;
  }

  /** Every step etcd accepted under PREFIX/step, oldest first, from the key's history. */
  async function steps(prefix: string): Promise<StepRecord[]> {
    const out: StepRecord[] = [];
    let revision: number | undefined;
    for (;;) {
      const { kvs } = await client.range(`${prefix}step`, revision === undefined ? {} : { revision });
      const kv = kvs[0];
      if (!kv) break;
      out.unshift({ ...(JSON.parse(kv.value) as Omit<StepRecord, 'revision'>), revision: kv.modRevision });
      if (kv.version === 1) break;
      revision = kv.modRevision - 1;
    }
    return out;
  }

  async function get(url: string): Promise<{ status: number; text: string }> {
    const res = await fetch(url);
    return { status: res.status, text: await res.text() };
  }
  const metric = async (c: Controller, name: string): Promise<number> => {
    const { text } = await get(`${c.url}/metrics`);
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : Number.NaN;
  };
  const status = async (c: Controller) => JSON.parse((await get(`${c.url}/status`)).text) as { ha: { role: string; leader: string | null; etcd: { ok: boolean } } };
  const leads = (c: Controller, timeoutMs: number, since = 0) => c.daemon.waitForLog((l) => l.message === 'leading: state loaded from etcd; reconciling from the hosts', timeoutMs, `${c.name} leading`, since);

  function newScenario(title: string): string {
    timeline = new Timeline(`ha-${++scenario}`);
    timeline.add('test', title);
    return `/ha-test-${scenario}/`;
  }

  it('one leader acts; the standby serves metrics, health and status and refuses operator commands naming the leader; SIGKILL the leader: the other takes over within TTL + a cycle and acts', async () => {
    const prefix = newScenario('failover');
    const a = await start('ctl-a', prefix);
    await leads(a, 20_000);
    const b = await start('ctl-b', prefix);
    await a.daemon.waitForLog(isStepStart, 60_000, 'a first step');

    expect(await metric(a, 'consolidator_leader')).toBe(1);
    expect(await metric(b, 'consolidator_leader')).toBe(0);
    const health = await get(`${b.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.text).toContain('standby: ctl-a leads');
    expect((await status(b)).ha).toMatchObject({ role: 'standby', leader: 'ctl-a', etcd: { ok: true } });
    expect((await status(a)).ha).toMatchObject({ role: 'leader', leader: 'ctl-a' });
    const refused = await DaemonClient.forSocket(b.socket).post('/operator/wake', { host: 'demo-01' }, 5000);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'NOT_LEADER', leader: 'ctl-a' });
    expect(JSON.stringify(refused.body)).toContain('ctl-a leads');
    // The standby observed nothing: no cycle ran on it.
    expect(b.daemon.count((l) => l.component === 'cycle')).toBe(0);

    const killedAt = Date.now();
    const bLinesBefore = b.daemon.lines.length;
    await a.daemon.kill();
    await leads(b, (TTL_SECONDS + 5) * 1000, bLinesBefore);
    await waitFor('a step by ctl-b in etcd', { timeoutMs: 30_000, intervalMs: 100 }, async () => (await steps(prefix)).some((s) => s.controller === 'ctl-b'));
    const history = await steps(prefix);
    const firstB = history.find((s) => s.controller === 'ctl-b') as StepRecord;
    const failoverMs = firstB.atMs - killedAt;
    timeline.add('test', `failover: leader killed -> first step fenced by the new leader: ${failoverMs} ms (TTL ${TTL_SECONDS} s, cycle ${CYCLE_SECONDS} s)`);
    console.log(`HA failover: ${failoverMs} ms from SIGKILL of the leader to the first step of the new one (TTL ${TTL_SECONDS} s, cycle every ${CYCLE_SECONDS} s)`);
    expect(failoverMs).toBeLessThanOrEqual((TTL_SECONDS + CYCLE_SECONDS) * 1000 + 1500);
    // Terms in order: no step of ctl-a after ctl-b's first.
    expect(history.filter((s) => s.revision > firstB.revision).every((s) => s.controller === 'ctl-b')).toBe(true);
    await waitFor('ctl-b metric leader 1', { timeoutMs: 5000 }, async () => (await metric(b, 'consolidator_leader')) === 1);
    expect(await metric(b, 'consolidator_leader_changes_total')).toBeGreaterThanOrEqual(2);

    // The etcd traffic of a leader, per cycle, over ten cycles (the figure in the README).
    const traffic = async () => {
      const { text } = await get(`${b.url}/metrics`);
      const sum = (re: RegExp) => [...text.matchAll(re)].reduce((t, m) => t + Number(m[1]), 0);
      return {
        requests: sum(/^consolidator_etcd_requests_total\{[^}]*\} (\S+)$/gm),
        txns: sum(/^consolidator_etcd_requests_total\{op="txn"[^}]*\} (\S+)$/gm),
        sent: sum(/^consolidator_etcd_bytes_total\{direction="sent"\} (\S+)$/gm),
        received: sum(/^consolidator_etcd_bytes_total\{direction="received"\} (\S+)$/gm),
        cycles: b.daemon.count((l) => l.message === 'cycle finished'),
        steps: b.daemon.count((l) => l.message === 'migrate done' || l.message === 'power-off done' || l.message === 'power-on done'),
      };
    };
    const t0 = await traffic();
    await waitFor('ten more cycles', { timeoutMs: 60_000, intervalMs: 200 }, () => b.daemon.count((l) => l.message === 'cycle finished') >= t0.cycles + 10);
    const t1 = await traffic();
    const cycles = t1.cycles - t0.cycles;
    const per = (k: 'requests' | 'txns' | 'sent' | 'received') => Math.round((t1[k] - t0[k]) / cycles);
    const figure = `etcd traffic of the leader (12 simulated hosts): ${per('requests')} requests (${per('txns')} transactions), ${per('sent')} bytes sent and ${per('received')} received per cycle, over ${cycles} cycles with ${t1.steps - t0.steps} steps`;
    timeline.add('test', figure);
    console.log(`HA ${figure}`);
    expect(per('requests')).toBeGreaterThan(0);
  });

  it('SIGSTOP the leader past its TTL; the other leads; SIGCONT: the old one starts no step and stands by', async () => {
    const prefix = newScenario('pause');
    const a = await start('ctl-a', prefix);
    await leads(a, 20_000);
    const b = await start('ctl-b', prefix);
    await a.daemon.waitForLog(isStepStart, 60_000, 'a first step');
    a.daemon.signal('SIGSTOP');
    const bLinesBefore = b.daemon.lines.length;
    await leads(b, (TTL_SECONDS + 5) * 1000, bLinesBefore);
    await waitFor('a step by ctl-b in etcd', { timeoutMs: 30_000, intervalMs: 100 }, async () => (await steps(prefix)).some((s) => s.controller === 'ctl-b'));
    const aLinesAtResume = a.daemon.lines.length;
    a.daemon.signal('SIGCONT');
    await a.daemon.waitForLog((l) => l.message === 'no longer the leader: nothing new starts', 10_000, 'a steps down', aLinesAtResume);
    // Give it time to try whatever it had lined up.
    await new Promise((r) => setTimeout(r, (TTL_SECONDS + 2) * 1000));
    const history = await steps(prefix);
    const firstB = history.find((s) => s.controller === 'ctl-b') as StepRecord;
    expect(history.filter((s) => s.revision > firstB.revision).map((s) => s.controller)).not.toContain('ctl-a');
    // Nothing finished on its side that started after it resumed, and it runs no cycle.
    const after = a.daemon.lines.slice(aLinesAtResume);
    const startedAfter = after.filter((l) => l.message === 'migration finished' || l.message === 'power-off done' || l.message === 'power-on done');
    const refusedAfter = after.filter((l) => l.err !== undefined && JSON.stringify(l.err).includes('NOT_LEADER'));
    const note = `after SIGCONT: ${startedAfter.length} step(s) in flight at SIGSTOP ended, ${refusedAfter.length} log line(s) of a step or save refused by the fence`;
    timeline.add('test', note);
    console.log(`HA pause: ${note}`);
    expect(startedAfter.length).toBeLessThanOrEqual(1);
    expect(after.filter((l) => l.message === 'cycle finished')).toHaveLength(0);
    expect((await status(a)).ha).toMatchObject({ role: 'standby', leader: 'ctl-b' });
    expect(await metric(a, 'consolidator_leader')).toBe(0);
  });

  it('one etcd member stopped: work goes on; two stopped: no one acts, /healthz 503, until quorum returns', async () => {
    const prefix = newScenario('quorum');
    const a = await start('ctl-a', prefix);
    await leads(a, 20_000);
    const b = await start('ctl-b', prefix);
    await a.daemon.waitForLog(isStepStart, 60_000, 'a first step');

    await etcd.stopMember(0);
    const oneDown = a.daemon.lines.length;
    await new Promise((r) => setTimeout(r, (TTL_SECONDS + 1) * 1000));
    expect(a.daemon.count((l) => l.message === 'cycle finished', oneDown)).toBeGreaterThanOrEqual(2);
    expect((await status(a)).ha.role).toBe('leader');

    await etcd.stopMember(1);
    const lostAt = Date.now();
    const mark = a.daemon.lines.length;
    await a.daemon.waitForLog((l) => l.message === 'no longer the leader: nothing new starts', TTL_SECONDS * 1000 + 2 * ETCD_ELECTION_TIMEOUT_MS + 3000, 'a stops', mark);
    const stoppedMs = Date.now() - lostAt;
    timeline.add('test', `quorum lost -> the leader stopped acting after ${stoppedMs} ms`);
    console.log(`HA quorum loss: the leader stopped acting ${stoppedMs} ms after the second etcd member stopped (TTL ${TTL_SECONDS} s)`);
    // etcd's raft leader left alone notices it lost quorum within two election timeouts (CheckQuorum).
    expect(stoppedMs).toBeLessThanOrEqual(TTL_SECONDS * 1000 + 2 * ETCD_ELECTION_TIMEOUT_MS + 1000);
    await waitFor('both report etcd down', { timeoutMs: 15_000, intervalMs: 200 }, async () => (await get(`${a.url}/healthz`)).status === 503 && (await get(`${b.url}/healthz`)).status === 503);
    expect((await get(`${a.url}/healthz`)).text).toContain('etcd does not answer');
    expect(await metric(a, 'consolidator_ha_etcd_ok')).toBe(0);
    expect(await metric(a, 'consolidator_leader')).toBe(0);
    expect(a.daemon.count((l) => l.message === 'etcd does not answer: a leader stops acting once its lease runs out')).toBeGreaterThanOrEqual(1);
    // Still serving metrics, acting on nothing: no cycle on either for a while.
    const quiet = { a: a.daemon.lines.length, b: b.daemon.lines.length };
    await new Promise((r) => setTimeout(r, (TTL_SECONDS + 2) * 1000));
    for (const [c, since] of [[a, quiet.a], [b, quiet.b]] as const) {
      expect(c.daemon.count((l) => l.message === 'cycle finished' || l.message === 'migration finished' || l.message === 'power-off done', since)).toBe(0);
    }
    const revisionBefore = (await (async () => {
      etcd.startMember(0);
      etcd.startMember(1);
      await etcd.waitHealthy();
      return steps(prefix);
    })()).at(-1)?.revision ?? 0;
    expect(revisionBefore).toBeGreaterThan(0);
    // Quorum back: one of them leads and acts again.
    await waitFor('a cycle finishes again', { timeoutMs: 30_000, intervalMs: 200 }, () => a.daemon.count((l) => l.message === 'cycle finished', quiet.a) + b.daemon.count((l) => l.message === 'cycle finished', quiet.b) > 0);
    const roles = [(await status(a)).ha.role, (await status(b)).ha.role].sort();
    expect(roles).toEqual(['leader', 'standby']);
  });
});
