import { resolveHosts, type ResolvedHost } from '../../../../src/config/resolve.js';
import { type Policy, type PolicyInput, PolicySchema } from '../../../../src/config/schema.js';

/** A parsed policy with hosts h1..hN, each with a BMC; `input` overrides top-level sections. */
export function testPolicy(hostCount: number, input: Partial<PolicyInput> = {}): { policy: Policy; hosts: ResolvedHost[] } {
  const policy = PolicySchema.parse({
    version: 1,
    hosts: Array.from({ length: hostCount }, (_, i) => ({
      name: `h${i + 1}`,
      bmc: { address: `127.0.1.${i + 1}`, user: 'admin', passwordFile: `/nonexistent/h${i + 1}-password` },
    })),
    ...input,
  });
  return { policy, hosts: resolveHosts(policy, '/') };
}
