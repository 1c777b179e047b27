import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { ScSourceGate } from '../l2tp/sc-gate';

/**
 * The UDP edge of the L2TP tunnel. The socket stays unconnected because an SC
 * may answer the SCCRQ from another port than 1701 (RFC 2661 8.1, RFC 5571
 * 2.1); the L2TP core decides which source it locks onto and tells us through
 * `retarget`. Datagrams from any other address than the SC's are dropped here
 * and counted: nobody but the SC gets bytes into the protocol cores.
 */

export interface Endpoint {
  address: string;
  port: number;
}

export const endpointKey = (e: Endpoint): string => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);

export function parseEndpointKey(key: string): Endpoint {
  const m = /^\[(.+)\]:(\d+)$/.exec(key) ?? /^([^:]+):(\d+)$/.exec(key);
  if (!m) throw new Error(`bad endpoint "${key}"`);
  return { address: m[1], port: Number(m[2]) };
}

export type DatagramHandler = (data: Buffer, from: string) => void;

/** The tunnel's UDP edge as the agent's Connection drives it: UdpTransport (Node's dgram) and NativeUdpTransport (the addon) both implement it. */
export interface DatagramTransport {
  readonly drops: Record<string, number>;
  readonly remote: Endpoint;
  readonly local: Endpoint;
  onDatagram(h: DatagramHandler): void;
  retarget(from: string): void;
  send(bytes: Uint8Array): void;
  close(): void;
}

/** The address the kernel would use as source towards `remote` (route lookup via a throwaway connected socket). */
export async function sourceAddressFor(remote: Endpoint): Promise<string> {
  const s = dgram.createSocket(isIP(remote.address) === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.connect(remote.port, remote.address, () => res());
    });
    const a = s.address().address;
    // A downed link can leave the kernel answering with the unspecified address instead of failing.
    if (a === '0.0.0.0' || a === '::') throw new Error(`no route to ${remote.address}`);
    return a;
  } finally {
    s.close();
  }
}

export class UdpTransport implements DatagramTransport {
  private peer: Endpoint;
  private handler: DatagramHandler = () => {};
  readonly drops: Record<string, number> = {};
  private closed = false;
  /** Cached at bind: dgram throws when asked for the address of a closed socket. */
  private localEp: Endpoint = { address: '', port: 0 };
  /** Issue 16 item 7: the dialled address only, or (opt-in) the SCCRP's source. */
  private readonly gate: ScSourceGate;

  private constructor(
    private readonly sock: dgram.Socket,
    readonly sc: Endpoint,
    acceptOtherAddress: boolean,
  ) {
    this.peer = { ...sc };
    this.gate = new ScSourceGate(sc.address, acceptOtherAddress);
  }

  /** Opens a socket for talking to `sc`, bound to `localAddress` (any if omitted) and an ephemeral port. */
  static async open(sc: Endpoint, localAddress?: string, opts: { acceptOtherAddress?: boolean } = {}): Promise<UdpTransport> {
    const family = isIP(sc.address);
    if (family === 0) throw new Error(`SC address "${sc.address}" is not an IP address`);
    const sock = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
    const t = new UdpTransport(sock, sc, opts.acceptOtherAddress ?? false);
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.bind(0, localAddress, () => {
        sock.off('error', rej);
        res();
      });
    });
    const a = sock.address();
    t.localEp = { address: a.address, port: a.port };
    sock.on('message', (msg, rinfo) => t.onMessage(msg, rinfo));
    // Send errors (e.g. ICMP port unreachable surfacing as ECONNREFUSED) are transient
    // for a datagram protocol: count them; the L2TP retransmission logic decides.
    sock.on('error', () => t.count('socket-error'));
    return t;
  }

  private count(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.gate.admits(rinfo.address)) {
      this.count('foreign-source');
      return;
    }
    this.handler(msg, endpointKey({ address: rinfo.address, port: rinfo.port }));
  }

  onDatagram(h: DatagramHandler): void {
    this.handler = h;
  }

  /** The L2TP core locked onto a reply source; send there from now on (same address, maybe another port). */
  retarget(from: string): void {
    const e = parseEndpointKey(from);
    if (this.gate.latch(e.address)) this.peer = e;
  }

  get remote(): Endpoint {
    return this.peer;
  }

  get local(): Endpoint {
    return this.localEp;
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.sock.send(bytes, this.peer.port, this.peer.address, (err) => {
      if (err) this.count('send-error');
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }
}
