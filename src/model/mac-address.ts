/** Ethernet MAC addresses as the policy writes them (wol.mac). */

const MAC_PATTERN = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i;

/**
 * The 6 bytes of a MAC written as six hex pairs separated by ':' or '-' (one separator throughout),
 * or why it is not one: a NIC's own address is unicast (the low bit of the first byte clear) and not
 * all zeros.
 */
export function parseMac(text: string): { ok: true; bytes: Buffer } | { ok: false; problem: string } {
  if (!MAC_PATTERN.test(text)) return { ok: false, problem: 'is not a MAC address (six hex pairs such as 52:54:00:12:34:56 or 52-54-00-12-34-56)' };
  const bytes = Buffer.from(text.replace(/[:-]/g, ''), 'hex');
  if (bytes.every((b) => b === 0)) return { ok: false, problem: 'is all zeros: not the address of a NIC' };
  if (((bytes[0] ?? 0) & 1) === 1) return { ok: false, problem: "is a multicast or broadcast address: a NIC's own MAC is unicast" };
  return { ok: true, bytes };
}

