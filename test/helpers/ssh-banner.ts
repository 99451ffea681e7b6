import { connect } from 'node:net';

const SSH_PORT = 22;
const PROBE_TIMEOUT_MS = 1000;

/** What a host's SSH port says: its banner, or why there is none ("no answer", a connection error). */
export function sshBanner(address: string, port = SSH_PORT): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (what: string) => {
      socket.destroy();
      resolve(what);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done('no answer'));
    socket.once('data', (data) => done(data.toString('utf8').split('\r\n')[0] ?? ''));
    socket.once('error', (e) => done(e.message));
  });
}
