/** Reading opkg packages in tests: a tar reader of our own (not the tar that wrote them) and control-file fields. */

export interface Member {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  type: string;
  data: Buffer;
}

/** Reads a (GNU or ustar) tar; enough for what tar --format=gnu writes here. */
export function untar(buf: Buffer): Member[] {
  const out: Member[] = [];
  const num = (b: Buffer) => Number.parseInt(b.toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = num(h.subarray(124, 136));
    const type = String.fromCharCode(h[156] || 48);
    const data = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    const prefix = h.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
    let name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    if (longName) name = longName;
    else if (prefix && h.subarray(257, 263).toString('latin1') === 'ustar\0') name = `${prefix}/${name}`;
    longName = undefined;
    out.push({ name, mode: num(h.subarray(100, 108)), uid: num(h.subarray(108, 116)), gid: num(h.subarray(116, 124)), mtime: num(h.subarray(136, 148)), type, data });
  }
  return out;
}

export function control(text: string): Map<string, string> {
  const m = new Map<string, string>();
  let last = '';
  for (const line of text.split('\n')) {
    if (line.startsWith(' ') && last) m.set(last, `${m.get(last)}\n${line}`);
    else if (line) {
      const i = line.indexOf(':');
      last = line.slice(0, i);
      m.set(last, line.slice(i + 1).trim());
    }
  }
  return m;
}
