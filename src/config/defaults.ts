/**
 * Every default of the policy, in one place. The schema applies them; the README's policy reference
 * and the example file show them. Chosen for a cautious first deployment: dry-run, slow schedule,
 * generous headroom, few migrations per cycle.
 */
/**
 * The demo's operator socket (control.socket in config/demo.yaml, which must say the same): the CLI
 * looks there last, so `npx consolidator status` finds the demo without options.
 */
export const DEMO_CONTROL_SOCKET = '/tmp/consolidator-demo.sock';

export const DEFAULTS = {
  mode: 'dry-run',
  schedule: '*/5 * * * *',
  timeZone: 'UTC',
  thresholds: {
    cpu: { underloadRatio: 0.25, targetRatio: 0.7, overloadRatio: 0.9, windowSeconds: 1800, statistic: 'p95' },
    memory: { underloadRatio: 0.3, targetRatio: 0.8, overloadRatio: 0.92, windowSeconds: 1800, statistic: 'max' },
  },
  consolidation: {
    enabled: true,
    underloadedForSeconds: 1800,
    overloadPredictionSeconds: 0,
    worthItHorizonSeconds: 3600,
    worthItMargin: 2,
    migrationOverheadWatts: 40,
    drainOrder: 'energy-per-gib',
  },
  safety: {
    minHostsOn: 1,
    spareHosts: 0,
    reserveRatio: 0,
    maxMigrationsPerCycle: 10,
    maxConcurrentMigrations: 2,
    maxConcurrentMigrationsPerHost: 1,
    hostCooldownSeconds: 3600,
    vmCooldownSeconds: 3600,
    maxPowerActionsPerHostPerDay: 4,
  },
  migration: {
    bandwidthMiBps: 0,
    timeoutSeconds: 600,
    nonConvergence: 'auto-converge',
    convergenceDeadlineSeconds: 120,
    persistent: true,
    undefineSource: true,
    /** Used to estimate migration time when no bandwidth cap is set. */
    expectedLinkMiBps: 1000,
  },
  power: {
    driver: 'ipmitool',
    softOffTimeoutSeconds: 300,
    bootTimeoutSeconds: 600,
    expectedBootSeconds: 180,
    verifyTimeoutSeconds: 60,
    /** One re-send: a host reported off can drop a power-on sent too early (it is still settling). */
    resends: 1,
    /** Magic packets per Wake-on-LAN power-on: UDP may lose one, a NIC ignores the extra ones. */
    wolPacketsPerSend: 3,
    /** On by default: it wakes only hosts consolidator itself powered off, one a day, in active windows (README, "Proof of boot"). */
    proofOfBoot: { enabled: true, afterDays: 14, maxHostsPerCycle: 1, maxHostsPerDay: 1, minOnSeconds: 3600 },
    ipmi: { cipherSuite: 3, retries: 1, commandTimeoutSeconds: 5 },
    redfish: { requestTimeoutSeconds: 10 },
  },
  host: {
    sshPort: 22,
    sshUser: 'root',
    /** The discard port, where Wake-on-LAN magic packets go by convention (7 is the other). */
    wolPort: 9,
    idleWatts: 150,
    maxWatts: 350,
  },
  logging: { level: 'info', format: 'json' },
  metrics: { listen: '127.0.0.1:9464' },
  control: { socket: '/run/consolidator/control.sock', group: 'consolidator' },
  stateDirectory: '/var/lib/consolidator',
  /** A week of 100 hosts / 1,000 VMs at 5-minute cycles is about 20 MiB gzip'd (1-minute cycles: 100 MiB). */
  recording: { enabled: true, retentionDays: 30, maxBytes: 1024 * 1024 * 1024 },
  ha: { keyPrefix: '/consolidator/', leaseTtlSeconds: 15, requestTimeoutMs: 2000 },
  /** `consolidator check`: hosts checked at once, and how long one check may take. */
  check: { concurrency: 8, timeoutSeconds: 20 },
  simulation: { speedup: 300, migrationMiBps: 1000, planetLabVmMemoryMiB: 2048 },
} as const;
