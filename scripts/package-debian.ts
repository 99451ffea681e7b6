/** The Debian control file and maintainer scripts of consolidator's package (see scripts/package.ts). */

export const MAINTAINER = 'consolidator maintainers <maintainers@consolidator.example.org>';

export interface PackageFacts {
  readonly version: string;
  /** The lowest Node.js release the code runs on (package.json's engines.node). */
  readonly minNode: string;
  readonly installedSizeKiB: number;
}

export function debianControl(facts: PackageFacts): string {
  return [
    'Package: consolidator',
    `Version: ${facts.version}`,
    'Architecture: all',
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${facts.installedSizeKiB}`,
    // systemd-sysusers creates the user and the operators' group: the alternatives are the ones
    // debhelper's dh_installsysusers names.
    `Depends: nodejs (>= ${facts.minNode}), ipmitool, openssh-client, systemd | systemd-standalone-sysusers | systemd-sysusers`,
    'Section: admin',
    'Priority: optional',
    'Description: energy-saving VM consolidation daemon for KVM/libvirt hosts',
    ' consolidator watches the CPU and memory use of every host and VM over SSH,',
    ' live-migrates VMs off underloaded hosts with libvirt, powers the emptied',
    ' hosts off through their BMC (IPMI) and powers them on again when demand',
    ' returns. Every plan is checked against safety invariants before it runs,',
    ' and a host is powered off only after a fresh query shows it has no guests.',
    ' .',
    ' The package installs the service disabled and in dry-run mode: edit',
    ' /etc/consolidator/consolidator.yaml, then enable consolidator.service.',
    '',
  ].join('\n');
}

const HEADER = '#!/bin/sh\nset -e\n';

/** postinst, prerm and postrm. Installing never starts or enables the service: an operator does. */
export function maintainerScripts(): Record<'postinst' | 'prerm' | 'postrm', string> {
  const postinst = `${HEADER}
if [ "$1" = configure ]; then
\t# The user and the operators' group: consolidator.socket needs the group before it starts.
\tsystemd-sysusers consolidator.conf
\tif command -v systemd-tmpfiles >/dev/null 2>&1; then
\t\tsystemd-tmpfiles --create consolidator.conf || true
\tfi
\tif [ -d /run/systemd/system ]; then
\t\tsystemctl --system daemon-reload >/dev/null || true
\t\t# An upgrade restarts a running daemon on the new code (it lets running steps finish first);
\t\t# a stopped or never-started one stays as it is.
\t\t# deb-systemd-invoke honours policy-rc.d (a chroot or an image build says "do not start").
\t\tif [ -n "$2" ] && command -v deb-systemd-invoke >/dev/null 2>&1; then
\t\t\tdeb-systemd-invoke try-restart consolidator.service >/dev/null || true
\t\tfi
\tfi
fi
`;
  const prerm = `${HEADER}
if [ "$1" = remove ] && [ -d /run/systemd/system ] && command -v deb-systemd-invoke >/dev/null 2>&1; then
\t# Stopping lets running steps finish (or aborts and verifies them) and saves the state.
\tdeb-systemd-invoke stop consolidator.service consolidator.socket >/dev/null || true
fi
`;
  const postrm = `${HEADER}
if [ -d /run/systemd/system ]; then
\tsystemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
\t# What the package and the service created: the state (DynamicUser keeps it under /var/lib/private),
\t# the credentials folder, the links \`systemctl enable\` made. The system user and group stay, as
\t# Debian does for system users: files they own may remain elsewhere, and a reused id would own them.
\trm -rf /var/lib/consolidator /var/lib/private/consolidator /etc/consolidator/credentials
\trm -f /etc/systemd/system/multi-user.target.wants/consolidator.service /etc/systemd/system/sockets.target.wants/consolidator.socket
\trmdir /etc/consolidator 2>/dev/null || true
fi
`;
  return { postinst, prerm, postrm };
}
