/**
 * A real etcd cluster (Debian's etcd-server) of three members on 127.0.0.1, on free ports, data in a
 * temporary directory; members can be stopped, killed, paused and started again. With `tls`, the
 * client URLs are https with certificates made by openssl in the same directory (a CA, one server
 * certificate for 127.0.0.1, one client certificate), and etcd asks for the client certificate.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);

export interface EtcdTls {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly args: readonly string[];
  process: ChildProcess | undefined;
  log: string;
}

const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

export class EtcdCluster {
  private constructor(
    readonly directory: string,
    private readonly members: Member[],
    readonly tls: EtcdTls | undefined,
  ) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  static async start(options: { size?: number; tls?: boolean } = {}): Promise<EtcdCluster> {
    const size = options.size ?? 3;
    const directory = await mkdtemp(join(tmpdir(), 'consolidator-etcd-'));
    const tls = options.tls ? await makeCertificates(directory) : undefined;
    const scheme = tls ? 'https' : 'http';
    const ports: { client: number; peer: number }[] = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
    const cluster = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
    const members: Member[] = ports.map((p, i) => {
      const clientUrl = `${scheme}://127.0.0.1:${p.client}`;
      const peerUrl = `http://127.0.0.1:${p.peer}`;
      const args = [
        '--name', `m${i}`,
        '--data-dir', join(directory, `m${i}`),
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', cluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `consolidator-test-${process.pid}`,
        '--heartbeat-interval', '100',
        '--election-timeout', '1000',
        ...(tls ? ['--cert-file', join(directory, 'server.pem'), '--key-file', join(directory, 'server-key.pem'), '--trusted-ca-file', tls.caFile, '--client-cert-auth'] : []),
      ];
      return { name: `m${i}`, clientUrl, peerUrl, args, process: undefined, log: '' };
    });
    const etcd = new EtcdCluster(directory, members, tls);
    for (let i = 0; i < size; i++) etcd.startMember(i);
    await etcd.waitHealthy();
    return etcd;
  }

  startMember(i: number): void {
    const m = this.members[i] as Member;
    if (m.process && m.process.exitCode === null && m.process.signalCode === null) return;
    const child = spawn('etcd', m.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    alive.add(child);
    const keep = (chunk: Buffer) => {
      m.log = (m.log + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', () => alive.delete(child));
    m.process = child;
  }

  /** SIGTERM and wait (or SIGKILL with `kill`). */
  async stopMember(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const m = this.members[i] as Member;
    const child = m.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  memberLog(i: number): string {
    return (this.members[i] as Member).log;
  }

  /** etcdctl against the running members (with the client certificate under TLS). */
  async etcdctl(args: readonly string[], endpoints: readonly string[] = this.endpoints): Promise<string> {
    const tlsArgs = this.tls ? ['--cacert', this.tls.caFile, '--cert', this.tls.certFile, '--key', this.tls.keyFile] : [];
    const { stdout } = await run('etcdctl', ['--endpoints', endpoints.join(','), '--dial-timeout', '2s', '--command-timeout', '3s', ...tlsArgs, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeout: 15_000,
    });
    return stdout;
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor('etcd cluster healthy', { timeoutMs, intervalMs: 300 }, async () => {
      const running = this.members.flatMap((m, i) => (m.process && m.process.exitCode === null && m.process.signalCode === null ? [i] : []));
      if (running.length === 0) return false;
      await this.etcdctl(['endpoint', 'health'], running.map((i) => (this.members[i] as Member).clientUrl));
      return true;
    });
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[i] as Member;
      if (m.process?.signalCode === 'SIGSTOP') m.process.kill('SIGCONT');
      await this.stopMember(i);
    }
    await rm(this.directory, { recursive: true, force: true });
  }
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl. */
async function makeCertificates(directory: string): Promise<EtcdTls> {
  const f = (name: string) => join(directory, name);
  const ossl = (args: string[]) => run('openssl', args, { timeout: 30_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await ossl(['req', '-x509', ...ec, '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=consolidator test etcd CA']);
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  await writeFile(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, ext] of [['server', 'server.ext'], ['client', 'client.ext']] as const) {
    await ossl(['req', ...ec, '-keyout', f(`${name}-key.pem`), '-out', f(`${name}.csr`), '-subj', `/CN=consolidator test ${name}`]);
    await ossl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(ext)]);
  }
  return { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client-key.pem') };
}
