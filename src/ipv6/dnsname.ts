import { fail } from './errors';

/**
 * Uncompressed DNS wire-format name lists, as carried by the RA DNSSL option
 * (RFC 8106 5.2) and the DHCPv6 Domain Search List option (RFC 3646 / RFC 8415
 * 10). Names end up in resolver configuration, so only letters, digits, '-' and
 * '_' are accepted in labels: a name with anything else is dropped rather than
 * passed on.
 */

export const MAX_NAME_WIRE_LENGTH = 255;
export const MAX_LABEL_LENGTH = 63;
export const MAX_NAMES = 32;

const LABEL_CHAR = /^[A-Za-z0-9_-]+$/;

export function isValidDomainName(name: string): boolean {
  const labels = name.replace(/\.$/, '').split('.');
  if (labels.length === 0 || (labels.length === 1 && labels[0] === '')) return false;
  let wire = 1;
  for (const l of labels) {
    if (l.length === 0 || l.length > MAX_LABEL_LENGTH || !LABEL_CHAR.test(l)) return false;
    wire += l.length + 1;
  }
  return wire <= MAX_NAME_WIRE_LENGTH;
}

/** Concatenated wire-format names; throws RangeError for a name we would not decode. */
export function encodeDnsNames(names: readonly string[]): Uint8Array {
  const parts: number[] = [];
  for (const name of names) {
    if (!isValidDomainName(name)) throw new RangeError(`invalid domain name ${JSON.stringify(name)}`);
    for (const l of name.replace(/\.$/, '').split('.')) {
      parts.push(l.length);
      for (let i = 0; i < l.length; i++) parts.push(l.charCodeAt(i));
    }
    parts.push(0);
  }
  return Uint8Array.from(parts);
}

/**
 * Decodes a run of names filling `bytes`. A zero byte where a name would start is
 * an empty (root) name or padding and is skipped. Structural faults (compression
 * pointers, a label running past the end, an over-long name) throw; names with
 * characters we refuse are left out.
 */
export function decodeDnsNames(bytes: Uint8Array, maxNames = MAX_NAMES): string[] {
  const names: string[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (bytes[off] === 0) {
      off++;
      continue;
    }
    const labels: string[] = [];
    let wire = 1;
    let ok = true;
    for (;;) {
      if (off >= bytes.length) fail('truncated', 'domain name without terminating zero');
      const len = bytes[off++]!;
      if (len === 0) break;
      if (len > MAX_LABEL_LENGTH) fail('malformed', 'compressed or over-long label');
      if (off + len > bytes.length) fail('truncated', 'label runs past the end');
      wire += len + 1;
      if (wire > MAX_NAME_WIRE_LENGTH) fail('malformed', 'domain name longer than 255 bytes');
      const label = String.fromCharCode(...bytes.subarray(off, off + len));
      if (!LABEL_CHAR.test(label)) ok = false;
      labels.push(label);
      off += len;
    }
    if (!ok) continue;
    if (names.length >= maxNames) fail('bounds', 'too many domain names');
    names.push(labels.join('.'));
  }
  return names;
}
