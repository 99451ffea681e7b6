/** Domain XML for the lab's tiny guests: 1 vCPU, no NIC, SeaBIOS, no disk unless one is given. */

export interface GuestSpec {
  readonly name: string;
  readonly memoryMiB: number;
  readonly vcpus?: number;
  /** An option ROM SeaBIOS runs at boot (see dirty-rom.ts); without one the guest idles. */
  readonly optionRom?: string;
  /** A file QEMU copies into guest RAM at 16 MiB at boot (random bytes: pages a migration must really send). */
  readonly fillFile?: string;
  /** Adds <consolidator:pinned/> to the domain's metadata. */
  readonly pinned?: boolean;
  /** A raw file attached as disk vda (as the host sees the path: a host's /var/lib/libvirt is its own). */
  readonly disk?: string;
}

const FILL_ADDRESS = '0x1000000';
const PINNED_NAMESPACE = 'https://consolidator.dev/xmlns/1';

export function domainXml(spec: GuestSpec, accel: 'qemu' | 'kvm'): string {
  const qemuArgs = [
    ...(spec.optionRom ? ['-option-rom', spec.optionRom] : []),
    ...(spec.fillFile ? ['-device', `loader,file=${spec.fillFile},addr=${FILL_ADDRESS},force-raw=on`] : []),
  ];
  return `<domain type='${accel}'${qemuArgs.length > 0 ? " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'" : ''}>
  <name>${spec.name}</name>
  <memory unit='MiB'>${spec.memoryMiB}</memory>
  <currentMemory unit='MiB'>${spec.memoryMiB}</currentMemory>
  <vcpu>${spec.vcpus ?? 1}</vcpu>
${spec.pinned ? `  <metadata><consolidator:pinned xmlns:consolidator='${PINNED_NAMESPACE}'/></metadata>\n` : ''}  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${spec.disk ? `    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${spec.disk}'/><target dev='vda' bus='virtio'/></disk>\n` : ''}    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='virtio'/>
  </devices>
${qemuArgs.length > 0 ? `  <qemu:commandline>\n${qemuArgs.map((a) => `    <qemu:arg value='${a}'/>`).join('\n')}\n  </qemu:commandline>\n` : ''}</domain>
`;
}
