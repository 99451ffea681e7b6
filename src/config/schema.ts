import { z } from 'zod';
import { DEFAULTS } from './defaults.js';

/**
 * The policy schema: the single source of truth for the YAML policy file. Types, the JSON Schema for
 * editors (config/consolidator.schema.json) and the README's policy reference all come from here.
 * Objects are strict: an unknown key is an error (with a "did you mean" added by the loader).
 */

const ratio = (what: string) =>
  z.number().gt(0, { message: 'must be greater than 0' }).lte(1, { message: 'must be at most 1 (a ratio of capacity)' }).describe(what);

const seconds = (what: string) => z.number().int().nonnegative({ message: 'must not be negative' }).describe(what);
const positiveSeconds = (what: string) => z.number().int().positive({ message: 'must be greater than 0' }).describe(what);
const count = (what: string) => z.number().int().nonnegative({ message: 'must not be negative' }).describe(what);
const filePath = (what: string) => z.string().min(1, { message: 'must be a file path' }).describe(what);

/** Driver names the registry knows; the policy can only name one of these. */
export const POWER_DRIVERS = ['ipmitool', 'redfish', 'simulated'] as const;
/** The power drivers that talk to a real BMC: what a host may choose for itself in bmc.driver. */
export const BMC_DRIVERS = ['ipmitool', 'redfish'] as const;
/**
 * Paths a power chain (power.chain) can name: every real power driver, and wol (Wake-on-LAN, which
 * can only power on and has no state to read). A new real driver goes in both lists.
 */
export const POWER_PATHS = ['ipmitool', 'redfish', 'wol'] as const;
export type PowerPathName = (typeof POWER_PATHS)[number];
/** Paths that only power on: never asked for a status nor a power-off. */
export const POWER_ON_ONLY_PATHS: readonly PowerPathName[] = ['wol'];

/** A SHA-256 certificate fingerprint: 64 hex digits, optionally in colon-separated pairs (as openssl prints it). */
export const SHA256_FINGERPRINT_PATTERN = /^[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$/;
export const HYPERVISOR_DRIVERS = ['virsh', 'simulated'] as const;

export const STATISTIC_PATTERN = /^(mean|max|p(?:[1-9]|[1-9][0-9])(?:\.[0-9]+)?)$/;

const statistic = z
  .string()
  .regex(STATISTIC_PATTERN, { message: 'must be "mean", "max" or a percentile such as "p95" (p1 to p99.9)' })
  .describe('Statistic over the observation window: mean, max, or a percentile pNN (p95, p99, p99.9).');

function resourceThresholds(d: (typeof DEFAULTS.thresholds)['cpu' | 'memory'], resource: string) {
  return z
    .strictObject({
      underloadRatio: ratio(`A host whose ${resource} use stays below this share of capacity is underloaded.`).default(d.underloadRatio),
      targetRatio: ratio(`No host is filled above this share of its ${resource} capacity by a migration.`).default(d.targetRatio),
      overloadRatio: ratio(`A host above this share of its ${resource} capacity is overloaded and sheds VMs.`).default(d.overloadRatio),
      windowSeconds: positiveSeconds(`Observation window over which ${resource} use is summarised.`).default(d.windowSeconds),
      statistic: statistic.default(d.statistic),
    })
    .describe(`Thresholds for ${resource}, as ratios of the host's capacity.`);
}

/**
 * How a host's CPU demand is predicted from the VMs placed on it (see src/planner/host-demand.ts).
 * The host is sized for the largest of the listed predictors, and never below what its VMs use now.
 */
const hostCpuPredictor = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('sum-of-vms'),
        statistic: statistic.optional().describe("Each VM's statistic over the window (default: thresholds.cpu.statistic)."),
      })
      .describe("Sum of each VM's own statistic (its peak when the statistic is max): VMs assumed to peak together."),
    z
      .strictObject({
        kind: z.literal('peak-of-sum'),
        statistic: statistic.default('max').describe('Statistic of the summed samples over the window.'),
      })
      .describe("The statistic of the sum of the VMs' samples, moment by moment, over the window: what the VMs used together."),
    z
      .strictObject({
        kind: z.literal('n-sigma'),
        sigmas: z.number().nonnegative().default(3).describe('How many standard deviations above the mean.'),
      })
      .describe("Mean plus N standard deviations of the sum of the VMs' samples over the window (Bashir et al., EuroSys 2021)."),
  ])
  .describe('One predictor of a host\'s CPU demand from the VMs on it.');

const sshSchema = z
  .strictObject({
    address: z.string().min(1).optional().describe('Address or name to connect to (defaults to the host name).'),
    port: z.number().int().min(1).max(65535).optional().describe(`SSH port (default ${DEFAULTS.host.sshPort}).`),
    user: z.string().min(1).optional().describe(`SSH user (default ${DEFAULTS.host.sshUser}).`),
    keyFile: filePath('Private key file. Never inline: a path (a systemd credential path works).').optional(),
    knownHostsFile: filePath('known_hosts file used to verify the host key; unknown or changed keys are refused.').optional(),
  })
  .describe('How to reach the host over SSH.');

const redfishBmcSchema = z
  .strictObject({
    caFile: filePath("CA certificate (PEM) that signed the BMC's HTTPS certificate; the certificate must also name the address (IP or DNS SAN). Relative to the policy file.").optional(),
    certificateSha256: z
      .string()
      .regex(SHA256_FINGERPRINT_PATTERN, { message: 'must be a SHA-256 fingerprint: 64 hex digits, with or without colons (openssl x509 -noout -fingerprint -sha256)' })
      .optional()
      .describe("The BMC's HTTPS certificate pinned by its SHA-256 fingerprint (for a self-signed BMC certificate); checked before anything is sent."),
    // No .default(false): a host's own redfish section must not override an inherited true with it.
    insecureSkipVerify: z
      .boolean()
      .optional()
      .describe('Do not verify the BMC certificate at all (anyone on the path can read the BMC password). Logged as a warning at every start. Default false.'),
    systemId: z
      .string()
      .min(1)
      .optional()
      .describe('The member of /redfish/v1/Systems to act on, when the BMC lists several (e.g. System.Embedded.1); discovered when it lists one.'),
  })
  .describe('Redfish settings of this BMC (bmc.driver or power.driver redfish): how its HTTPS certificate is verified.');

const bmcSchema = z
  .strictObject({
    driver: z
      .enum(BMC_DRIVERS)
      .optional()
      .describe('Power driver for this host: ipmitool or redfish (default: power.driver).'),
    address: z.string().min(1).optional().describe('BMC address (IPMI over LAN, or the Redfish service host).'),
    port: z.number().int().min(1).max(65535).optional().describe('BMC port (default 623 UDP for ipmitool, 443 TCP for redfish).'),
    user: z.string().min(1).optional().describe('BMC user.'),
    passwordFile: filePath('File holding the BMC password (first line). Never inline.').optional(),
    redfish: redfishBmcSchema.optional(),
  })
  .describe("The host's baseboard management controller, for power on and off.");

const powerChain = (what: string) =>
  z.array(z.enum(POWER_PATHS)).min(1, { message: 'list at least one power path' }).describe(what);

const wolSchema = z
  .strictObject({
    mac: z.string().min(1).optional().describe("The MAC address of the host's wake-capable NIC (52:54:00:12:34:56 or 52-54-00-12-34-56)."),
    broadcast: z
      .string()
      .min(1)
      .optional()
      .describe("IPv4 address the magic packet is sent to (default: the interface's broadcast address when interface is set, else 255.255.255.255)."),
    port: z.number().int().min(1).max(65535).optional().describe(`UDP port of the magic packet (default ${DEFAULTS.host.wolPort}).`),
    interface: z.string().min(1).optional().describe('Network interface to send from (its IPv4 address is the source), e.g. the management VLAN.'),
  })
  .describe('Wake-on-LAN: a power-on path for power.chain (power-on only; its result is read through the chain\'s other paths or the hypervisor).');

const hostPowerSchema = z
  .strictObject({
    chain: powerChain('Power paths of this host, tried in order (overrides power.chain).').optional(),
    idleWatts: z.number().nonnegative().optional().describe('Power drawn when on and idle, in watts.'),
    maxWatts: z.number().positive().optional().describe('Power drawn at 100 % CPU, in watts.'),
    curveWatts: z
      .array(z.number().nonnegative())
      .length(11, { message: 'must list 11 values: watts at 0 %, 10 %, ..., 100 % CPU' })
      .optional()
      .describe('Watts at 0 %, 10 %, ..., 100 % CPU (SPECpower style); overrides idle/max.'),
    bootSeconds: positiveSeconds('Expected time from power-on to a hypervisor that answers.').optional(),
  })
  .describe('Power model of the host, used to estimate what consolidation saves, and its power chain.');

const reserveSchema = z
  .strictObject({
    cpus: z.number().nonnegative().default(0).describe('CPUs kept for the host itself (not schedulable).'),
    memoryMiB: z.number().int().nonnegative().default(0).describe('Memory kept for the host itself, MiB.'),
  })
  .describe("Capacity withheld from VMs for the host's own use.");

const labels = z.record(z.string(), z.string()).describe('Free-form labels (rack, row, hardware generation).');

const hostDefaultsSchema = z
  .strictObject({
    ssh: sshSchema.optional(),
    bmc: bmcSchema.optional(),
    wol: wolSchema.optional(),
    power: hostPowerSchema.optional(),
    reserve: reserveSchema.optional(),
    labels: labels.optional(),
  })
  .describe('Values every host inherits unless it sets its own.');

const hostSchema = z
  .strictObject({
    name: z.string().min(1).describe('Host name: as libvirt on the other hosts resolves it (qemu+ssh://NAME/system).'),
    ssh: sshSchema.optional(),
    bmc: bmcSchema.optional(),
    wol: wolSchema.optional(),
    power: hostPowerSchema.optional(),
    reserve: reserveSchema.optional(),
    labels: labels.optional(),
    exclude: z.boolean().default(false).describe('Observe only: never a source, destination or power target.'),
  })
  .describe('One hypervisor host.');

const antiAffinitySchema = z
  .strictObject({
    name: z.string().min(1).describe('Group name, used in logs.'),
    vms: z.array(z.string().min(1)).min(1, { message: 'list the VMs of the group (names or globs)' }).describe('VM names or globs; no two matching VMs share a host.'),
  })
  .describe('VMs that must never share a host.');

const windowList = (what: string) =>
  z.array(z.string().min(1)).default([]).describe(what);

const proofOfBootSchema = z
  .strictObject({
    enabled: z.boolean().default(DEFAULTS.power.proofOfBoot.enabled).describe('Wake hosts consolidator has kept off for afterDays, to find one that no longer boots before demand needs it.'),
    afterDays: z
      .number()
      .positive({ message: 'must be greater than 0' })
      .default(DEFAULTS.power.proofOfBoot.afterDays)
      .describe('A host consolidator powered off and kept off this many days (fractions allowed) is due a proof of boot.'),
    maxHostsPerCycle: z.number().int().positive().default(DEFAULTS.power.proofOfBoot.maxHostsPerCycle).describe('Proofs of boot planned in one cycle, at most (they run at once).'),
    maxHostsPerDay: z.number().int().positive().default(DEFAULTS.power.proofOfBoot.maxHostsPerDay).describe('Proofs of boot started in any 24 h, at most, failed ones included.'),
    minOnSeconds: seconds('A host that passed its proof of boot is not emptied or powered off again for at least this long (and hostCooldownSeconds).').default(
      DEFAULTS.power.proofOfBoot.minOnSeconds,
    ),
    windows: windowList('If set, proofs of boot happen only in minutes matching one of these cron expressions (instead of windows.active); never in windows.quiet.'),
  })
  .describe('Proof of boot: wake hosts kept off for long, in an active window, and check that their hypervisor answers.');

export const PolicySchema = z
  .strictObject({
    $schema: z.string().optional().describe('Path or URL of the JSON Schema, for editors.'),
    version: z.literal(1, { message: 'must be 1 (the only policy version so far)' }).describe('Policy format version.'),
    mode: z.enum(['enforce', 'dry-run']).default(DEFAULTS.mode).describe('dry-run plans and logs but touches nothing; enforce acts.'),
    schedule: z.string().min(1).default(DEFAULTS.schedule).describe('When cycles run: a cron expression (5 fields, or 6 with seconds).'),
    timeZone: z.string().min(1).default(DEFAULTS.timeZone).describe('IANA time zone in which windows are read (e.g. Europe/Paris).'),
    thresholds: z
      .strictObject({
        cpu: resourceThresholds(DEFAULTS.thresholds.cpu, 'CPU').prefault({}),
        memory: resourceThresholds(DEFAULTS.thresholds.memory, 'memory').prefault({}),
      })
      .prefault({})
      .describe('Per-resource thresholds.'),
    hostDemand: z
      .strictObject({
        cpu: z
          .array(hostCpuPredictor)
          .min(1, { message: 'list at least one predictor' })
          .default([{ kind: 'sum-of-vms' }])
          .describe(
            "Predictors of a host's CPU demand from its VMs; the host is sized for the largest, and never below its VMs' current summed use. Default: the sum of each VM's statistic.",
          ),
        windowSeconds: positiveSeconds(
          "Window over which the VMs' summed samples are read by peak-of-sum and n-sigma (and sum-of-vms with its own statistic); default thresholds.cpu.windowSeconds. The daemon keeps samples for the longest window.",
        ).optional(),
      })
      .prefault({})
      .describe("How a host's demand is predicted from the VMs placed on it. Memory is always the sum of each VM's statistic: never overcommitted."),
    consolidation: z
      .strictObject({
        enabled: z.boolean().default(DEFAULTS.consolidation.enabled).describe('Empty underloaded hosts and power them off (overload relief runs regardless).'),
        underloadedForSeconds: seconds('How long a host must stay underloaded before it is emptied.').default(DEFAULTS.consolidation.underloadedForSeconds),
        overloadPredictionSeconds: seconds('If > 0, a host whose use trend crosses the overload ratio within this time is treated as overloaded.').default(
          DEFAULTS.consolidation.overloadPredictionSeconds,
        ),
        worthItHorizonSeconds: positiveSeconds('Horizon over which the energy a drain saves is weighed against its migrations.').default(
          DEFAULTS.consolidation.worthItHorizonSeconds,
        ),
        worthItMargin: z
          .number()
          .min(1, { message: 'must be at least 1 (savings must at least pay for the moves)' })
          .default(DEFAULTS.consolidation.worthItMargin)
          .describe('A drain is planned only if saved energy >= margin x estimated migration cost.'),
        drainOrder: z
          .enum(['fewest-vms', 'energy-per-gib'])
          .default(DEFAULTS.consolidation.drainOrder)
          .describe(
            'Which underloaded hosts are emptied first: energy-per-gib (the most watts saved per GiB of memory the migrations copy, the dirty rate included where known), or fewest-vms (fewest VMs, then least memory).',
          ),
        migrationOverheadWatts: z
          .number()
          .nonnegative()
          .default(DEFAULTS.consolidation.migrationOverheadWatts)
          .describe('Extra power both hosts draw while a migration runs (CPU and network for copying), watts; prices a migration.'),
      })
      .prefault({})
      .describe('When and how hosts are emptied.'),
    safety: z
      .strictObject({
        minHostsOn: count('Never fewer powered-on hosts than this.').default(DEFAULTS.safety.minHostsOn),
        spareHosts: count('Keep enough spare room to absorb this many of the largest active hosts failing (N+1 = 1).').default(DEFAULTS.safety.spareHosts),
        reserveRatio: z.number().min(0).lt(1).default(DEFAULTS.safety.reserveRatio).describe('Extra share of total active capacity kept free after consolidation.'),
        maxMigrationsPerCycle: count('Migrations planned in one cycle, at most.').default(DEFAULTS.safety.maxMigrationsPerCycle),
        maxConcurrentMigrations: z.number().int().positive().default(DEFAULTS.safety.maxConcurrentMigrations).describe('Migrations running at once, cluster-wide.'),
        maxConcurrentMigrationsPerHost: z
          .number()
          .int()
          .positive()
          .default(DEFAULTS.safety.maxConcurrentMigrationsPerHost)
          .describe('Migrations running at once into or out of one host.'),
        hostCooldownSeconds: seconds('After a host is drained, woken or fails an action, it is left alone this long.').default(DEFAULTS.safety.hostCooldownSeconds),
        vmCooldownSeconds: seconds('A VM that moved is not moved again for this long.').default(DEFAULTS.safety.vmCooldownSeconds),
        maxPowerActionsPerHostPerDay: count('Power-offs plus power-ons of one host in any 24 h.').default(DEFAULTS.safety.maxPowerActionsPerHostPerDay),
      })
      .prefault({})
      .describe('Limits that keep consolidation cautious.'),
    migration: z
      .strictObject({
        bandwidthMiBps: count('Bandwidth cap per migration in MiB/s (0 = no cap).').default(DEFAULTS.migration.bandwidthMiBps),
        timeoutSeconds: positiveSeconds('A migration still running after this is aborted (virsh domjobabort) and verified.').default(DEFAULTS.migration.timeoutSeconds),
        nonConvergence: z
          .enum(['auto-converge', 'postcopy', 'pause', 'abort'])
          .default(DEFAULTS.migration.nonConvergence)
          .describe(
            'What to do with a VM that dirties memory faster than the link copies it: auto-converge (throttle its vCPUs), postcopy (switch to post-copy after the deadline), pause (finish with the guest paused, offline), abort.',
          ),
        convergenceDeadlineSeconds: positiveSeconds('When postcopy or pause applies: how long pre-copy may run before switching.').default(
          DEFAULTS.migration.convergenceDeadlineSeconds,
        ),
        persistent: z.boolean().default(DEFAULTS.migration.persistent).describe('Define the VM persistently on the destination (--persistent).'),
        undefineSource: z.boolean().default(DEFAULTS.migration.undefineSource).describe('Remove the definition from the source (--undefinesource).'),
        expectedLinkMiBps: z
          .number()
          .positive()
          .default(DEFAULTS.migration.expectedLinkMiBps)
          .describe('Link speed used to estimate migration time when there is no cap, MiB/s.'),
      })
      .prefault({})
      .describe('How VMs are live-migrated.'),
    power: z
      .strictObject({
        driver: z
          .enum(POWER_DRIVERS)
          .default(DEFAULTS.power.driver)
          .describe('Power driver: ipmitool or redfish (real BMCs; a host may choose its own in bmc.driver) or simulated; the one power path when no power.chain applies.'),
        chain: powerChain(
          'Power paths every host tries in order (hostDefaults.power.chain and hosts[].power.chain override it): status and power-off from the first path with a state that answers; power-on from the first, re-sent, escalated, then the next. Default: [bmc.driver or power.driver].',
        ).optional(),
        resends: count('How many times a power-on that did not take (timed out or refused) is sent again through the same path before the chain escalates and moves on.').default(
          DEFAULTS.power.resends,
        ),
        softOffTimeoutSeconds: positiveSeconds('After a soft (ACPI) power-off, wait this long before a hard power-off.').default(DEFAULTS.power.softOffTimeoutSeconds),
        bootTimeoutSeconds: positiveSeconds('A host whose hypervisor does not answer this long after power-on needs attention.').default(
          DEFAULTS.power.bootTimeoutSeconds,
        ),
        expectedBootSeconds: positiveSeconds('Typical boot time, used when planning a wake-up (per-host power.bootSeconds overrides).').default(
          DEFAULTS.power.expectedBootSeconds,
        ),
        verifyTimeoutSeconds: positiveSeconds('How long to wait for the BMC to report the new power state (and, after a Wake-on-LAN power-on, for another path to read it on).').default(DEFAULTS.power.verifyTimeoutSeconds),
        proofOfBoot: proofOfBootSchema.prefault({}),
        ipmi: z
          .strictObject({
            cipherSuite: z.number().int().min(0).max(17).default(DEFAULTS.power.ipmi.cipherSuite).describe('IPMI v2 cipher suite (ipmitool -C).'),
            retries: count('ipmitool retries (-R).').default(DEFAULTS.power.ipmi.retries),
            commandTimeoutSeconds: positiveSeconds('Timeout of one ipmitool call.').default(DEFAULTS.power.ipmi.commandTimeoutSeconds),
          })
          .prefault({})
          .describe('IPMI settings for the ipmitool driver.'),
        redfish: z
          .strictObject({
            requestTimeoutSeconds: positiveSeconds('Timeout of one HTTPS request to a Redfish service (connect, TLS handshake and answer).').default(
              DEFAULTS.power.redfish.requestTimeoutSeconds,
            ),
          })
          .prefault({})
          .describe('Settings for the redfish driver.'),
      })
      .prefault({})
      .describe('How hosts are powered off and on.'),
    hypervisor: z
      .strictObject({
        driver: z.enum(HYPERVISOR_DRIVERS).default('virsh').describe('Hypervisor driver: virsh (libvirt over SSH) or simulated.'),
      })
      .prefault({})
      .describe('How hosts and VMs are observed and VMs migrated.'),
    windows: z
      .strictObject({
        active: windowList('If set, consolidation (drains and power-offs) happens only in minutes matching one of these cron expressions.'),
        quiet: windowList('Change freeze: in minutes matching one of these cron expressions nothing is migrated or powered.'),
      })
      .prefault({})
      .describe('Time windows, as cron expressions read minute by minute in timeZone.'),
    hostDefaults: hostDefaultsSchema.prefault({}),
    hosts: z.array(hostSchema).min(1, { message: 'list at least one host' }).describe('The hypervisor hosts consolidator manages.'),
    vmRules: z
      .strictObject({
        pinned: z.array(z.string().min(1)).default([]).describe('VM names or globs (* and ?) that are never moved.'),
        protected: z
          .array(z.string().min(1))
          .default([])
          .describe(
            "VM names or globs of the controller's own infrastructure (etcd, Prometheus, DNS, ...): never moved, and their hosts are never emptied or powered off. The VM the daemon itself runs in is protected without being listed.",
          ),
        honourLibvirtMetadata: z
          .boolean()
          .default(true)
          .describe('Also pin VMs whose libvirt metadata carries <consolidator:pinned/> (namespace https://consolidator.dev/xmlns/1).'),
        antiAffinity: z.array(antiAffinitySchema).default([]).describe('Groups of VMs that never share a host.'),
      })
      .prefault({})
      .describe('Rules about individual VMs.'),
    logging: z
      .strictObject({
        level: z.enum(['error', 'warn', 'info', 'debug']).default(DEFAULTS.logging.level).describe('Log level.'),
        format: z.enum(['json', 'pretty']).default(DEFAULTS.logging.format).describe('json lines (for journald) or pretty (for humans).'),
      })
      .prefault({})
      .describe('Logging.'),
    metrics: z
      .strictObject({
        listen: z
          .string()
          .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { message: 'must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464' })
          .default(DEFAULTS.metrics.listen)
          .describe('Where /metrics, /healthz and /status are served (host:port). Read-only: GET and HEAD only.'),
        webConfigFile: filePath(
          "TLS and basic auth for the metrics endpoint, in Prometheus exporter-toolkit's web-config format (tls_server_config, basic_auth_users with bcrypt hashes); relative to the policy file.",
        ).optional(),
      })
      .prefault({})
      .describe('Prometheus endpoint.'),
    control: z
      .strictObject({
        socket: z
          .string()
          .regex(/^\//, { message: 'must be an absolute path, e.g. /run/consolidator/control.sock' })
          .default(DEFAULTS.control.socket)
          .describe('The operator socket (Unix domain socket): drain, undrain, wake, plan, history, status. systemd socket activation (FileDescriptorName=control) takes precedence.'),
        group: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/, { message: 'must be a group name' })
          .default(DEFAULTS.control.group)
          .describe('Members of this group may use the operator socket (mode 0660). If the group does not exist, the socket is left to its owner (mode 0600) and a warning is logged.'),
      })
      .prefault({})
      .describe('The operator socket: who may drain, wake and plan through the running daemon.'),
    stateDirectory: z.string().min(1).default(DEFAULTS.stateDirectory).describe('Where the daemon keeps its state file (systemd StateDirectory).'),
    recording: z
      .strictObject({
        enabled: z
          .boolean()
          .default(DEFAULTS.recording.enabled)
          .describe(
            'Record what every cycle observes (per host: capacity, CPU and memory use, power state, BMC watts; per VM: host, size, CPU and memory use), in dry-run and enforce mode, to stateDirectory/recording/ (one gzip\'d NDJSON file per day), for "consolidator simulate --recording" and "consolidator report".',
          ),
        retentionDays: z
          .number()
          .int()
          .positive({ message: 'must be at least 1' })
          .default(DEFAULTS.recording.retentionDays)
          .describe('Files of days older than this are removed.'),
        maxBytes: z
          .number()
          .int()
          .min(1024 * 1024, { message: 'must be at least 1048576 (1 MiB)' })
          .default(DEFAULTS.recording.maxBytes)
          .describe('The recording folder never holds more than this many bytes: the oldest days go first.'),
      })
      .prefault({})
      .describe('The recording of what the daemon observes (never fails a cycle: a write error is a warning and consolidator_recording_errors_total).'),
    ha: z
      .strictObject({
        name: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { message: 'must be a name of letters, digits, ".", "_" and "-" (at most 63)' })
          .optional()
          .describe("This controller's name, unique among the controllers (default: the machine's host name). Shown as the leader in status and in refusals."),
        endpoints: z
          .array(z.string().regex(/^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?\/?$/, { message: 'must be an etcd client URL, e.g. https://10.0.0.1:2379' }))
          .min(1, { message: 'list at least one etcd member' })
          .describe('Client URLs of the etcd members (http:// or https://).'),
        tls: z
          .strictObject({
            caFile: filePath('CA certificate that signed the etcd members\' certificates (PEM); relative to the policy file.').optional(),
            certFile: filePath('Client certificate for etcd (PEM), if etcd asks for one; relative to the policy file.').optional(),
            keyFile: filePath('Key of the client certificate (PEM); never inline; relative to the policy file.').optional(),
          })
          .optional()
          .describe('TLS to etcd: the CA to trust and a client certificate.'),
        keyPrefix: z
          .string()
          .regex(/^\/([A-Za-z0-9._-]+\/)*$/, { message: 'must start and end with "/", e.g. /consolidator/' })
          .default(DEFAULTS.ha.keyPrefix)
          .describe('Where in etcd the controllers keep the leader key, the step record and the state (one prefix per managed cluster).'),
        leaseTtlSeconds: z
          .number()
          .int()
          .min(3, { message: 'must be at least 3 s' })
          .max(300, { message: 'must be at most 300 s' })
          .default(DEFAULTS.ha.leaseTtlSeconds)
          .describe('TTL of the leader lease: a dead leader is replaced within about this long; a leader that cannot renew stops acting before it runs out.'),
        requestTimeoutMs: z.number().int().min(100).max(60_000).default(DEFAULTS.ha.requestTimeoutMs).describe('Timeout of one request to one etcd member, ms.'),
      })
      .optional()
      .describe('High availability: several controllers, one leader, elected and fenced on etcd; the state in etcd. Absent: a single controller, state in stateDirectory.'),
    simulation: z
      .strictObject({
        workload: z.string().min(1).describe('Trace folder (PlanetLab or Bitbrains format), relative to the policy file.'),
        vms: z.number().int().positive().optional().describe('Use only the first N VMs of the workload.'),
        cores: z.number().positive().describe('CPU cores of every simulated host.'),
        memoryMiB: z.number().int().positive().describe('Memory of every simulated host, MiB.'),
        speedup: z.number().positive().default(DEFAULTS.simulation.speedup).describe('Simulated seconds per real second.'),
        startAtSeconds: z.number().nonnegative().default(0).describe('Where in the trace the simulation starts.'),
        traceStartsAt: z.iso
          .datetime({ offset: true })
          .optional()
          .describe(
            'The date and time of the trace\'s first sample (ISO 8601): the simulated clock starts there, so every timestamp the demo shows is a real date. Default: the workload folder\'s name when it is a date (PlanetLab\'s 20110303), else midnight UTC of the day the daemon starts.',
          ),
        initialPlacement: z
          .enum(['power-aware-best-fit', 'first-fit'])
          .default('power-aware-best-fit')
          .describe('How VMs are placed at the start: power-aware-best-fit spreads them thinly, first-fit packs them.'),
        migrationMiBps: z.number().positive().default(DEFAULTS.simulation.migrationMiBps).describe('Simulated migration speed, MiB/s.'),
        planetLabVmMemoryMiB: z.number().int().positive().default(DEFAULTS.simulation.planetLabVmMemoryMiB).describe('Memory of PlanetLab VMs (the trace has none).'),
        stopAtEnd: z.boolean().default(true).describe('Stop the daemon (exit 0, with a summary) when the trace ends.'),
      })
      .optional()
      .describe('The simulated datacenter behind the simulated drivers (the demo); hosts are the policy\'s hosts.'),
  })
  .describe('consolidator policy');

export type PowerDriverName = (typeof POWER_DRIVERS)[number];
export type PolicyInput = z.input<typeof PolicySchema>;
export type Policy = z.output<typeof PolicySchema>;
export type HostPolicy = Policy['hosts'][number];
export type ResourceThresholds = Policy['thresholds']['cpu'];
export type HostCpuPredictor = Policy['hostDemand']['cpu'][number];

/** The JSON Schema for editors (YAML language server), generated from the zod schema. */
export function policyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(PolicySchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { ...schema, $id: 'https://consolidator.dev/schema/policy-v1.json', title: 'consolidator policy' };
}
