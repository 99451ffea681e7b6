import { Counter, Gauge, type Registry } from 'prom-client';
import { ETCD_OPS, type EtcdRequestEvent } from './http-etcd-client.js';

/** Shared with the single-node daemon (it leads, always 1): the same name and help on both sides. */
export const LEADER_METRIC = 'consolidator_leader';
const LEADER_HELP =
  '1 on the controller that leads (the one that runs cycles and acts), 0 on one that does not. Without HA (policy section ha absent: a single controller) a running daemon leads: always 1.';

/**
 * The HA mode's metrics, on the daemon's one registry: who leads, how often that changed, whether
 * etcd answers, fences refused, and the etcd traffic (requests and bytes) the HA mode costs.
 */
export class HaMetrics {
  readonly leader: Gauge;
  readonly leaderChangesTotal: Counter;
  readonly etcdOk: Gauge;
  readonly etcdRequestsTotal: Counter<'op' | 'result'>;
  readonly etcdBytesTotal: Counter<'direction'>;

  constructor(registry: Registry) {
    const registers = [registry];
    // The single-node metrics may already have registered it: one series, set by whoever knows.
    this.leader = (registry.getSingleMetric(LEADER_METRIC) as Gauge | undefined) ?? new Gauge({ name: LEADER_METRIC, help: LEADER_HELP, registers });
    this.leaderChangesTotal = new Counter({
      name: 'consolidator_leader_changes_total',
      help: 'Changes of the leader this controller has seen (another controller, this one, or none).',
      registers,
    });
    this.etcdOk = new Gauge({ name: 'consolidator_ha_etcd_ok', help: '1 while etcd answers this controller, 0 once nothing succeeded for a lease renewal interval.', registers });
    this.etcdRequestsTotal = new Counter({ name: 'consolidator_etcd_requests_total', help: 'Requests to etcd, by operation and result.', labelNames: ['op', 'result'], registers });
    this.etcdBytesTotal = new Counter({ name: 'consolidator_etcd_bytes_total', help: 'Bytes of etcd request and response bodies (JSON gateway), by direction.', labelNames: ['direction'], registers });
    this.leader.set(0);
    this.etcdOk.set(1);
    for (const op of ETCD_OPS) for (const result of ['ok', 'error']) this.etcdRequestsTotal.inc({ op, result }, 0);
    for (const direction of ['sent', 'received']) this.etcdBytesTotal.inc({ direction }, 0);
  }

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  countRequest(e: EtcdRequestEvent): void {
    this.etcdRequestsTotal.inc({ op: e.op, result: e.ok ? 'ok' : 'error' });
    this.etcdBytesTotal.inc({ direction: 'sent' }, e.bytesSent);
    this.etcdBytesTotal.inc({ direction: 'received' }, e.bytesReceived);
  }
}
