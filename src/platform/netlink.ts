import { constants as osConstants } from 'node:os';
import {
  AttrStream,
  createNetlink,
  FlagsGet,
  FlagsNew,
  MessageType as NlMessageType,
  type NetlinkMessage,
  type NetlinkSocket,
  Protocol,
  parseError,
  rt,
} from 'netlink';
import { NetlinkError } from './netlink/errors';
import { needsCapability } from './privileges';
import { afOf, type IpFamily, parseIp, parsePrefix } from './netlink/ip';
import {
  type AddressInfo,
  INFINITY_LIFETIME,
  type LinkInfo,
  type LinkRef,
  type NetlinkEvent,
  ROUTE_TYPE_NUMBERS,
  type RouteInfo,
  type RouteType,
  RT_TABLE_MAIN,
  RTPROT_SOFTWIRE,
  SCOPE,
  toAddressInfo,
  toLinkInfo,
  toRouteInfo,
} from './netlink/types';

/**
 * A typed, promise-based layer over rtnetlink for what the agent provisions:
 * link state and MTU, addresses with lifetimes, routes it owns, and change
 * notifications. The socket acts in the network namespace of the process that
 * opened it.
 *
 * Requests go over one socket; notifications over a second one, opened on the
 * first subscribe. Keeping them apart matters: the kernel stamps the
 * notification caused by our own request with that request's sequence number,
 * which the library would take for the reply.
 */

export { NetlinkError } from './netlink/errors';
export { formatIp, type IpFamily, parseIp, parsePrefix } from './netlink/ip';
export * from './netlink/types';

export interface NetlinkOptions {
  /** Per-request timeout; the kernel answers at once, so this only guards bugs. */
  timeoutMs?: number;
}

export interface AddressSpec {
  link: LinkRef;
  address: string;
  prefixLength: number;
  /** Seconds (INFINITY_LIFETIME = forever); both or neither with preferredLifetime. */
  validLifetime?: number;
  preferredLifetime?: number;
  /** Skip duplicate address detection (IPv6). */
  nodad?: boolean;
  /** Do not add the on-link prefix route for the address. */
  noprefixroute?: boolean;
  /** Create or update: a later call refreshes the lifetimes of an existing address. */
  replace?: boolean;
}

export interface AddressKey {
  link: LinkRef;
  address: string;
  prefixLength: number;
}

export interface RouteSpec {
  /** CIDR; "::/0" or "0.0.0.0/0" for a default route. */
  destination: string;
  type?: RouteType;
  link?: LinkRef;
  gateway?: string;
  /** Preferred source address (RTA_PREFSRC). */
  source?: string;
  /** Route priority; the kernel's default (1024 for IPv6, 0 for IPv4) if omitted. */
  metric?: number;
  table?: number;
  /** rtm_protocol; RTPROT_SOFTWIRE by default. */
  protocol?: number;
  replace?: boolean;
}

/**
 * Which route to delete. Omitted fields match anything, except `table` (main by
 * default) and `protocol` (RTPROT_SOFTWIRE by default, so the agent cannot
 * delete a route it does not own unless it passes protocol 0, which matches any).
 */
export type RouteKey = Omit<RouteSpec, 'replace' | 'source'>;

export interface AddressFilter {
  family?: IpFamily;
  link?: LinkRef;
}

export interface RouteFilter {
  family?: IpFamily;
  table?: number;
  protocol?: number;
}

export type NetlinkListener = (event: NetlinkEvent) => void;

const NLMSG_ERROR = NlMessageType.ERROR;
const { ENOBUFS } = osConstants.errno;
const MAX_MTU = 0x7fffffff;

function describeLink(ref: LinkRef): string {
  return typeof ref === 'number' ? `#${ref}` : ref;
}

function checkLifetime(op: string, what: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= INFINITY_LIFETIME)) {
    throw new NetlinkError(op, `${what} lifetime ${v} is not 0..${INFINITY_LIFETIME}`);
  }
}

function checkU32(op: string, what: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
    throw new NetlinkError(op, `${what} ${v} is not a 32-bit unsigned integer`);
  }
}

export class Netlink {
  private closed = false;
  private events: NetlinkSocket | undefined;
  private readonly listeners = new Set<NetlinkListener>();
  /** Rejectors of requests in flight, so close() can settle them. */
  private readonly pending = new Set<(e: unknown) => void>();
  /** Tail of the request queue (see request()). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sock: NetlinkSocket,
    private readonly timeoutMs: number,
  ) {
    // Without a listener an asynchronous socket error would be thrown from the
    // native callback; a pending request still ends by its timeout.
    sock.on('error', () => {});
  }

  /** Opens a route netlink socket in the caller's network namespace. */
  static async open(opts: NetlinkOptions = {}): Promise<Netlink> {
    let sock: NetlinkSocket;
    try {
      // Unreferenced: the socket holds the event loop only while a request is pending.
      sock = createNetlink(Protocol.ROUTE, { ref: false } as Parameters<typeof createNetlink>[1]);
    } catch (e) {
      throw NetlinkError.wrap('open netlink socket', e);
    }
    return new Netlink(sock, opts.timeoutMs ?? 5000);
  }

  // ---- links --------------------------------------------------------------

  /** The ifindex of a link by name; rejects with ENODEV if there is none. */
  async linkIndex(name: string): Promise<number> {
    return (await this.getLink(name)).index;
  }

  async getLink(ref: LinkRef): Promise<LinkInfo> {
    const op = `find link ${describeLink(ref)}`;
    const data = typeof ref === 'number' ? { index: ref } : { index: 0 };
    const attrs = typeof ref === 'number' ? {} : { ifname: this.checkName(op, ref) };
    const [m] = await this.request(op, rt.MessageType.GETLINK, 0, (out) =>
      rt.formatLinkMessage({ kind: 'link', data, attrs }, out),
    );
    if (m?.kind !== 'link') throw new NetlinkError(op, 'no link in reply');
    return toLinkInfo(m);
  }

  async listLinks(): Promise<LinkInfo[]> {
    const msgs = await this.request('list links', rt.MessageType.GETLINK, FlagsGet.DUMP, (out) =>
      rt.formatLinkMessage({ kind: 'link', data: {}, attrs: {} }, out),
    );
    return msgs.flatMap((m) => (m.kind === 'link' ? [toLinkInfo(m)] : []));
  }

  async setLinkUp(ref: LinkRef, up: boolean): Promise<void> {
    const op = `set link ${describeLink(ref)} ${up ? 'up' : 'down'}`;
    const index = await this.resolve(op, ref);
    await this.request(op, rt.MessageType.SETLINK, 0, (out) =>
      rt.formatLinkMessage(
        { kind: 'link', data: { index, change: { up: true }, flags: up ? { up: true } : {} }, attrs: {} },
        out,
      ),
    );
  }

  async setMtu(ref: LinkRef, mtu: number): Promise<void> {
    const op = `set mtu ${describeLink(ref)} ${mtu}`;
    if (!Number.isInteger(mtu) || mtu < 1 || mtu > MAX_MTU) throw new NetlinkError(op, 'mtu out of range');
    const index = await this.resolve(op, ref);
    await this.request(op, rt.MessageType.SETLINK, 0, (out) =>
      rt.formatLinkMessage({ kind: 'link', data: { index }, attrs: { mtu } }, out),
    );
  }

  // ---- addresses ----------------------------------------------------------

  async addAddress(spec: AddressSpec): Promise<void> {
    const op = `${spec.replace ? 'replace' : 'add'} address ${spec.address}/${spec.prefixLength} dev ${describeLink(spec.link)}`;
    const { family, bytes, index } = await this.addressTarget(op, spec);
    checkLifetime(op, 'valid', spec.validLifetime);
    checkLifetime(op, 'preferred', spec.preferredLifetime);
    if ((spec.validLifetime === undefined) !== (spec.preferredLifetime === undefined)) {
      throw new NetlinkError(op, 'give both valid and preferred lifetimes or neither');
    }
    if (spec.validLifetime !== undefined && (spec.validLifetime === 0 || spec.preferredLifetime! > spec.validLifetime)) {
      throw new NetlinkError(op, 'need valid lifetime > 0 and preferred lifetime <= valid lifetime');
    }
    const flags: rt.AddressFlags = {};
    if (spec.nodad) flags.nodad = true;
    if (spec.noprefixroute) flags.noprefixroute = true;
    const attrs: rt.AddressAttrs = { local: bytes, address: bytes, flags };
    if (spec.validLifetime !== undefined) {
      attrs.cacheInfo = { ifaValid: spec.validLifetime, ifaPrefered: spec.preferredLifetime!, cstamp: 0, tstamp: 0 };
    }
    const how = spec.replace ? FlagsNew.CREATE | FlagsNew.REPLACE : FlagsNew.CREATE | FlagsNew.EXCL;
    await this.request(op, rt.MessageType.NEWADDR, how, (out) =>
      rt.formatAddressMessage(
        { kind: 'address', data: { family: afOf(family), prefixlen: spec.prefixLength, flags, scope: 0, index }, attrs },
        out,
      ),
    );
  }

  async deleteAddress(key: AddressKey): Promise<void> {
    const op = `delete address ${key.address}/${key.prefixLength} dev ${describeLink(key.link)}`;
    const { family, bytes, index } = await this.addressTarget(op, key);
    await this.request(op, rt.MessageType.DELADDR, 0, (out) =>
      rt.formatAddressMessage(
        {
          kind: 'address',
          data: { family: afOf(family), prefixlen: key.prefixLength, index },
          attrs: { local: bytes, address: bytes },
        },
        out,
      ),
    );
  }

  async listAddresses(filter: AddressFilter = {}): Promise<AddressInfo[]> {
    const op = 'list addresses';
    const index = filter.link === undefined ? undefined : await this.resolve(op, filter.link);
    const family = filter.family === undefined ? 0 : afOf(filter.family);
    const msgs = await this.request(op, rt.MessageType.GETADDR, FlagsGet.DUMP, (out) =>
      rt.formatAddressMessage({ kind: 'address', data: { family }, attrs: {} }, out),
    );
    return msgs.flatMap((m) => {
      const a = m.kind === 'address' ? toAddressInfo(m) : undefined;
      if (!a || (filter.family && a.family !== filter.family) || (index !== undefined && a.ifindex !== index)) return [];
      return [a];
    });
  }

  private async addressTarget(op: string, key: AddressKey): Promise<{ family: IpFamily; bytes: Buffer; index: number }> {
    let addr: ReturnType<typeof parseIp>;
    try {
      addr = parseIp(key.address);
    } catch (e) {
      throw NetlinkError.wrap(op, e);
    }
    const max = addr.family === 4 ? 32 : 128;
    if (!Number.isInteger(key.prefixLength) || key.prefixLength < 0 || key.prefixLength > max) {
      throw new NetlinkError(op, `prefix length must be 0..${max}`);
    }
    return { ...addr, index: await this.resolve(op, key.link) };
  }

  // ---- routes -------------------------------------------------------------

  async addRoute(spec: RouteSpec): Promise<void> {
    const op = `${spec.replace ? 'replace' : 'add'} ${this.describeRoute(spec)}`;
    const type = spec.type ?? 'unicast';
    if (type === 'unicast' && spec.link === undefined && spec.gateway === undefined) {
      throw new NetlinkError(op, 'a unicast route needs a device or a gateway');
    }
    if (type !== 'unicast' && spec.gateway !== undefined) throw new NetlinkError(op, `an ${type} route has no gateway`);
    const how = spec.replace ? FlagsNew.CREATE | FlagsNew.REPLACE : FlagsNew.CREATE | FlagsNew.EXCL;
    // As iproute2 does: a unicast route with no gateway is on-link (scope link);
    // IPv6 ignores scope, IPv4 refuses a gateway route with scope link.
    const scope = type === 'unicast' && spec.gateway === undefined ? SCOPE.link : SCOPE.universe;
    await this.routeRequest(
      op,
      rt.MessageType.NEWROUTE,
      how,
      spec,
      ROUTE_TYPE_NUMBERS[type],
      scope,
      spec.protocol ?? RTPROT_SOFTWIRE,
    );
  }

  async deleteRoute(key: RouteKey): Promise<void> {
    const op = `delete ${this.describeRoute(key)}`;
    // Type 0 and scope "nowhere" are the kernel's wildcards for a delete.
    const type = key.type === undefined ? 0 : ROUTE_TYPE_NUMBERS[key.type];
    await this.routeRequest(op, rt.MessageType.DELROUTE, 0, key, type, SCOPE.nowhere, key.protocol ?? RTPROT_SOFTWIRE);
  }

  async listRoutes(filter: RouteFilter = {}): Promise<RouteInfo[]> {
    const family = filter.family === undefined ? 0 : afOf(filter.family);
    const msgs = await this.request('list routes', rt.MessageType.GETROUTE, FlagsGet.DUMP, (out) =>
      rt.formatRouteMessage({ kind: 'route', data: { family }, attrs: {} }, out),
    );
    return msgs.flatMap((m) => {
      const r = m.kind === 'route' ? toRouteInfo(m) : undefined;
      if (!r) return [];
      if (filter.family !== undefined && r.family !== filter.family) return [];
      if (filter.table !== undefined && r.table !== filter.table) return [];
      if (filter.protocol !== undefined && r.protocol !== filter.protocol) return [];
      return [r];
    });
  }

  private describeRoute(spec: RouteKey): string {
    let s = `route ${spec.destination}`;
    if (spec.type && spec.type !== 'unicast') s += ` ${spec.type}`;
    if (spec.gateway !== undefined) s += ` via ${spec.gateway}`;
    if (spec.link !== undefined) s += ` dev ${describeLink(spec.link)}`;
    if (spec.table !== undefined && spec.table !== RT_TABLE_MAIN) s += ` table ${spec.table}`;
    if (spec.metric !== undefined) s += ` metric ${spec.metric}`;
    return s;
  }

  private async routeRequest(
    op: string,
    msgType: number,
    how: number,
    spec: RouteSpec,
    type: number,
    scope: number,
    protocol: number,
  ): Promise<void> {
    let dst: ReturnType<typeof parsePrefix>;
    let gateway: Buffer | undefined;
    let prefsrc: Buffer | undefined;
    try {
      dst = parsePrefix(spec.destination);
      for (const [what, text] of [
        ['gateway', spec.gateway],
        ['source', spec.source],
      ] as const) {
        if (text === undefined) continue;
        const a = parseIp(text);
        if (a.family !== dst.family) throw new Error(`${what} ${text} is not IPv${dst.family}`);
        if (what === 'gateway') gateway = a.bytes;
        else prefsrc = a.bytes;
      }
    } catch (e) {
      throw NetlinkError.wrap(op, e);
    }
    checkU32(op, 'metric', spec.metric);
    checkU32(op, 'table', spec.table);
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255)
      throw new NetlinkError(op, `protocol ${protocol} is not 0..255`);
    const table = spec.table ?? RT_TABLE_MAIN;
    const attrs: rt.RouteAttrs = { table };
    if (dst.length > 0) attrs.dst = dst.bytes;
    if (gateway) attrs.gateway = gateway;
    if (prefsrc) attrs.prefsrc = prefsrc;
    if (spec.metric !== undefined) attrs.priority = spec.metric;
    if (spec.link !== undefined) attrs.oif = await this.resolve(op, spec.link);
    const data: rt.Route = {
      family: afOf(dst.family),
      dstLen: dst.length,
      srcLen: 0,
      tos: 0,
      // rtm_table is a u8; larger ids travel in RTA_TABLE alone.
      table: table < 256 ? table : 0,
      protocol,
      scope,
      type,
    };
    await this.request(op, msgType, how, (out) => rt.formatRouteMessage({ kind: 'route', data, attrs }, out));
  }

  // ---- events -------------------------------------------------------------

  /**
   * Delivers link and address changes until the returned function is called.
   * While any listener is subscribed the notification socket keeps the process
   * alive, like a listening server; after the last unsubscribe it is closed.
   * "address-added" is also sent when an existing address changes (lifetimes
   * refreshed, DAD finished).
   */
  subscribe(listener: NetlinkListener): () => void {
    if (this.closed) throw new NetlinkError('subscribe to notifications', 'socket closed');
    if (!this.events) this.events = this.openEvents();
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.closeEvents();
    };
  }

  private openEvents(): NetlinkSocket {
    let s: NetlinkSocket;
    try {
      s = createNetlink(Protocol.ROUTE, { ref: true } as Parameters<typeof createNetlink>[1]);
      // A burst of changes (a link flap drops every address) must not overflow
      // the default buffer; ENOBUFS still surfaces as an "overrun" event.
      s.setRecvBufferSize(1 << 20);
      for (const g of [rt.MulticastGroups.LINK, rt.MulticastGroups.IPV4_IFADDR, rt.MulticastGroups.IPV6_IFADDR])
        s.addMembership(g);
    } catch (e) {
      throw NetlinkError.wrap('subscribe to notifications', e);
    }
    s.on('message', (msgs) => {
      for (const m of msgs) {
        const ev = toEvent(m);
        if (ev) this.emit(ev);
      }
    });
    s.on('error', (e) => {
      if (Math.abs(e.errno) === ENOBUFS) this.emit({ kind: 'overrun' });
      else this.emit({ kind: 'error', error: NetlinkError.wrap('receive notifications', e) });
    });
    return s;
  }

  private emit(ev: NetlinkEvent): void {
    for (const l of [...this.listeners]) l(ev);
  }

  private closeEvents(): void {
    const s = this.events;
    this.events = undefined;
    this.listeners.clear();
    s?.close();
  }

  /** Closes both sockets; pending requests reject, listeners are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeEvents();
    this.sock.close();
    for (const fail of [...this.pending]) fail(new Error('socket closed'));
  }

  // ---- plumbing -----------------------------------------------------------

  private checkName(op: string, name: string): string {
    // IFNAMSIZ is 16 including the NUL.
    if (name.length === 0 || name.length > 15 || /[\s/:]/.test(name))
      throw new NetlinkError(op, `invalid interface name "${name}"`);
    return name;
  }

  private async resolve(op: string, ref: LinkRef): Promise<number> {
    if (typeof ref === 'number') {
      if (!Number.isInteger(ref) || ref <= 0 || ref > 0x7fffffff) throw new NetlinkError(op, `invalid ifindex ${ref}`);
      return ref;
    }
    try {
      return await this.linkIndex(ref);
    } catch (e) {
      const err = e as NetlinkError;
      throw err.errno !== undefined ? NetlinkError.fromErrno(op, err.errno) : NetlinkError.wrap(op, e);
    }
  }

  /**
   * Sends one request and returns the parsed reply messages ([] for a plain ACK).
   * Kernel errors reject as NetlinkError with errno; so does a closed socket.
   */
  private request(op: string, type: number, flags: number, body: (out: AttrStream) => void): Promise<rt.Message[]> {
    // One request at a time: the kernel runs a single dump per socket (EBUSY
    // otherwise), and the library's multipart reassembly breaks when another
    // reply lands between the parts of a dump.
    const run = this.queue.then(() => this.exchange(op, type, flags, body));
    this.queue = run.catch(() => {});
    return run;
  }

  private async exchange(op: string, type: number, flags: number, body: (out: AttrStream) => void): Promise<rt.Message[]> {
    if (this.closed) throw new NetlinkError(op, 'socket closed');
    const out = new AttrStream();
    body(out);
    // Our own timer rather than the library's: close() can clear it, so a
    // request cut short by close() does not hold the process open.
    const reply = await new Promise<NetlinkMessage[]>((resolve, reject) => {
      const fail = (e: unknown) => {
        finish();
        reject(NetlinkError.wrap(op, e));
      };
      const timer = setTimeout(() => fail(new Error(`no reply within ${this.timeoutMs} ms`)), this.timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.pending.delete(fail);
      };
      this.pending.add(fail);
      this.sock.request(type, out.bufs, { flags, checkError: false }).then(([r]) => {
        finish();
        resolve(r);
      }, fail);
    });
    const result: rt.Message[] = [];
    for (const m of reply) {
      if (m.type === NLMSG_ERROR) {
        const errno = parseErrno(m);
        if (errno === undefined) throw new NetlinkError(op, 'malformed error reply');
        if (errno !== 0) throw kernelError(op, errno);
        continue;
      }
      try {
        result.push(rt.parseMessage(m.type, m.data));
      } catch (e) {
        throw NetlinkError.wrap(op, e);
      }
    }
    return result;
  }
}

/** The kernel's refusal; EPERM on a change means the process lacks CAP_NET_ADMIN, so say so. */
function kernelError(op: string, errno: number): NetlinkError {
  const e = NetlinkError.fromErrno(op, errno);
  if (e.code !== 'EPERM' && e.code !== 'EACCES') return e;
  return new NetlinkError(op, `${e.code}: ${needsCapability('CAP_NET_ADMIN')}`, e.errno);
}

function parseErrno(m: NetlinkMessage): number | undefined {
  try {
    return parseError(m.data, m.flags).errno;
  } catch {
    return undefined;
  }
}

/** Maps one notification to an event; anything else (or malformed) is ignored. */
function toEvent(m: NetlinkMessage): NetlinkEvent | undefined {
  let parsed: rt.Message;
  try {
    parsed = rt.parseMessage(m.type, m.data);
  } catch {
    return undefined;
  }
  if (parsed.kind === 'address') {
    const address = toAddressInfo(parsed);
    if (!address) return undefined;
    return m.type === rt.MessageType.DELADDR ? { kind: 'address-removed', address } : { kind: 'address-added', address };
  }
  if (parsed.kind === 'link') {
    const link = toLinkInfo(parsed);
    return m.type === rt.MessageType.DELLINK ? { kind: 'link-removed', link } : { kind: 'link-changed', link };
  }
  return undefined;
}
