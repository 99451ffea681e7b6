import { ConsolidatorError, errorMessage, isConsolidatorError } from '../errors.js';
import { isValidHostName } from '../model/ids.js';
import type { RouteHandler, RouteResponse } from './control-socket.js';
import type { OperatorApi } from './operator-api.js';

/**
 * The running daemon's operator endpoints (POST, JSON): commands that change things go through the
 * daemon, so it and an operator never act on a host at the same time. Served only on the operator
 * socket (control-socket.ts), whose file permissions say who is an operator; never on the metrics
 * listener, which is read-only.
 */
export function operatorRoutes(daemon: OperatorApi): Record<string, RouteHandler> {
  return {
    '/operator/plan': post(async () => {
      const { plan, violations } = await daemon.planNow();
      return { status: 200, body: { plan, violations } };
    }),
    '/operator/drain': post(async (body) => {
      const host = hostOf(body);
      const result = await daemon.drain(host, { powerOff: flag(body, 'powerOff'), dryRun: flag(body, 'dryRun'), noWake: flag(body, 'noWake') });
      return { status: result.refused ? 409 : 200, body: result };
    }),
    '/operator/undrain': post(async (body) => {
      const result = await daemon.undrain(hostOf(body));
      return { status: result.ok ? 200 : 404, body: result };
    }),
    '/operator/wake': post(async (body) => {
      const result = await daemon.wake(hostOf(body));
      return { status: result.ok ? 200 : 404, body: result };
    }),
    '/operator/report': post(async (body) => {
      const b = (body ?? {}) as { fromMs?: unknown; toMs?: unknown; lastSeconds?: unknown; replay?: unknown };
      const ms = (v: unknown, name: string): number | undefined => {
        if (v === undefined || v === null) return undefined;
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConsolidatorError('USAGE', `"${name}" must be a time in ms since the epoch, got ${JSON.stringify(v)}`);
        return v;
      };
      const fromMs = ms(b.fromMs, 'fromMs');
      const toMs = ms(b.toMs, 'toMs');
      const last = ms(b.lastSeconds, 'lastSeconds');
      const range = { ...(fromMs === undefined ? {} : { fromMs }), ...(toMs === undefined ? {} : { toMs }) };
      return { status: 200, body: await daemon.report(range, { replay: b.replay !== false, ...(last === undefined ? {} : { lastSeconds: last }) }) };
    }),
    '/operator/history': post(async (body) => {
      const limit = typeof (body as { limit?: unknown } | undefined)?.limit === 'number' ? ((body as { limit: number }).limit) : 50;
      return { status: 200, body: { history: daemon.history(Math.max(1, Math.min(1000, limit))) } };
    }),
  };
}

function post(handler: (body: unknown) => Promise<RouteResponse>): RouteHandler {
  return async (request) => {
    if (request.method !== 'POST') return { status: 405, body: { error: 'use POST' } };
    try {
      return await handler(request.body);
    } catch (e) {
      const code = isConsolidatorError(e) ? e.code : 'INTERNAL';
      // A standby refuses, naming the leader: 409, like a drain refused for want of room.
      const status = code === 'USAGE' ? 400 : code === 'NOT_LEADER' ? 409 : 500;
      const leader = isConsolidatorError(e) ? e.details['leader'] : undefined;
      return { status, body: { error: errorMessage(e), code, ...(leader !== undefined ? { leader } : {}) } };
    }
  };
}

function hostOf(body: unknown): string {
  const host = (body as { host?: unknown } | undefined)?.host;
  if (typeof host !== 'string' || !isValidHostName(host)) throw new ConsolidatorError('USAGE', `"host" must be a host name, got ${JSON.stringify(host)}`);
  return host;
}

function flag(body: unknown, name: string): boolean {
  return (body as Record<string, unknown> | undefined)?.[name] === true;
}
