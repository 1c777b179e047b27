import { createHash, randomBytes } from 'node:crypto';
import { ALL_NODES, linkLocalFromIid } from '../../src/ipv6/address';
import {
  decodeDhcp6,
  type Dhcp6Message,
  DHCP6_CLIENT_PORT,
  DHCP6_SERVER_PORT,
  emptyMessage,
  encodeDhcp6,
  type IaNa,
  type IaPd,
  MSG_ADVERTISE,
  MSG_DECLINE,
  MSG_INFORMATION_REQUEST,
  MSG_REBIND,
  MSG_RELEASE,
  MSG_RENEW,
  MSG_REPLY,
  MSG_REQUEST,
  MSG_SOLICIT,
  OPT_DNS_SERVERS,
  STATUS_SUCCESS,
} from '../../src/ipv6/dhcpv6';
import { buildNdPacket, emptyOptions, ICMPV6_NS, ICMPV6_RS, parseNdPacket } from '../../src/ipv6/nd';
import { buildUdp6, NEXT_HEADER_ICMPV6, NEXT_HEADER_UDP, parseIpv6, parseUdp6 } from '../../src/ipv6/packet';
import {
  CODE,
  decodeFrame,
  decodeOptions,
  decodePacket,
  encodeFrame,
  encodeOptions,
  encodePacket,
  opt,
  type PppOption,
  PROTO,
  u16,
  u32,
} from '../../src/ppp/frame';
import { bufferToIpv4, ipv4ToBuffer } from '../../src/ppp/ipcp';

/**
 * The SC side of PPP for the emulator: just enough LCP, CHAP/PAP, IPV6CP, IPCP,
 * Router Advertisement and DHCPv6 to bring a softwire up, written as a simple
 * scripted responder rather than a full RFC 1661 automaton, so that tests can
 * reason about exactly what it sends. Requests are retransmitted on a restart
 * timer, which is what lets a session come up through a lossy path.
 */

export interface PppServerOptions {
  /** LCP MRU we ask for (l2tpns: 1462). */
  mru?: number;
  /** Authentication we ask for; 'none' skips the phase. */
  auth?: 'chap' | 'pap' | 'none';
  /** Whether a Nak from the peer may move us to the other protocol. */
  authFallback?: boolean;
  users?: { name: string; password: string }[];
  /** Fail every login with this message (CHAP Failure / PAP Nak). */
  authFailMessage?: string;
  /** Our IPV6CP interface identifier (hex, 16 digits); default ::1. */
  iid?: string;
  /** Interface identifier forced on the peer by Nak (hex); unset: the peer's is accepted. */
  peerIid?: string;
  /** IPCP: false Protocol-Rejects it; otherwise addresses to hand out. */
  ipcp?: false | { local: string; peer: string; dns?: string[] };
  ra?: {
    managed?: boolean;
    other?: boolean;
    /** On-link /64 for the PIO. */
    prefix?: string;
    rdnss?: string[];
    routerLifetime?: number;
    /** MTU option (RFC 4861 4.6.4), as SCs with a smaller core MTU send. */
    mtu?: number;
    /** A flag of the PIO; false numbers hosts only by DHCPv6 IA_NA (Cisco/Juniper LNS style). */
    autonomous?: boolean;
  };
  dhcp?: {
    /** Delegated prefix, e.g. 2001:db8:100::/56; omit to answer without IA_PD. */
    prefix?: string;
    dns?: string[];
    rapidCommit?: boolean;
    preferred?: number;
    valid?: number;
    /** IA_PD T1/T2 in seconds (default 1800/2880). */
    t1?: number;
    t2?: number;
    /** IA_NA addresses handed out in turn (the next one after a Decline). */
    addresses?: string[];
    /** Addresses someone on the SC side already uses: DAD probes for them get an NA. */
    defend?: string[];
  };
  /** Like l2tpns: send an RA to ff02::1 after every LCP Echo-Request from the peer. */
  raOnEcho?: boolean;
  restartMs?: number;
  maxRestarts?: number;
  /**
   * Like pppd behind xl2tpd: PPP starts this long after the session is up, and
   * whatever the peer sent before (its first LCP Configure-Request) is lost.
   */
  lateStartMs?: number;
  /**
   * Leave this many logins unanswered (the Emulator counts over its lifetime) (no CHAP Success/Failure, no PAP Ack/Nak) and
   * report them as 'auth-pending': the SC decides by CDN, as l2tpns does on a reject.
   */
  authHold?: number;
}

export type PppEvent =
  | { type: 'lcp-up' }
  | { type: 'auth'; ok: boolean; protocol: string; user: string }
  | { type: 'auth-pending'; protocol: string; user: string }
  | { type: 'ncp-up'; ncp: 'ipv6cp' | 'ipcp' }
  | { type: 'ra-sent'; dst: string }
  | { type: 'rs' }
  | { type: 'dhcp'; message: string; xid: number }
  | { type: 'terminate'; reason: string };

export interface PppIo {
  send(frame: Buffer): void;
  event(ev: PppEvent): void;
  setTimer(name: string, ms: number, fn: () => void): void;
  clearTimer(name: string): void;
  /** IP packets that are not the server's own business (data mode: into the SC side's TUN). */
  data?(packet: Buffer): void;
}

interface Negotiation {
  /** Options we are asking for. */
  want: PppOption[];
  id: number;
  ourAcked: boolean;
  peerAcked: boolean;
  tries: number;
  up: boolean;
}

const CHAP = { CHALLENGE: 1, RESPONSE: 2, SUCCESS: 3, FAILURE: 4 } as const;
const PAP = { REQUEST: 1, ACK: 2, NAK: 3 } as const;
const LCP_MRU = 1;
const LCP_AUTH = 3;
const LCP_MAGIC = 5;
const SERVER_DUID = Buffer.from('00030001020000000001', 'hex');
const CHAP_AUTH = [0xc2, 0x23, 5];
const PAP_AUTH = [0xc0, 0x23];

const fresh = (want: PppOption[]): Negotiation => ({ want, id: 0, ourAcked: false, peerAcked: false, tries: 0, up: false });

export class PppServer {
  readonly counters: Record<string, number> = {};
  private readonly o: Required<Pick<PppServerOptions, 'mru' | 'auth' | 'restartMs' | 'maxRestarts'>> & PppServerOptions;
  private readonly magic = randomBytes(4).readUInt32BE(0) || 1;
  private lcp: Negotiation;
  private ipv6cp: Negotiation;
  private ipcp: Negotiation | null;
  private auth: 'chap' | 'pap' | 'none';
  private authDone = false;
  private challenge: { id: number; value: Buffer } | null = null;
  private nextId = 1;
  private readonly ourIid: Buffer;
  private peerIid: Buffer | null = null;
  private dead = false;
  /** lateStartMs: not running yet, frames are lost. */
  private starting = false;
  private held = 0;
  /** Which of dhcp.addresses is handed out now. */
  private naIndex = 0;

  constructor(
    opts: PppServerOptions,
    private readonly io: PppIo,
  ) {
    this.o = { mru: 1462, auth: 'chap', restartMs: 1000, maxRestarts: 30, ...opts };
    this.auth = this.o.auth;
    this.ourIid = Buffer.from(this.o.iid ?? '0000000000000001', 'hex');
    this.lcp = fresh(this.lcpWant());
    this.ipv6cp = fresh([opt(1, this.ourIid)]);
    this.ipcp = this.o.ipcp ? fresh([opt(3, ipv4ToBuffer(this.o.ipcp.local))]) : null;
  }

  get linkLocal(): string {
    return linkLocalFromIid(this.ourIid);
  }

  /** The session is up: like l2tpns, we open LCP at once. */
  start(): void {
    if (!this.o.lateStartMs) return this.sendRequest('lcp');
    this.starting = true;
    this.io.setTimer('start', this.o.lateStartMs, () => {
      this.starting = false;
      this.sendRequest('lcp');
    });
  }

  stop(): void {
    this.dead = true;
    for (const t of ['lcp', 'ipv6cp', 'ipcp', 'auth', 'start']) this.io.clearTimer(t);
  }

  state(): { lcp: boolean; auth: boolean; ipv6cp: boolean; ipcp: boolean } {
    return { lcp: this.lcp.up, auth: this.authDone, ipv6cp: this.ipv6cp.up, ipcp: this.ipcp?.up ?? false };
  }

  /** Sends an LCP Echo-Request (tests use it to make the agent answer with a data message). */
  echo(): void {
    this.write(PROTO.LCP, encodePacket(CODE.ECHO_REQ, this.nextId++ & 0xff, Buffer.concat([u32(this.magic), Buffer.from('emulator')])));
  }

  /** Sends an LCP Terminate-Request (tests use it to end PPP but keep the session). */
  terminate(reason = 'emulator'): void {
    this.write(PROTO.LCP, encodePacket(CODE.TERM_REQ, this.nextId++, Buffer.from(reason)));
  }

  receive(frame: Uint8Array): void {
    if (this.dead) return;
    if (this.starting) return this.count('lost-before-start');
    let f: ReturnType<typeof decodeFrame>;
    try {
      f = decodeFrame(frame);
    } catch {
      this.count('bad-frame');
      return;
    }
    try {
      switch (f.protocol) {
        case PROTO.LCP:
          return this.onControl('lcp', f.payload);
        case PROTO.IPV6CP:
          return this.onControl('ipv6cp', f.payload);
        case PROTO.IPCP:
          if (!this.ipcp) {
            this.count('ipcp-proto-rej');
            this.write(PROTO.LCP, encodePacket(CODE.PROTO_REJ, this.nextId++, Buffer.concat([u16(PROTO.IPCP), f.payload])));
            return;
          }
          return this.onControl('ipcp', f.payload);
        case PROTO.CHAP:
          return this.onChap(f.payload);
        case PROTO.PAP:
          return this.onPap(f.payload);
        case PROTO.IPV6:
          return this.onIpv6(f.payload);
        case PROTO.IPV4:
          if (this.io.data && this.ipcp?.up) return this.io.data(f.payload);
          this.count(`proto-${f.protocol.toString(16)}`);
          return;
        default:
          this.count(`proto-${f.protocol.toString(16)}`);
      }
    } catch (e) {
      // A test peer must survive whatever the agent sends; count it so tests can see it.
      this.count(`error:${(e as Error).message}`);
    }
  }

  // ------------------------------------------------------------ negotiation

  private lcpWant(): PppOption[] {
    const w = [opt(LCP_MRU, u16(this.o.mru)), opt(LCP_MAGIC, u32(this.magic))];
    if (this.o.auth !== 'none') w.splice(1, 0, opt(LCP_AUTH, this.o.auth === 'chap' ? CHAP_AUTH : PAP_AUTH));
    return w;
  }

  private neg(layer: 'lcp' | 'ipv6cp' | 'ipcp'): Negotiation | null {
    return layer === 'lcp' ? this.lcp : layer === 'ipv6cp' ? this.ipv6cp : this.ipcp;
  }

  private proto(layer: 'lcp' | 'ipv6cp' | 'ipcp'): number {
    return layer === 'lcp' ? PROTO.LCP : layer === 'ipv6cp' ? PROTO.IPV6CP : PROTO.IPCP;
  }

  private sendRequest(layer: 'lcp' | 'ipv6cp' | 'ipcp'): void {
    const n = this.neg(layer);
    if (!n || n.ourAcked) return;
    if (n.tries >= this.o.maxRestarts) {
      this.io.event({ type: 'terminate', reason: `${layer}: no answer to Configure-Request` });
      return;
    }
    n.tries++;
    n.id = this.nextId++ & 0xff;
    this.write(this.proto(layer), encodePacket(CODE.CONF_REQ, n.id, encodeOptions(n.want)));
    this.io.setTimer(layer, this.o.restartMs, () => this.sendRequest(layer));
  }

  private onControl(layer: 'lcp' | 'ipv6cp' | 'ipcp', payload: Buffer): void {
    const n = this.neg(layer)!;
    const p = decodePacket(payload);
    this.count(`${layer}-rx-${p.code}`);
    const proto = this.proto(layer);
    switch (p.code) {
      case CODE.CONF_REQ: {
        const { nak, rej } = this.judge(layer, decodeOptions(p.data));
        if (rej.length) this.write(proto, encodePacket(CODE.CONF_REJ, p.id, encodeOptions(rej)));
        else if (nak.length) this.write(proto, encodePacket(CODE.CONF_NAK, p.id, encodeOptions(nak)));
        else {
          this.write(proto, encodePacket(CODE.CONF_ACK, p.id, p.data));
          n.peerAcked = true;
          if (layer === 'ipv6cp') {
            const iid = decodeOptions(p.data).find((x) => x.type === 1);
            if (iid) this.peerIid = Buffer.from(iid.data);
          }
          this.checkUp(layer);
        }
        return;
      }
      case CODE.CONF_ACK:
        if (p.id !== n.id || n.ourAcked) return;
        n.ourAcked = true;
        this.io.clearTimer(layer);
        this.checkUp(layer);
        return;
      case CODE.CONF_NAK:
      case CODE.CONF_REJ: {
        if (p.id !== n.id || n.ourAcked) return;
        const opts = decodeOptions(p.data);
        if (p.code === CODE.CONF_REJ) n.want = n.want.filter((w) => !opts.some((o) => o.type === w.type));
        else
          for (const o of opts) {
            if (layer === 'lcp' && o.type === LCP_AUTH && this.o.authFallback !== false) {
              const pap = o.data.readUInt16BE(0) === PROTO.PAP;
              this.auth = pap ? 'pap' : 'chap';
              n.want = n.want.map((w) => (w.type === LCP_AUTH ? opt(LCP_AUTH, pap ? PAP_AUTH : CHAP_AUTH) : w));
            } else if (o.type !== LCP_AUTH) n.want = n.want.map((w) => (w.type === o.type ? o : w));
          }
        if (layer === 'lcp' && !n.want.some((w) => w.type === LCP_AUTH)) this.auth = 'none';
        this.io.clearTimer(layer);
        this.sendRequest(layer);
        return;
      }
      case CODE.TERM_REQ:
        this.write(proto, encodePacket(CODE.TERM_ACK, p.id));
        if (layer === 'lcp') this.io.event({ type: 'terminate', reason: p.data.toString('latin1') || 'peer Terminate-Request' });
        n.up = false;
        return;
      case CODE.ECHO_REQ:
        if (layer === 'lcp') this.write(proto, encodePacket(CODE.ECHO_REPLY, p.id, Buffer.concat([u32(this.magic), p.data.subarray(4)])));
        if (layer === 'lcp' && this.o.raOnEcho && this.ipv6cp.up) this.sendRa(ALL_NODES);
        return;
      default:
        return;
    }
  }

  private judge(layer: 'lcp' | 'ipv6cp' | 'ipcp', opts: PppOption[]): { nak: PppOption[]; rej: PppOption[] } {
    const nak: PppOption[] = [];
    const rej: PppOption[] = [];
    for (const o of opts) {
      if (layer === 'lcp') {
        if (o.type === LCP_MAGIC && o.data.length === 4 && o.data.readUInt32BE(0) === this.magic) nak.push(opt(LCP_MAGIC, u32(this.magic ^ 0x5a5a5a5a)));
        else if (o.type !== LCP_MRU && o.type !== LCP_MAGIC) rej.push(o);
      } else if (layer === 'ipv6cp') {
        if (o.type !== 1 || o.data.length !== 8) rej.push(o);
        else if (this.o.peerIid && !o.data.equals(Buffer.from(this.o.peerIid, 'hex'))) nak.push(opt(1, Buffer.from(this.o.peerIid, 'hex')));
        else if (o.data.equals(Buffer.alloc(8)) || o.data.equals(this.ourIid)) nak.push(opt(1, Buffer.from('0200000000000002', 'hex')));
      } else {
        const cfg = this.o.ipcp as { peer: string; dns?: string[] };
        const dns = cfg.dns ?? [];
        if (o.type === 3 && o.data.length === 4) {
          if (bufferToIpv4(o.data) !== cfg.peer) nak.push(opt(3, ipv4ToBuffer(cfg.peer)));
        } else if ((o.type === 129 || o.type === 131) && o.data.length === 4) {
          const want = dns[o.type === 129 ? 0 : 1];
          if (!want) rej.push(o);
          else if (bufferToIpv4(o.data) !== want) nak.push(opt(o.type, ipv4ToBuffer(want)));
        } else rej.push(o);
      }
    }
    return { nak, rej };
  }

  private checkUp(layer: 'lcp' | 'ipv6cp' | 'ipcp'): void {
    const n = this.neg(layer)!;
    if (n.up || !n.ourAcked || !n.peerAcked) return;
    n.up = true;
    if (layer === 'lcp') {
      this.io.event({ type: 'lcp-up' });
      if (this.auth === 'chap') this.sendChallenge();
      else if (this.auth === 'none') this.network();
      return;
    }
    this.io.event({ type: 'ncp-up', ncp: layer });
    if (layer === 'ipv6cp') this.sendRa(ALL_NODES);
  }

  private network(): void {
    this.authDone = true;
    this.sendRequest('ipv6cp');
    if (this.ipcp) this.sendRequest('ipcp');
  }

  // ------------------------------------------------------------ authentication

  private sendChallenge(): void {
    if (this.authDone) return;
    this.challenge ??= { id: this.nextId++ & 0xff, value: randomBytes(16) };
    const name = Buffer.from('emulator');
    this.write(PROTO.CHAP, encodePacket(CHAP.CHALLENGE, this.challenge.id, Buffer.concat([Buffer.from([16]), this.challenge.value, name])));
    this.io.setTimer('auth', this.o.restartMs, () => this.sendChallenge());
  }

  private verdict(user: string, check: (password: string) => boolean): boolean {
    if (this.o.authFailMessage !== undefined) return false;
    const users = this.o.users ?? [{ name: 'cpe1', password: 'secret1' }];
    return users.some((u) => u.name === user && check(u.password));
  }

  private onChap(payload: Buffer): void {
    const p = decodePacket(payload);
    if (p.code !== CHAP.RESPONSE || !this.challenge || p.id !== this.challenge.id) return this.count('chap-unexpected');
    const size = p.data[0] ?? 0;
    const value = p.data.subarray(1, 1 + size);
    const user = p.data.subarray(1 + size).toString('utf8');
    const challenge = this.challenge.value;
    if (this.holdLogin('chap', user)) return;
    const ok = this.verdict(user, (pw) =>
      createHash('md5').update(Buffer.from([p.id])).update(pw).update(challenge).digest().equals(value),
    );
    this.io.clearTimer('auth');
    const msg = ok ? 'Access granted' : (this.o.authFailMessage ?? 'Authentication failed');
    this.write(PROTO.CHAP, encodePacket(ok ? CHAP.SUCCESS : CHAP.FAILURE, p.id, Buffer.from(msg)));
    if (this.authDone) return; // a retransmitted Response gets the same answer
    this.io.event({ type: 'auth', ok, protocol: 'chap', user });
    if (ok) this.network();
  }

  private onPap(payload: Buffer): void {
    const p = decodePacket(payload);
    if (p.code !== PAP.REQUEST) return this.count('pap-unexpected');
    const ulen = p.data[0] ?? 0;
    const user = p.data.subarray(1, 1 + ulen).toString('utf8');
    const plen = p.data[1 + ulen] ?? 0;
    const pass = p.data.subarray(2 + ulen, 2 + ulen + plen).toString('utf8');
    if (this.holdLogin('pap', user)) return;
    const ok = this.verdict(user, (pw) => pw === pass);
    const msg = Buffer.from(ok ? 'Login ok' : (this.o.authFailMessage ?? 'Login incorrect'));
    this.write(PROTO.PAP, encodePacket(ok ? PAP.ACK : PAP.NAK, p.id, Buffer.concat([Buffer.from([msg.length]), msg])));
    if (this.authDone) return;
    this.io.event({ type: 'auth', ok, protocol: 'pap', user });
    if (ok) this.network();
  }

  /** authHold: leave this login unanswered (the CHAP timer stops; the SC ends it by CDN). */
  private holdLogin(protocol: string, user: string): boolean {
    if ((this.o.authHold ?? 0) <= this.held) return false;
    this.held++;
    this.io.clearTimer('auth');
    this.io.event({ type: 'auth-pending', protocol, user });
    return true;
  }

  // ------------------------------------------------------------ IPv6 services

  private onIpv6(pkt: Buffer): void {
    const ip = parseIpv6(pkt);
    if (ip.nextHeader === NEXT_HEADER_ICMPV6 && ip.payload[0] === ICMPV6_RS) {
      this.count('rs');
      this.io.event({ type: 'rs' });
      // An RS from :: cannot be answered unicast.
      this.sendRa(ip.src === '::' ? ALL_NODES : ip.src);
      return;
    }
    if (ip.nextHeader === NEXT_HEADER_ICMPV6 && ip.payload[0] === ICMPV6_NS) {
      const nd = parseNdPacket(pkt);
      if (nd.message.kind === 'ns' && ip.src === '::' && (this.o.dhcp?.defend ?? []).includes(nd.message.target)) {
        // Defend the address (RFC 4862 5.4.3): an NA to all-nodes.
        const target = nd.message.target;
        this.count('dad-defended');
        this.write(PROTO.IPV6, Buffer.from(buildNdPacket(target, ALL_NODES, { kind: 'na', router: false, solicited: false, override: true, target, options: emptyOptions() })));
        return;
      }
    }
    if (ip.nextHeader === NEXT_HEADER_UDP) {
      const udp = parseUdp6(pkt);
      if (udp.dstPort === DHCP6_SERVER_PORT) return this.onDhcp(ip.src, decodeDhcp6(udp.payload));
    }
    if (this.io.data && this.ipv6cp.up) return this.io.data(pkt);
    this.count('ipv6-other');
  }

  private sendRa(dst: string): void {
    const ra = this.o.ra ?? {};
    const prefix = ra.prefix ?? '2001:db8:200::';
    const packet = buildNdPacket(this.linkLocal, dst, {
      kind: 'ra',
      curHopLimit: 64,
      managed: ra.managed ?? true,
      other: ra.other ?? true,
      routerLifetime: ra.routerLifetime ?? 1800,
      reachableTime: 0,
      retransTimer: 0,
      options: emptyOptions({
        prefixes: [{ prefix, prefixLength: 64, onLink: true, autonomous: ra.autonomous ?? true, validLifetime: 2592000, preferredLifetime: 604800 }],
        rdnss: [{ lifetime: 1200, servers: ra.rdnss ?? ['2001:db8:200::53'] }],
        ...(ra.mtu ? { mtu: ra.mtu } : {}),
      }),
    });
    this.write(PROTO.IPV6, Buffer.from(packet));
    this.count('ra');
    this.io.event({ type: 'ra-sent', dst });
  }

  private onDhcp(src: string, m: Dhcp6Message): void {
    const names: Record<number, string> = {
      [MSG_SOLICIT]: 'Solicit',
      [MSG_REQUEST]: 'Request',
      [MSG_RENEW]: 'Renew',
      [MSG_REBIND]: 'Rebind',
      [MSG_RELEASE]: 'Release',
      [MSG_DECLINE]: 'Decline',
      [MSG_INFORMATION_REQUEST]: 'Information-Request',
    };
    const name = names[m.type];
    if (!name) return this.count('dhcp-other');
    this.io.event({ type: 'dhcp', message: name, xid: m.xid });
    const cfg = this.o.dhcp ?? {};
    let type = MSG_REPLY;
    if (m.type === MSG_SOLICIT && !(m.rapidCommit && cfg.rapidCommit)) type = MSG_ADVERTISE;
    const reply = emptyMessage(type, m.xid, { serverId: SERVER_DUID, preference: 255 });
    if (m.clientId) reply.clientId = m.clientId;
    if (m.type === MSG_SOLICIT && type === MSG_REPLY) reply.rapidCommit = true;
    if (m.type === MSG_RELEASE || m.type === MSG_DECLINE) {
      reply.status = { code: STATUS_SUCCESS, message: m.type === MSG_DECLINE ? 'declined' : 'released' };
      if (m.type === MSG_DECLINE) this.naIndex++;
    } else {
      const address = cfg.addresses?.[this.naIndex];
      if (address && m.iaNa.length > 0) {
        reply.iaNa = m.iaNa.slice(0, 1).map(
          (ia): IaNa => ({
            iaid: ia.iaid,
            t1: cfg.t1 ?? 1800,
            t2: cfg.t2 ?? 2880,
            addresses: [{ address, preferredLifetime: cfg.preferred ?? 3600, validLifetime: cfg.valid ?? 7200, unknown: [] }],
            unknown: [],
          }),
        );
      }
      if (cfg.prefix && m.iaPd.length > 0) {
        const [prefix, len] = cfg.prefix.split('/');
        reply.iaPd = m.iaPd.slice(0, 1).map(
          (ia): IaPd => ({
            iaid: ia.iaid,
            t1: cfg.t1 ?? 1800,
            t2: cfg.t2 ?? 2880,
            prefixes: [
              {
                prefix: prefix!,
                prefixLength: Number(len),
                preferredLifetime: cfg.preferred ?? 3600,
                validLifetime: cfg.valid ?? 7200,
                unknown: [],
              },
            ],
            unknown: [],
          }),
        );
      }
      if (m.oro?.includes(OPT_DNS_SERVERS)) reply.dnsServers = cfg.dns ?? ['2001:db8:200::53'];
    }
    const packet = buildUdp6({
      src: this.linkLocal,
      dst: src,
      srcPort: DHCP6_SERVER_PORT,
      dstPort: DHCP6_CLIENT_PORT,
      hopLimit: 64,
      payload: encodeDhcp6(reply),
    });
    this.write(PROTO.IPV6, Buffer.from(packet));
  }

  /** The interface identifier the peer ended up with (after our Nak, if any). */
  get peerInterfaceId(): string | null {
    return this.peerIid ? this.peerIid.toString('hex') : null;
  }

  private write(protocol: number, payload: Uint8Array): void {
    if (this.dead) return;
    this.io.send(encodeFrame(protocol, payload));
  }

  private count(k: string): void {
    this.counters[k] = (this.counters[k] ?? 0) + 1;
  }
}

