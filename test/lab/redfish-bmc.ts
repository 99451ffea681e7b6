/**
 * A Redfish service for the lab, written after the DMTF mockups (DSP2043 public-rackmount1, and the
 * shape of an iDRAC 9): ServiceRoot, a Systems collection whose one member is not /Systems/1
 * (System.Embedded.1 by default), its ComputerSystem with UUID, PowerState and the
 * #ComputerSystem.Reset action (ResetType@Redfish.AllowableValues, or an @Redfish.ActionInfo), a Chassis
 * with Power (PowerControl[0].PowerConsumedWatts), a Manager, and SessionService/Sessions (POST to log
 * in: X-Auth-Token and Location; DELETE to log out). Basic auth is accepted too; a service without
 * sessions can be asked for. HTTPS only, on a loopback address, with the certificate the test gives.
 *
 * Power changes run the test's hooks (like test/lab/bmc.ts: onPowerOff / onPowerOn, e.g. "stop lab
 * host h1"); while a hook runs, PowerState is PoweringOff / PoweringOn, as on a real BMC.
 *
 * Knobs for fault tests: a host that ignores GracefulShutdown (or shuts down late), a BMC that accepts
 * On (and PushPowerButton) and does nothing (ForceOn and PowerCycle still work), a slow BMC (every
 * answer late), sessions that all expire at once.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type RedfishPower = 'On' | 'Off' | 'PoweringOn' | 'PoweringOff';
export type SoftOff = 'obey' | 'ignore' | { readonly afterMs: number };

export const ALL_RESET_TYPES = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'Nmi', 'ForceOn', 'PushPowerButton', 'PowerCycle'] as const;

export interface PowerChange {
  readonly to: 'on' | 'off';
  readonly resetType: string;
}
export type RedfishPowerHook = (change: PowerChange) => void | Promise<void>;

export interface RedfishBmcKnobs {
  readonly softOff: SoftOff;
  /** 'ignore': On and PushPowerButton (from off) are accepted (204) and nothing happens. */
  readonly powerOn: 'obey' | 'ignore';
  /** Every answer this late. */
  readonly delayMs: number;
  /** What ResetType@Redfish.AllowableValues lists. */
  readonly resetTypes: readonly string[];
}

export interface RedfishBmcOptions extends Partial<RedfishBmcKnobs> {
  readonly name: string;
  /** 127.0.0.1 by default (the certificate must name it). */
  readonly address?: string;
  /** 0 (the default): a free port. */
  readonly port?: number;
  readonly cert: string;
  readonly key: string;
  readonly user?: string;
  readonly password?: string;
  readonly systemId?: string;
  /** The ComputerSystem UUID, as the host's /sys/class/dmi/id/product_uuid (served as written, case kept). */
  readonly systemUuid: string;
  readonly initialPower?: 'on' | 'off';
  /** false: no SessionService (basic auth only). */
  readonly sessions?: boolean;
  /** 'actionInfo': the allowed values are in a ResetActionInfo resource, not on the action. */
  readonly allowableVia?: 'property' | 'actionInfo';
  readonly watts?: number;
  readonly onPowerOff?: RedfishPowerHook;
  readonly onPowerOn?: RedfishPowerHook;
}

export interface RedfishRequest {
  readonly atMs: number;
  readonly method: string;
  readonly path: string;
  readonly auth: 'session' | 'basic' | 'none' | 'rejected';
  readonly status: number;
  /** POST bodies other than logins (which carry the password). */
  readonly body?: unknown;
}

export interface RedfishBmc {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly user: string;
  readonly password: string;
  readonly passwordFile: string;
  readonly systemId: string;
  readonly systemUuid: string;
  power(): RedfishPower;
  /** Every HTTP request answered, oldest first. */
  requests(): readonly RedfishRequest[];
  /** The reset types POSTed, in order. */
  resets(): string[];
  /** Ids of the sessions alive now. */
  sessions(): string[];
  /** Every session token stops working (as after a BMC reboot or a session timeout). */
  expireSessions(): void;
  configure(knobs: Partial<RedfishBmcKnobs>): void;
  /** Resolves when every power change so far has run its hook; rejects with a hook's failure. */
  hooksSettled(): Promise<void>;
  stop(): Promise<void>;
}

const ROOT = '/redfish/v1';
const MANAGER_ID = 'iDRAC.Embedded.1';
const STANDBY_WATTS = 9;

export async function startRedfishBmc(options: RedfishBmcOptions): Promise<RedfishBmc> {
  const dir = await mkdtemp(join(tmpdir(), `redfish-bmc-${options.name}-`));
  const password = options.password ?? randomBytes(12).toString('base64url');
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  const bmc = new LabRedfishBmc(options, password, passwordFile, dir);
  await bmc.listen(options.address ?? '127.0.0.1', options.port ?? 0);
  return bmc;
}

class LabRedfishBmc implements RedfishBmc {
  readonly name: string;
  address = '';
  port = 0;
  readonly user: string;
  readonly systemId: string;
  readonly systemUuid: string;
  private state: RedfishPower;
  private knobs: RedfishBmcKnobs;
  private readonly server: Server;
  private readonly log: RedfishRequest[] = [];
  private readonly live = new Map<string, string>(); // token -> session id
  private hooks: Promise<void> = Promise.resolve();
  private readonly hookErrors: unknown[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly serviceUuid = randomUUID();

  constructor(
    private readonly options: RedfishBmcOptions,
    readonly password: string,
    readonly passwordFile: string,
    private readonly dir: string,
  ) {
    this.name = options.name;
    this.user = options.user ?? 'root';
    this.systemId = options.systemId ?? 'System.Embedded.1';
    this.systemUuid = options.systemUuid; // served as given: the driver normalises the case
    this.state = (options.initialPower ?? 'on') === 'on' ? 'On' : 'Off';
    this.knobs = {
      softOff: options.softOff ?? 'obey',
      powerOn: options.powerOn ?? 'obey',
      delayMs: options.delayMs ?? 0,
      resetTypes: options.resetTypes ?? ALL_RESET_TYPES,
    };
    this.server = createServer({ cert: options.cert, key: options.key }, (req, res) => void this.handle(req, res));
  }

  get url(): string {
    return `https://${this.address}:${this.port}`;
  }

  listen(address: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address, () => {
        const bound = this.server.address() as AddressInfo;
        this.address = bound.address;
        this.port = bound.port;
        resolve();
      });
    });
  }

  power(): RedfishPower {
    return this.state;
  }

  requests(): readonly RedfishRequest[] {
    return this.log;
  }

  resets(): string[] {
    return this.log.filter((r) => r.method === 'POST' && r.path.endsWith('/Actions/ComputerSystem.Reset')).map((r) => (r.body as { ResetType?: string } | undefined)?.ResetType ?? '?');
  }

  sessions(): string[] {
    return [...this.live.values()];
  }

  expireSessions(): void {
    this.live.clear();
  }

  configure(knobs: Partial<RedfishBmcKnobs>): void {
    this.knobs = { ...this.knobs, ...knobs };
  }

  async hooksSettled(): Promise<void> {
    await this.hooks;
    if (this.hookErrors.length > 0) throw new Error(`power hook failed on ${this.name}: ${String(this.hookErrors[0])}`);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.hooks.catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]?.replace(/\/+$/, '') || '/';
    if (this.knobs.delayMs > 0) await this.pause(this.knobs.delayMs);
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      this.answer(res, { method, path, auth: 'none' }, 400, error('Base.1.8.MalformedJSON', 'The request body is not JSON.'));
      return;
    }
    const isLogin = method === 'POST' && path === `${ROOT}/SessionService/Sessions`;
    const auth = this.authOf(req);
    const logged = { method, path, auth, ...(method === 'POST' && !isLogin ? { body } : {}) };
    const open = method === 'GET' && (path === '/redfish' || path === ROOT);
    if (isLogin && this.options.sessions !== false) {
      this.login(res, logged, body);
      return;
    }
    if (!open && (auth === 'none' || auth === 'rejected')) {
      res.setHeader('WWW-Authenticate', 'Basic realm="RedfishService"');
      this.answer(res, logged, 401, error('Base.1.8.NoValidSession', 'There is no valid session established with the implementation.'));
      return;
    }
    this.route(res, logged, method, path, body);
  }

  private route(res: ServerResponse, logged: Omit<RedfishRequest, 'atMs' | 'status'>, method: string, path: string, body: unknown): void {
    const system = `${ROOT}/Systems/${this.systemId}`;
    const sessionPrefix = `${ROOT}/SessionService/Sessions/`;
    if (method === 'GET') {
      const resource = this.resource(path);
      if (resource !== undefined) this.answer(res, logged, 200, resource);
      else this.answer(res, logged, 404, error('Base.1.8.ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
      return;
    }
    if (method === 'POST' && path === `${system}/Actions/ComputerSystem.Reset`) {
      this.reset(res, logged, body);
      return;
    }
    if (method === 'DELETE' && path.startsWith(sessionPrefix) && this.options.sessions !== false) {
      const id = path.slice(sessionPrefix.length);
      const token = [...this.live].find(([, sid]) => sid === id)?.[0];
      if (token === undefined) {
        this.answer(res, logged, 404, error('Base.1.8.ResourceMissingAtURI', `No session ${id}.`));
        return;
      }
      this.live.delete(token);
      this.answer(res, logged, 204, undefined);
      return;
    }
    this.answer(res, logged, 405, error('Base.1.8.OperationNotAllowed', `${method} is not allowed on ${path}.`));
  }

  private login(res: ServerResponse, logged: Omit<RedfishRequest, 'atMs' | 'status'>, body: unknown): void {
    const b = (body ?? {}) as { UserName?: unknown; Password?: unknown };
    if (b.UserName !== this.user || typeof b.Password !== 'string' || !same(b.Password, this.password)) {
      this.answer(res, { ...logged, auth: 'rejected' }, 401, error('Base.1.8.InsufficientPrivilege', 'The user name or password is not valid.'));
      return;
    }
    const id = randomBytes(8).toString('hex');
    const token = randomBytes(24).toString('hex');
    this.live.set(token, id);
    res.setHeader('X-Auth-Token', token);
    res.setHeader('Location', `${ROOT}/SessionService/Sessions/${id}`);
    this.answer(res, logged, 201, this.sessionResource(id));
  }

  private reset(res: ServerResponse, logged: Omit<RedfishRequest, 'atMs' | 'status'>, body: unknown): void {
    const type = (body as { ResetType?: unknown } | undefined)?.ResetType;
    if (typeof type !== 'string' || !this.knobs.resetTypes.includes(type)) {
      this.answer(
        res,
        logged,
        400,
        error('Base.1.8.ActionParameterValueNotInList', `The value ${JSON.stringify(type)} for the parameter ResetType is not in the list of acceptable values.`),
      );
      return;
    }
    const on = this.state === 'On' || this.state === 'PoweringOn';
    const off = this.state === 'Off' || this.state === 'PoweringOff';
    if ((type === 'On' || type === 'ForceOn') && on) {
      this.answer(res, logged, 409, error('Base.1.8.PropertyValueConflict', 'The system is already powered on.'));
      return;
    }
    if ((type === 'ForceOff' || type === 'GracefulShutdown') && off) {
      this.answer(res, logged, 409, error('Base.1.8.PropertyValueConflict', 'The system is already powered off.'));
      return;
    }
    this.answer(res, logged, 204, undefined);
    switch (type) {
      case 'On':
        if (this.knobs.powerOn === 'obey') this.change('on', type);
        break;
      case 'ForceOn':
        this.change('on', type);
        break;
      case 'ForceOff':
        this.change('off', type);
        break;
      case 'GracefulShutdown':
        this.softOff(type);
        break;
      case 'PushPowerButton':
        if (on) this.softOff(type);
        else if (this.knobs.powerOn === 'obey') this.change('on', type);
        break;
      case 'PowerCycle':
      case 'ForceRestart':
      case 'GracefulRestart':
        if (on) this.change('off', type);
        this.change('on', type);
        break;
      default: // Nmi: nothing the lab can show
    }
  }

  private softOff(type: string): void {
    const soft = this.knobs.softOff;
    if (soft === 'obey') this.change('off', type);
    else if (typeof soft === 'object') {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.change('off', type);
      }, soft.afterMs);
      this.timers.add(timer);
    }
  }

  /** The state goes through PoweringOn/Off while the hook runs (one change at a time, in order). */
  private change(to: 'on' | 'off', resetType: string): void {
    this.hooks = this.hooks.then(async () => {
      if ((to === 'on' && this.state === 'On') || (to === 'off' && this.state === 'Off')) return;
      this.state = to === 'on' ? 'PoweringOn' : 'PoweringOff';
      const hook = to === 'on' ? this.options.onPowerOn : this.options.onPowerOff;
      try {
        await hook?.({ to, resetType });
      } catch (e) {
        this.hookErrors.push(e);
      }
      this.state = to === 'on' ? 'On' : 'Off';
    });
  }

  private authOf(req: IncomingMessage): RedfishRequest['auth'] {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string') return this.live.has(token) ? 'session' : 'rejected';
    const header = req.headers.authorization;
    if (typeof header === 'string' && header.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return decoded.slice(0, colon) === this.user && same(decoded.slice(colon + 1), this.password) ? 'basic' : 'rejected';
    }
    return 'none';
  }

  private answer(res: ServerResponse, logged: Omit<RedfishRequest, 'atMs' | 'status'>, status: number, body: unknown): void {
    this.log.push({ ...logged, atMs: Date.now(), status });
    res.statusCode = status;
    res.setHeader('OData-Version', '4.0');
    if (body === undefined) {
      res.end();
      return;
    }
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(body));
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  private resource(path: string): unknown {
    const system = `${ROOT}/Systems/${this.systemId}`;
    const chassis = `${ROOT}/Chassis/${this.systemId}`;
    const manager = `${ROOT}/Managers/${MANAGER_ID}`;
    const sessions = this.options.sessions !== false;
    const ref = (id: string) => ({ '@odata.id': id });
    const resetAction: Record<string, unknown> = { target: `${system}/Actions/ComputerSystem.Reset` };
    if (this.options.allowableVia === 'actionInfo') resetAction['@Redfish.ActionInfo'] = `${system}/ResetActionInfo`;
    else resetAction['ResetType@Redfish.AllowableValues'] = [...this.knobs.resetTypes];
    const on = this.state === 'On' || this.state === 'PoweringOff';
    const resources: Record<string, unknown> = {
      '/redfish': { v1: `${ROOT}/` },
      [ROOT]: {
        '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot',
        '@odata.id': `${ROOT}/`,
        Id: 'RootService',
        Name: 'Root Service',
        RedfishVersion: '1.6.0',
        UUID: this.serviceUuid,
        Systems: ref(`${ROOT}/Systems`),
        Chassis: ref(`${ROOT}/Chassis`),
        Managers: ref(`${ROOT}/Managers`),
        ...(sessions ? { SessionService: ref(`${ROOT}/SessionService`), Links: { Sessions: ref(`${ROOT}/SessionService/Sessions`) } } : { Links: {} }),
      },
      [`${ROOT}/Systems`]: collection('#ComputerSystemCollection.ComputerSystemCollection', `${ROOT}/Systems`, 'Computer System Collection', [system]),
      [system]: {
        '@odata.type': '#ComputerSystem.v1_13_0.ComputerSystem',
        '@odata.id': system,
        Id: this.systemId,
        Name: 'System',
        SystemType: 'Physical',
        Manufacturer: 'consolidator lab',
        Model: 'Redfish test BMC',
        UUID: this.systemUuid,
        PowerState: this.state,
        Status: { State: 'Enabled', Health: 'OK' },
        // As in the mockup (sushy refuses a system without it).
        Boot: {
          BootSourceOverrideEnabled: 'Disabled',
          BootSourceOverrideTarget: 'None',
          'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Hdd', 'Cd', 'BiosSetup'],
        },
        Actions: { '#ComputerSystem.Reset': resetAction },
        Links: { Chassis: [ref(chassis)], ManagedBy: [ref(manager)] },
      },
      [`${system}/ResetActionInfo`]: {
        '@odata.type': '#ActionInfo.v1_1_2.ActionInfo',
        '@odata.id': `${system}/ResetActionInfo`,
        Id: 'ResetActionInfo',
        Name: 'Reset Action Info',
        Parameters: [{ Name: 'ResetType', Required: true, DataType: 'String', AllowableValues: [...this.knobs.resetTypes] }],
      },
      [`${ROOT}/Chassis`]: collection('#ChassisCollection.ChassisCollection', `${ROOT}/Chassis`, 'Chassis Collection', [chassis]),
      [chassis]: {
        '@odata.type': '#Chassis.v1_14_0.Chassis',
        '@odata.id': chassis,
        Id: this.systemId,
        Name: 'Computer System Chassis',
        ChassisType: 'RackMount',
        PowerState: this.state,
        Power: ref(`${chassis}/Power`),
        Links: { ComputerSystems: [ref(system)], ManagedBy: [ref(manager)] },
      },
      [`${chassis}/Power`]: {
        '@odata.type': '#Power.v1_5_0.Power',
        '@odata.id': `${chassis}/Power`,
        Id: 'Power',
        Name: 'Power',
        PowerControl: [
          { '@odata.id': `${chassis}/Power#/PowerControl/0`, MemberId: '0', Name: 'System Power Control', PowerConsumedWatts: on ? (this.options.watts ?? 180) : STANDBY_WATTS },
        ],
      },
      [`${ROOT}/Managers`]: collection('#ManagerCollection.ManagerCollection', `${ROOT}/Managers`, 'Manager Collection', [manager]),
      [manager]: { '@odata.type': '#Manager.v1_10_0.Manager', '@odata.id': manager, Id: MANAGER_ID, Name: 'Manager', ManagerType: 'BMC', Links: { ManagerForServers: [ref(system)] } },
    };
    if (sessions) {
      resources[`${ROOT}/SessionService`] = {
        '@odata.type': '#SessionService.v1_1_8.SessionService',
        '@odata.id': `${ROOT}/SessionService`,
        Id: 'SessionService',
        Name: 'Session Service',
        ServiceEnabled: true,
        SessionTimeout: 1800,
        Sessions: ref(`${ROOT}/SessionService/Sessions`),
      };
      resources[`${ROOT}/SessionService/Sessions`] = collection(
        '#SessionCollection.SessionCollection',
        `${ROOT}/SessionService/Sessions`,
        'Session Collection',
        [...this.live.values()].map((id) => `${ROOT}/SessionService/Sessions/${id}`),
      );
      for (const id of this.live.values()) resources[`${ROOT}/SessionService/Sessions/${id}`] = this.sessionResource(id);
    }
    return resources[path];
  }

  private sessionResource(id: string): unknown {
    return { '@odata.type': '#Session.v1_3_0.Session', '@odata.id': `${ROOT}/SessionService/Sessions/${id}`, Id: id, Name: 'User Session', UserName: this.user };
  }
}

function collection(type: string, id: string, name: string, members: readonly string[]): unknown {
  return { '@odata.type': type, '@odata.id': id, Name: name, Members: members.map((m) => ({ '@odata.id': m })), 'Members@odata.count': members.length };
}

function error(messageId: string, message: string): unknown {
  return { error: { code: messageId, message, '@Message.ExtendedInfo': [{ MessageId: messageId, Message: message, Severity: 'Warning' }] } };
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
