import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  classifyVirshError,
  compareVersions,
  cpuCoresBetween,
  domainCpuCores,
  isPinnedMetadata,
  parseDomblklist,
  parseDomjobinfo,
  parseDomstate,
  parseDomstatsRaw,
  parseMeminfo,
  parseProcStat,
  parseSizeMiB,
  parseUptimeSeconds,
  parseUuidNameList,
  parseVirshVersion,
  splitSections,
  virshErrorLine,
  type VirshFailure,
} from '../../../../src/drivers/hypervisor/virsh-parsers.js';
import { isConsolidatorError } from '../../../../src/errors.js';
import { thrownSync } from '../../../helpers/thrown.js';

/** Output captured from the lab (real sshd, libvirt 9.0.0, QEMU 7.2); see test/fixtures/virsh/README.md. */
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../../fixtures/virsh', name), 'utf8');

function expectParseError(fn: () => unknown) {
  expect(isConsolidatorError(thrownSync(fn), 'PARSE')).toBe(true);
}

describe('parseProcStat', () => {
  it.each([
    // file, cpus, busy = user+nice+system+irq+softirq+steal, total = busy + idle + iowait
    ['proc-stat.real.txt', 2, 66937 + 10378 + 310 + 481, 66937 + 10378 + 310 + 481 + 113107 + 577],
    ['proc-stat.lab.txt', 8, 8000 + 4000, 8000 + 4000 + 800000],
  ])('%s', (file, cpus, busy, total) => {
    expect(parseProcStat(fixture(file))).toEqual({ cpus, busyTicks: busy, totalTicks: total });
  });

  it.each([[''], ['intr 0\n'], ['cpu  1 2 3 4\n']])('refuses %j', (text) => expectParseError(() => parseProcStat(text)));

  it.each([
    // previous, current, cores
    [{ cpus: 4, busyTicks: 100, totalTicks: 1000 }, { cpus: 4, busyTicks: 300, totalTicks: 1400 }, 2],
    [{ cpus: 8, busyTicks: 100, totalTicks: 1000 }, { cpus: 8, busyTicks: 100, totalTicks: 1800 }, 0],
    [{ cpus: 8, busyTicks: 100, totalTicks: 1000 }, { cpus: 8, busyTicks: 100, totalTicks: 1000 }, undefined],
    // counters went backwards: the host rebooted between the samples
    [{ cpus: 8, busyTicks: 900, totalTicks: 9000 }, { cpus: 8, busyTicks: 10, totalTicks: 100 }, undefined],
  ])('cpuCoresBetween %j %j = %s', (a, b, cores) => {
    expect(cpuCoresBetween(a, b)).toBe(cores);
  });
});

describe('parseMeminfo', () => {
  it.each([
    ['proc-meminfo.real.txt', 24683656 / 1024, 23491768 / 1024],
    ['proc-meminfo.lab.txt', 32768, 28672],
  ])('%s', (file, totalMiB, availableMiB) => {
    const m = parseMeminfo(fixture(file));
    expect(m.totalMiB).toBeCloseTo(totalMiB, 6);
    expect(m.availableMiB).toBeCloseTo(availableMiB, 6);
    expect(m.usedMiB).toBeCloseTo(totalMiB - availableMiB, 6);
  });

  it('falls back to free + buffers + cached without MemAvailable (Linux < 3.14)', () => {
    expect(parseMeminfo('MemTotal: 4096 kB\nMemFree: 1024 kB\nBuffers: 512 kB\nCached: 512 kB\n').availableMiB).toBe(2);
  });

  it('refuses text without MemTotal', () => expectParseError(() => parseMeminfo('MemFree: 1 kB\n')));
});

describe('parseUptimeSeconds', () => {
  it('reads the first field', () => expect(parseUptimeSeconds(fixture('proc-uptime.real.txt'))).toBeGreaterThan(0));
  it('refuses garbage', () => expectParseError(() => parseUptimeSeconds('up')));
});

describe('parseVirshVersion', () => {
  it.each([
    ['version.txt', { libvirt: '9.0.0', qemu: '7.2.22' }],
    ['version-daemon.txt', { libvirt: '9.0.0', qemu: '7.2.22' }],
    ['proc-stat.lab.txt', {}],
  ])('%s', (file, expected) => expect(parseVirshVersion(fixture(file))).toEqual(expected));

  it('prefers the daemon version to the library version', () => {
    expect(parseVirshVersion('Using library: libvirt 9.0.0\nRunning against daemon: 8.0.0\n').libvirt).toBe('8.0.0');
  });

  it.each([
    ['7.2.22', '7.2.22', 0],
    ['7.2.22', '7.10.0', -1],
    ['8.0', '7.2.22', 1],
    ['9.0.0', '9.0', 0],
  ])('compareVersions(%s, %s) = %d', (a, b, r) => expect(compareVersions(a, b)).toBe(r));
});

describe('parseDomstatsRaw', () => {
  it('running, paused and shut off domains', () => {
    expect(parseDomstatsRaw(fixture('domstats-raw.running-paused-shutoff.txt'))).toEqual([
      { name: 'vm1', state: 'running', stateCode: 1, vcpus: 1, memoryMiB: 256, cpuTimeNs: 3060000000 },
      // shut off: libvirt still shows the last run's cpu.time; it is dropped
      { name: 'off1', state: 'shutoff', stateCode: 5, vcpus: 1, memoryMiB: 256 },
      { name: 'p1', state: 'paused', stateCode: 3, vcpus: 1, memoryMiB: 1024, cpuTimeNs: 400000000 },
    ]);
  });

  it('one running domain', () => {
    const [d] = parseDomstatsRaw(fixture('domstats-raw.one-running.txt'));
    expect(d).toMatchObject({ state: 'running', vcpus: 1 });
  });

  it('a host without domains prints an empty line', () => {
    expect(parseDomstatsRaw(fixture('domstats-raw.empty.txt'))).toEqual([]);
  });

  it.each([
    ['  state.state=1\n'],
    ["Domain: 'x'\n  balloon.current=1\n  vcpu.current=1\n"],
    ["Domain: 'x'\n  state.state=1\n"],
    ["Domain: 'x'\nnonsense\n"],
  ])('refuses %j', (text) => expectParseError(() => parseDomstatsRaw(text)));

  it.each([
    [1e9, 3e9, 2, 1],
    [1e9, 1e9, 5, 0],
    [5e9, 1e9, 1, undefined],
    [1e9, 2e9, 0, undefined],
  ])('domainCpuCores(%d, %d, %d s) = %s', (a, b, s, cores) => expect(domainCpuCores(a, b, s)).toBe(cores));
});

describe('domain list and metadata', () => {
  it('parseUuidNameList', () => {
    expect(parseUuidNameList('c17d2ef0-d9f4-4207-be30-279d4b08e98e p1\n0e6d4c32-d134-4475-9565-22a631cd702c off one\n\n')).toEqual(
      new Map([
        ['c17d2ef0-d9f4-4207-be30-279d4b08e98e', 'p1'],
        ['0e6d4c32-d134-4475-9565-22a631cd702c', 'off one'],
      ]),
    );
  });

  it.each([
    ['metadata-pinned.txt', true],
    ['metadata-absent.stderr.txt', false],
  ])('isPinnedMetadata(%s) = %s', (file, pinned) => expect(isPinnedMetadata(fixture(file))).toBe(pinned));

  it.each([
    ['<consolidator:pinned/>', true],
    ["<pinned reason='licence'/>", true],
    ['<pinnedness/>', false],
    ['', false],
  ])('isPinnedMetadata(%j) = %s', (text, pinned) => expect(isPinnedMetadata(text)).toBe(pinned));
});

describe('parseDomjobinfo', () => {
  it.each([
    ['domjobinfo.none.txt', { type: 'none' }],
    ['domjobinfo.after-abort.txt', { type: 'none' }],
    [
      'domjobinfo.unbounded-iteration1.txt',
      {
        type: 'unbounded',
        operation: 'Outgoing migration',
        elapsedMs: 2367,
        dataProcessedMiB: 1.221,
        dataRemainingMiB: 61.422,
        dataTotalMiB: 64.508,
        memoryBandwidthMiBps: 1.018,
        dirtyRatePagesPerSecond: 0,
        iteration: 1,
        postcopyRequests: 0,
        expectedDowntimeMs: 300,
      },
    ],
    [
      'domjobinfo.unbounded-autoconverge.txt',
      {
        type: 'unbounded',
        operation: 'Outgoing migration',
        elapsedMs: 11919,
        dataProcessedMiB: 10.685,
        dataRemainingMiB: 1.664,
        dataTotalMiB: 64.508,
        memoryBandwidthMiBps: 906.267 / 1024,
        dirtyRatePagesPerSecond: 250,
        iteration: 3,
        postcopyRequests: 0,
        expectedDowntimeMs: 4519,
        autoConvergeThrottlePercent: 20,
      },
    ],
    [
      'domjobinfo.completed-destination.txt',
      {
        type: 'completed',
        operation: 'Incoming migration',
        elapsedMs: 1811,
        dataProcessedMiB: 1.032,
        dataRemainingMiB: 0,
        dataTotalMiB: 256.508,
        memoryBandwidthMiBps: 13.02,
        dirtyRatePagesPerSecond: 0,
        iteration: 2,
        postcopyRequests: 0,
        totalDowntimeMs: 76,
      },
    ],
  ])('%s', (file, expected) => {
    const info = parseDomjobinfo(fixture(file));
    expect(Object.keys(info).sort()).toEqual(Object.keys(expected).sort());
    for (const [key, value] of Object.entries(expected)) {
      if (typeof value === 'number') expect(info[key as keyof typeof info], key).toBeCloseTo(value, 6);
      else expect(info[key as keyof typeof info], key).toBe(value);
    }
  });

  it('refuses text without a job type', () => expectParseError(() => parseDomjobinfo(fixture('domjobabort-no-job.stderr.txt'))));

  it.each([
    ['0.000 B', 0],
    ['480.000 KiB', 480 / 1024],
    ['1.5 GiB', 1536],
    ['13.020 MiB/s', 13.02],
    ['12 parsecs', undefined],
  ])('parseSizeMiB(%j) = %s', (text, mib) => {
    if (mib === undefined) expect(parseSizeMiB(text)).toBeUndefined();
    else expect(parseSizeMiB(text)).toBeCloseTo(mib, 9);
  });
});

describe('parseDomstate', () => {
  it.each([
    ['domstate-reason.vm1.txt', { state: 'running', reason: 'booted', vmState: 'running' }],
    ['domstate-reason.p1.txt', { state: 'paused', reason: 'user', vmState: 'paused' }],
    ['domstate-reason.off1.txt', { state: 'shut off', reason: 'unknown', vmState: 'shutoff' }],
    ['domstate-reason.postcopy-destination.txt', { state: 'running', reason: 'migrated', vmState: 'running' }],
  ])('%s', (file, expected) => expect(parseDomstate(fixture(file))).toEqual(expected));

  it.each([['running\n', { state: 'running', vmState: 'running' }]])('without --reason: %j', (text, expected) => expect(parseDomstate(text)).toEqual(expected));

  it('refuses empty output', () => expectParseError(() => parseDomstate('\n')));
});

describe('parseDomblklist', () => {
  it('file, network, block and an empty cdrom', () => {
    expect(parseDomblklist(fixture('domblklist-details.disks.txt'))).toEqual([
      { type: 'file', device: 'disk', target: 'vda', source: '/srv/lab/shared/disk1.qcow2' },
      { type: 'network', device: 'disk', target: 'vdb', source: 'export' },
      { type: 'block', device: 'disk', target: 'vdc', source: '/dev/vg0/data' },
      { type: 'file', device: 'cdrom', target: 'hdc' },
    ]);
  });

  it('a diskless domain', () => expect(parseDomblklist(fixture('domblklist-details.diskless.txt'))).toEqual([]));

  it('keeps spaces inside a source path', () => {
    expect(parseDomblklist(' Type Device Target Source\n-------\n file disk vda /var/lib/my images/a.qcow2\n')[0]?.source).toBe('/var/lib/my images/a.qcow2');
  });
});

describe('classifyVirshError', () => {
  it.each<[string, VirshFailure, string]>([
    ['migrate-no-domain.stderr.txt', 'no-domain', "failed to get domain 'nosuch'"],
    ['domjobinfo.completed-source-gone.stderr.txt', 'no-domain', "failed to get domain 'vm1'"],
    ['domstate-reason.nosuch.stderr.txt', 'no-domain', "failed to get domain 'nosuch'"],
    ['domjobabort-no-job.stderr.txt', 'no-job', 'Requested operation is not valid: no job is active on the domain'],
    ['migrate-aborted.stderr.txt', 'aborted-by-client', "operation aborted: job 'migration out' canceled by client"],
    ['migrate-destination-off.stderr.txt', 'unreachable', 'Cannot recv data: ssh: connect to host h3.lab port 22: No route to host: Connection reset by peer'],
    ['migrate-unresolvable.stderr.txt', 'unresolvable', 'Cannot recv data: ssh: Could not resolve hostname nosuch.lab: Temporary failure in name resolution: Connection reset by peer'],
    ['migrate-same-host.stderr.txt', 'same-host', 'internal error: Attempt to migrate guest to the same host 00000000-0000-4000-8000-000000000002'],
    ['migrate-postcopy-no-job.stderr.txt', 'not-in-migration', 'Requested operation is not valid: post-copy can only be started while outgoing migration is in progress'],
    ['metadata-absent.stderr.txt', 'other', 'metadata not found: Requested metadata element is not present'],
  ])('%s -> %s', (file, kind, line) => {
    const text = fixture(file);
    expect(classifyVirshError(text)).toBe(kind);
    expect(virshErrorLine(text)).toBe(line);
  });
});

describe('splitSections', () => {
  it('splits marker sections and keys them by name and argument', () => {
    const text = 'noise\n@@consolidator stat\ncpu 1\n@@consolidator metadata abc\n<pinned/>\n@@consolidator end\n';
    expect(splitSections(text)).toEqual(
      new Map([
        ['stat', 'cpu 1'],
        ['metadata abc', '<pinned/>'],
        ['end', ''],
      ]),
    );
  });
});
