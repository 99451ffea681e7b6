import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIssue, loadPolicyText } from '../../../src/config/load.js';
import { parseWebConfig } from '../../../src/config/web-config.js';

const HASH = '$2y$10$QE.478PylM0/81djYAPNneL5ya4y7L4/UJNjxOSr3j/PKS2f9Ciu2';

describe('parseWebConfig (exporter-toolkit web-config format)', () => {
  it('reads TLS files relative to its own folder, the client auth type, and the users', () => {
    const result = parseWebConfig(['tls_server_config:', '  cert_file: tls/m.crt', '  key_file: /abs/m.key', '  client_ca_file: ca.crt', '  client_auth_type: RequireAndVerifyClientCert', 'basic_auth_users:', `  prometheus: ${HASH}`].join('\n'), '/etc/consolidator/web.yml');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.tls).toEqual({ certFile: '/etc/consolidator/tls/m.crt', keyFile: '/abs/m.key', clientCaFile: '/etc/consolidator/ca.crt', clientAuthType: 'RequireAndVerifyClientCert', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
    expect([...result.value.basicAuthUsers.keys()]).toEqual(['prometheus']);
  });

  it.each([
    ['a missing key_file', ['tls_server_config:', '  cert_file: m.crt'], 'tls_server_config.key_file', /is required/],
    ['a misspelt key', ['tls_server_config:', '  cert_file: m.crt', '  key_fiel: m.key'], 'tls_server_config.key_fiel', /unknown key/],
    ['an unknown client auth type', ['tls_server_config:', '  cert_file: m.crt', '  key_file: m.key', '  client_auth_type: Always'], 'tls_server_config.client_auth_type', /must be one of NoClientCert/],
    ['a plaintext password', ['basic_auth_users:', '  prometheus: hunter2'], 'basic_auth_users.prometheus', /must be a bcrypt hash.*the value is not shown/],
    ['a setting consolidator does not implement', ['http_server_config:', '  http2: false'], 'http_server_config', /not supported by consolidator/],
  ])('reports %s with the file, line and field', (_what, lines, path, message) => {
    const result = parseWebConfig(lines.join('\n'), '/etc/consolidator/web.yml');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const issue = result.issues.find((i) => i.path === path);
    expect(issue?.file).toBe('/etc/consolidator/web.yml');
    expect(issue?.line).toBeGreaterThan(0);
    expect(issue?.message).toMatch(message);
    expect(JSON.stringify(result.issues)).not.toContain('hunter2');
  });

  it('makes a broken web config a policy error, and unreadable certificate files too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'consolidator-webconfig-'));
    await writeFile(join(dir, 'web.yml'), 'tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n');
    const policy = 'version: 1\nhypervisor: { driver: simulated }\npower: { driver: simulated }\nmetrics:\n  webConfigFile: web.yml\nhosts:\n  - name: h1\n';
    const result = await loadPolicyText(policy, join(dir, 'policy.yaml'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map(formatIssue)).toEqual([
      `${join(dir, 'web.yml')}:2:14 tls_server_config.cert_file: ${join(dir, 'missing.crt')} does not exist`,
      `${join(dir, 'web.yml')}:3:13 tls_server_config.key_file: ${join(dir, 'missing.key')} does not exist`,
    ]);
  });
});
