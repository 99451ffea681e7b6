#!/usr/bin/env bash
# Installs what the whole test suite needs on a fresh Debian machine (CI or a developer's), and
# nothing when it is already there. Needs root for apt-get. Idempotent.
set -euo pipefail

need_pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("${@:2}"); }
need ipmitool ipmitool
need ipmi_sim openipmi
need sshd openssh-server
need ssh openssh-client
need libvirtd libvirt-daemon libvirt-daemon-driver-qemu
need virsh libvirt-clients
need qemu-system-x86_64 qemu-system-x86 qemu-utils ipxe-qemu seabios
need prometheus prometheus
need promtool prometheus
need systemd-analyze systemd
need lintian lintian
need man man-db
need tini tini
need ip iproute2
# HA tests (test/integration/etcd-ha.test.ts, ha-daemons.test.ts, test/e2e/ha-failover.test.ts): a real etcd cluster, TLS certificates by openssl.
need etcd etcd-server
need etcdctl etcd-client
need openssl openssl
# The Redfish cross-check (test/integration/redfish-clients.test.ts): DMTF's redfishtool and OpenStack's sushy, from Debian.
need redfishtool redfishtool
/usr/bin/python3 -c 'import sushy' >/dev/null 2>&1 || need_pkgs+=(python3-sushy)
# The real-systemd test (test/integration/systemd-service.test.ts): its Debian 13 image and container.
need debootstrap debootstrap
need systemd-nspawn systemd-container
need nsenter util-linux
# debootstrap checks trixie's Release signature with it (the keyring of Debian 12 and later has trixie's keys).
[[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || need_pkgs+=(debian-archive-keyring)

if ((${#need_pkgs[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: missing ${need_pkgs[*]} and not root: install them or run as root" >&2
    exit 1
  fi
  # No init system here: keep package scripts from starting root-namespace daemons (sshd, openipmi).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  echo "install-test-deps: apt-get install ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [[ $(id -u) -eq 0 ]]; then
  # libvirt's QEMU driver resolves its compiled-in user and group at start-up, even with user=root.
  getent group kvm >/dev/null || addgroup --system kvm >/dev/null
  getent group libvirt-qemu >/dev/null || addgroup --system libvirt-qemu >/dev/null
  getent passwd libvirt-qemu >/dev/null ||
    adduser --system --ingroup kvm --disabled-login --disabled-password --home /var/lib/libvirt --no-create-home libvirt-qemu >/dev/null
  mkdir -p /run/sshd
fi
