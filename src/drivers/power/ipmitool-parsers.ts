/**
 * Pure parsers for ipmitool 1.8.x output (run with -v, so session failures say why). Tested over real
 * output captured from ipmi_sim in test/fixtures/ipmitool/.
 */
import { ConsolidatorError, type ErrorCode } from '../../errors.js';

export type ChassisPowerState = 'on' | 'off';

/** What `chassis power on|off|soft|cycle|reset` acknowledged. */
export type ChassisControl = 'on' | 'off' | 'soft' | 'cycle' | 'reset';

/** `chassis power status` -> "Chassis Power is on|off". */
export function parseChassisPowerStatus(stdout: string): ChassisPowerState {
  const match = /^Chassis Power is (on|off)\s*$/m.exec(stdout);
  if (match?.[1] === 'on' || match?.[1] === 'off') return match[1];
  throw parseError('chassis power status', stdout);
}

const CONTROL_WORDS: Readonly<Record<string, ChassisControl>> = {
  'Up/On': 'on',
  'Down/Off': 'off',
  Soft: 'soft',
  Cycle: 'cycle',
  Reset: 'reset',
};

/** `chassis power <verb>` -> "Chassis Power Control: Up/On|Down/Off|Soft|Cycle|Reset". */
export function parseChassisPowerControl(stdout: string): ChassisControl {
  const match = /^Chassis Power Control: (\S+)\s*$/m.exec(stdout);
  const control = match?.[1] === undefined ? undefined : CONTROL_WORDS[match[1]];
  if (control !== undefined) return control;
  throw parseError('chassis power control', stdout);
}

/**
 * `dcmi power reading` -> watts from "Instantaneous power reading: 144 Watts", or undefined when the
 * BMC says the reading is deactivated (the number is then meaningless, usually 0).
 */
export function parseDcmiPowerReading(stdout: string): number | undefined {
  if (/^\s*Power reading state is:\s*deactivated\s*$/m.test(stdout)) return undefined;
  const match = /^\s*Instantaneous power reading:\s*(\d+(?:\.\d+)?)\s*Watts\s*$/m.exec(stdout);
  if (match?.[1] !== undefined) return Number(match[1]);
  throw parseError('dcmi power reading', stdout);
}

const GUID_BYTES = 16;

/**
 * `raw 0x06 0x37` (Get System GUID, IPMI v2.0 section 22.14: netfn App, 16 data bytes) -> the UUID as
 * Linux shows it in /sys/class/dmi/id/product_uuid, or undefined for all 0x00 ("not set") and all 0xFF
 * ("not present"), which Linux does not show at all.
 *
 * Byte order: the bytes are read as the SMBIOS Type 1 UUID field (DSP0134 section 7.2.1, SMBIOS 2.6+):
 * time_low, time_mid and time_hi_and_version little-endian, clock_seq and node in order, which is how
 * Linux (drivers/firmware/dmi_scan.c dmi_save_uuid, "%pUl") and dmidecode (dmi_system_uuid) print
 * them. Most BMCs copy the SMBIOS bytes (ipmitool's include/ipmitool/ipmi_mc.h: "Most implementations
 * like AMI MegaRAC do it the SMBIOS way"). The IPMI spec itself (section 20.8) stores the whole GUID
 * least significant byte first; a BMC that follows it to the letter yields a UUID that does not match
 * the host's, so an identity check fails closed, never on the wrong machine.
 *
 * Why raw and not `mc guid`: ipmitool 1.8.19 guesses the encoding from the version nibble and dumps 32
 * bare hex digits when it cannot (it does for ipmi_sim's GUIDs), and older versions decode differently.
 */
export function parseSystemGuid(stdout: string): string | undefined {
  const tokens = stdout.trim().split(/\s+/).filter((t) => t.length > 0);
  if (tokens.length !== GUID_BYTES || !tokens.every((t) => /^[0-9a-fA-F]{2}$/.test(t))) throw parseError('raw 0x06 0x37 (get system guid)', stdout);
  const bytes = tokens.map((t) => t.toLowerCase());
  if (bytes.every((b) => b === '00') || bytes.every((b) => b === 'ff')) return undefined;
  const at = (...indexes: number[]) => indexes.map((i) => bytes[i]).join('');
  return `${at(3, 2, 1, 0)}-${at(5, 4)}-${at(7, 6)}-${at(8, 9)}-${at(10, 11, 12, 13, 14, 15)}`;
}

/**
 * Why an ipmitool call failed, from its stderr:
 * - auth: the BMC answered and refused us (wrong password or user, cipher suite, no password given)
 * - unreachable: no answer, or no answer to the command (transient: worth asking again later)
 * - unsupported: the BMC does not implement the command (DCMI on many BMCs, ipmi_sim included; a raw
 *   command answered "Invalid command", completion code 0xC1)
 * - refused: the BMC answered the command with an error completion code
 * - other: anything else
 */
export type IpmitoolFailureKind = 'auth' | 'unreachable' | 'unsupported' | 'refused' | 'other';

export interface IpmitoolFailure {
  readonly kind: IpmitoolFailureKind;
  readonly code: ErrorCode;
  /** A short explanation for operators ("the BMC rejected the password"). */
  readonly reason: string;
  /** ipmitool's own lines, without its -v chatter. Never holds a password: ipmitool does not print it. */
  readonly said: string;
}

interface Rule {
  readonly pattern: RegExp;
  readonly kind: IpmitoolFailureKind;
  readonly reason: string;
}

const KIND_CODES: Readonly<Record<IpmitoolFailureKind, ErrorCode>> = {
  auth: 'BMC_AUTH',
  unreachable: 'BMC_UNREACHABLE',
  unsupported: 'POWER_FAILED',
  refused: 'POWER_FAILED',
  other: 'POWER_FAILED',
};

/** First match wins; ordered from the most specific. */
const RULES: readonly Rule[] = [
  // before the HMAC rule: without a password ipmitool goes on with an empty one, which the BMC rejects
  { pattern: /Unable to read password from (environment|file)/i, kind: 'auth', reason: 'ipmitool got no password' },
  { pattern: /RAKP 2 HMAC is invalid/, kind: 'auth', reason: 'the BMC rejected the password' },
  { pattern: /unauthorized name/i, kind: 'auth', reason: 'the BMC does not know this user' },
  { pattern: /invalid (authentication|integrity|confidentiality) algorithm/i, kind: 'auth', reason: 'the BMC does not support this cipher suite (ipmi.cipherSuite)' },
  { pattern: /insufficient privilege|Requested privilege level exceeds limit/i, kind: 'auth', reason: 'the BMC user lacks the privilege for this command' },
  { pattern: /Get Auth Capabilities error|Error issuing Get Channel Authentication Capabilities/i, kind: 'unreachable', reason: 'the BMC does not answer' },
  { pattern: /Address lookup for .* failed/i, kind: 'unreachable', reason: 'the BMC address does not resolve' },
  { pattern: /No response from remote controller|IPMI Request Match NOT FOUND|Unable to get Chassis Power Status/i, kind: 'unreachable', reason: 'the BMC did not answer the command in time' },
  { pattern: /DCMI request failed because: (Invalid command|Command not supported|Invalid data field)/i, kind: 'unsupported', reason: 'the BMC does not support DCMI power readings' },
  { pattern: /Unable to send RAW command \(.*\brsp=0xc1\): Invalid command/i, kind: 'unsupported', reason: 'the BMC does not support this command' },
  { pattern: /\bfailed: /, kind: 'refused', reason: 'the BMC refused the command' },
  { pattern: /Unable to establish IPMI v2 \/ RMCP\+ session/, kind: 'unreachable', reason: 'no IPMI session could be opened with the BMC' },
];

/** ipmitool -v chatter that says nothing about the failure (and would mislead: "Invalid command"). */
const CHATTER = [
  /^Loading IANA PEN Registry/,
  /^Running Get VSO Capabilities/,
  /^Invalid completion code received: Invalid command$/,
  /^Discovered IPMB address/,
  /^RAW (REQ|RSP) \(/,
];

export function classifyIpmitoolFailure(stderr: string): IpmitoolFailure {
  const lines = stderr
    .split('\n')
    // "Password: " is ipmitool's prompt (stdin is closed), "> " its -v prefix
    .map((l) => l.replace(/^Password:\s*/, '').replace(/^>\s*/, '').trim())
    .filter((l) => l.length > 0 && !CHATTER.some((c) => c.test(l)));
  const said = lines.join('; ');
  const rule = RULES.find((r) => lines.some((l) => r.pattern.test(l)));
  if (rule === undefined) return { kind: 'other', code: KIND_CODES.other, reason: said === '' ? 'ipmitool failed without a message' : 'ipmitool failed', said };
  return { kind: rule.kind, code: KIND_CODES[rule.kind], reason: rule.reason, said };
}

const EXCERPT_CHARS = 200;

function parseError(what: string, stdout: string): ConsolidatorError {
  const excerpt = stdout.trim().slice(0, EXCERPT_CHARS);
  return new ConsolidatorError('PARSE', `unexpected ipmitool ${what} output: ${JSON.stringify(excerpt)}`, { details: { command: what, output: excerpt } });
}
