import { describe, expect, it } from 'vitest';
import bcrypt from 'bcryptjs';
import { activatedFd } from '../../../src/daemon/control-socket.js';
import { claimedCredentials, parseSsUnix } from '../../../src/daemon/peer-credentials.js';
import { BasicAuthVerifier, parseBasicAuthorization } from '../../../src/observability/basic-auth.js';

describe('activatedFd (systemd socket activation)', () => {
  it.each([
    [{ LISTEN_PID: '42', LISTEN_FDS: '1', LISTEN_FDNAMES: 'control' }, 3],
    [{ LISTEN_PID: '42', LISTEN_FDS: '2', LISTEN_FDNAMES: 'other:control' }, 4],
    [{ LISTEN_PID: '41', LISTEN_FDS: '1', LISTEN_FDNAMES: 'control' }, undefined],
    [{ LISTEN_PID: '42', LISTEN_FDS: '1', LISTEN_FDNAMES: 'consolidator.socket' }, undefined],
    [{ LISTEN_PID: '42', LISTEN_FDS: '1', LISTEN_FDNAMES: 'other:control' }, undefined],
    [{}, undefined],
  ])('%j -> %s', (env, fd) => {
    expect(activatedFd(env, 42)).toBe(fd);
  });
});

describe('peer credentials', () => {
  it('parses ss -xpn rows: inode, peer inode, the pids holding it (paths may hold spaces)', () => {
    const text = [
      'Netid State Recv-Q Send-Q Local Address:Port  Peer Address:Port Process',
      'u_str ESTAB 0      0                          * 23966            * 23968 users:(("node",pid=17716,fd=3),("node",pid=17717,fd=3))',
      'u_str ESTAB 0      0         /run/a b/control.sock 23968            * 23966 users:(("node",pid=17701,fd=20))',
      'u_str ESTAB 0      0                          * 30001            * 30002',
    ].join('\n');
    expect(parseSsUnix(text)).toEqual([
      { inode: 23966, peerInode: 23968, pids: [17716, 17717] },
      { inode: 23968, peerInode: 23966, pids: [17701] },
      { inode: 30001, peerInode: 30002, pids: [] },
    ]);
  });

  it('falls back to what the client claims, marked as claimed, and ignores junk', () => {
    expect(claimedCredentials({ 'x-consolidator-client-uid': '1000', 'x-consolidator-client-gid': '1000', 'x-consolidator-client-pid': '77' })).toEqual({ uid: 1000, gid: 1000, pid: 77, source: 'claimed' });
    expect(claimedCredentials({ 'x-consolidator-client-uid': 'root' })).toEqual({ source: 'unknown' });
  });
});

describe('BasicAuthVerifier', () => {
  it('accepts the right password, refuses others and unknown users, and verifies a good pair with bcrypt only once', async () => {
    const verifier = new BasicAuthVerifier(new Map([['prometheus', bcrypt.hashSync('s3cret', 12)]]));
    const started = Date.now();
    expect(await verifier.verify({ user: 'prometheus', password: 's3cret' })).toBe('accepted');
    const first = Date.now() - started;
    const again = Date.now();
    for (let i = 0; i < 20; i++) expect(await verifier.verify({ user: 'prometheus', password: 's3cret' })).toBe('accepted');
    expect(Date.now() - again).toBeLessThan(first);
    expect(await verifier.verify({ user: 'prometheus', password: 'wrong' })).toBe('refused');
    expect(await verifier.verify({ user: 'nobody', password: 's3cret' })).toBe('refused');
    expect(await verifier.verify(undefined)).toBe('refused');
  });

  it('parses the Authorization header', () => {
    expect(parseBasicAuthorization(`Basic ${Buffer.from('u:p:q').toString('base64')}`)).toEqual({ user: 'u', password: 'p:q' });
    expect(parseBasicAuthorization('Bearer abc')).toBeUndefined();
    expect(parseBasicAuthorization(undefined)).toBeUndefined();
  });
});
