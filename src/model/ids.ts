import { ConsolidatorError } from '../errors.js';

export type HostId = string;
export type VmId = string;

/**
 * Host names as operators write them in the policy and as they appear in qemu+ssh:// URIs:
 * DNS names or IPv4 addresses. Checked before any remote use, so nothing odd reaches a shell.
 */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** libvirt domain names: letters, digits and a few punctuation marks, no whitespace or slashes. */
const DOMAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+:@-]{0,199}$/;

export function isValidHostName(name: string): boolean {
  return HOST_NAME.test(name);
}

export function isValidDomainName(name: string): boolean {
  return DOMAIN_NAME.test(name);
}

export function assertHostName(name: string): HostId {
  if (!isValidHostName(name)) {
    throw new ConsolidatorError('INVALID_NAME', `not a valid host name: ${JSON.stringify(name)}`);
  }
  return name;
}

export function assertDomainName(name: string): VmId {
  if (!isValidDomainName(name)) {
    throw new ConsolidatorError('INVALID_NAME', `not a valid libvirt domain name: ${JSON.stringify(name)}`);
  }
  return name;
}
