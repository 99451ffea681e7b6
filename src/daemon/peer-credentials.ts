import { execFile } from 'node:child_process';
import { fstat } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';

/**
 * Who is on the other end of an operator-socket connection, for the audit log.
 *
 * Node has no SO_PEERCRED, and we use no native module. What Linux offers without one:
 *  1. our accepted socket's inode: fstat() of its descriptor;
 *  2. its peer's inode: the kernel's sock_diag (UNIX_DIAG_PEER), which `ss -x` prints;
 *  3. the process holding the peer: `ss -p` walks /proc/PID/fd for `socket:[inode]`;
 *  4. that process's effective uid and gid: /proc/PID/status.
 * Steps 2 and 4 come from the kernel; step 3 needs to read other users' /proc/PID/fd, which only
 * root (or CAP_SYS_PTRACE) may, and `ss` needs AF_NETLINK. Under the shipped unit (a dynamic user,
 * ProtectProc=invisible, RestrictAddressFamilies without AF_NETLINK) it cannot work, so the caller
 * then falls back to what the client *claims* and marks it so. Cost measured on a small host: one
 * `ss -xpn` run, about 40 ms; operator commands are rare, /status is not audited.
 *
 * A peer that forked after connecting shares the socket: then several processes hold it and the
 * first one `ss` lists is reported, with the others' pids.
 */

export interface PeerCredentials {
  readonly uid?: number;
  readonly gid?: number;
  readonly pid?: number;
  /** Other processes holding the peer socket (a fork after connect). */
  readonly otherPids?: readonly number[];
  /** 'kernel': looked up as above; 'claimed': the client's own headers, unverified; 'unknown': neither. */
  readonly source: 'kernel' | 'claimed' | 'unknown';
}

const SS = 'ss';
const SS_TIMEOUT_MS = 5_000;
const SS_MAX_BUFFER_BYTES = 64 * 1024 * 1024;

/** Runs `ss -xpn` and returns its output; injectable for tests. */
export type SocketLister = () => Promise<string>;

export const ssLister: SocketLister = async () => {
  const { stdout } = await promisify(execFile)(SS, ['-xpn'], { timeout: SS_TIMEOUT_MS, maxBuffer: SS_MAX_BUFFER_BYTES, env: { LC_ALL: 'C', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  return stdout;
};

/** The peer's credentials from the kernel, or undefined when they cannot be found (see above). */
export async function kernelPeerCredentials(socket: Socket, list: SocketLister = ssLister): Promise<Omit<PeerCredentials, 'source'> | undefined> {
  const inode = await socketInode(socket);
  if (inode === undefined) return undefined;
  let listing: string;
  try {
    listing = await list();
  } catch {
    return undefined;
  }
  const rows = parseSsUnix(listing);
  const ours = rows.find((r) => r.inode === inode);
  const peer = ours ? rows.find((r) => r.inode === ours.peerInode) : undefined;
  const [pid, ...otherPids] = peer?.pids ?? [];
  if (pid === undefined) return undefined;
  const ids = await processIds(pid);
  if (ids === undefined) return undefined;
  return { ...ids, pid, ...(otherPids.length > 0 ? { otherPids } : {}) };
}

export interface SsUnixRow {
  readonly inode: number;
  readonly peerInode: number;
  readonly pids: readonly number[];
}

/**
 * Rows of `ss -xpn`: `u_str ESTAB 0 0 LOCAL INODE PEER PEER_INODE users:(("name",pid=N,fd=M),...)`.
 * LOCAL is `*` or a path (which may hold spaces); the two inodes are the last numbers before the
 * process column.
 */
export function parseSsUnix(text: string): SsUnixRow[] {
  const rows: SsUnixRow[] = [];
  for (const line of text.split('\n')) {
    const match = /^u_(?:str|seq|dgr)\s+\S+\s+\d+\s+\d+\s+.*?\s(\d+)\s+\S+\s+(\d+)(?:\s+(.*))?$/.exec(line.trimEnd());
    if (match?.[1] === undefined || match[2] === undefined) continue;
    const pids = [...(match[3] ?? '').matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    rows.push({ inode: Number(match[1]), peerInode: Number(match[2]), pids });
  }
  return rows;
}

function socketInode(socket: Socket): Promise<number | undefined> {
  // The descriptor of a connected socket is not in Node's public API; libuv's handle has it on Unix.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return Promise.resolve(undefined);
  return new Promise((resolve) => fstat(fd, (e, stats) => resolve(e ? undefined : stats.ino)));
}

/** Effective uid and gid from /proc/PID/status (`Uid: real effective saved fs`). */
async function processIds(pid: number): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1];
    const gid = /^Gid:\s+\d+\s+(\d+)/m.exec(status)?.[1];
    return uid !== undefined && gid !== undefined ? { uid: Number(uid), gid: Number(gid) } : undefined;
  } catch {
    return undefined;
  }
}

/** What the client says about itself (X-Consolidator-Client-Uid/-Gid/-Pid headers): unverified. */
export function claimedCredentials(headers: Readonly<Record<string, string | string[] | undefined>>): PeerCredentials {
  const number = (name: string): number | undefined => {
    const value = headers[name];
    return typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : undefined;
  };
  const uid = number(CLAIM_HEADERS.uid);
  const gid = number(CLAIM_HEADERS.gid);
  const pid = number(CLAIM_HEADERS.pid);
  if (uid === undefined && gid === undefined && pid === undefined) return { source: 'unknown' };
  return { ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}), ...(pid !== undefined ? { pid } : {}), source: 'claimed' };
}

export const CLAIM_HEADERS = { uid: 'x-consolidator-client-uid', gid: 'x-consolidator-client-gid', pid: 'x-consolidator-client-pid' } as const;
