/**
 * TLS material for the lab's HTTPS services, made with openssl in a folder of the test's: a CA and a
 * server certificate it signs for 127.0.0.1 (and localhost). Each call makes a new CA, so a second call
 * gives a certificate that the first CA does not trust: the "wrong certificate" of the fault tests.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** SHA-256 of the server certificate (DER), as openssl prints it: "AB:CD:...". */
  readonly sha256: string;
}

export async function makeTestCertificates(directory: string, name: string, subjectAltName = 'IP:127.0.0.1,DNS:localhost'): Promise<TestCertificates> {
  const f = (file: string) => join(directory, `${name}-${file}`);
  const ossl = (args: string[]) => run('openssl', args, { timeout: 30_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await ossl(['req', '-x509', ...ec, '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '2', '-subj', `/CN=consolidator test CA ${name}`]);
  await writeFile(f('server.ext'), `subjectAltName=${subjectAltName}\nextendedKeyUsage=serverAuth\n`);
  await ossl(['req', ...ec, '-keyout', f('server-key.pem'), '-out', f('server.csr'), '-subj', `/CN=consolidator test BMC ${name}`]);
  await ossl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext')]);
  const cert = await readFile(f('server.pem'), 'utf8');
  return { caFile: f('ca.pem'), certFile: f('server.pem'), keyFile: f('server-key.pem'), cert, key: await readFile(f('server-key.pem'), 'utf8'), sha256: new X509Certificate(cert).fingerprint256 };
}
