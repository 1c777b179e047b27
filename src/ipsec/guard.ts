import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import { CONN, type Failure, IpsecCore, type IpsecSaStatus, type IpsecSettings, PSK_ID, espOverhead, explainFailure, initiateMessage, pskMessage, saFromListSa, connMessage } from './core';
import { type ViciPort, connectVici } from './vici-client';
import { type ViciMessage, str } from './vici-codec';

/**
 * What the agent needs of the IPsec step (RFC 5571 section 5 step 0): bring the
 * SA up before the SCCRQ, with a deadline; take it down on teardown; say when it
 * dies. The agent stays ignorant of VICI and strongSwan.
 */
export interface IpsecGuard {
  /** Brings up transport-mode ESP for UDP to sc.port; resolves (never rejects) within about deadlineMs. */
  up(sc: { address: string; port: number }, local: string, deadlineMs: number): Promise<IpsecUpResult>;
  /** Removes the SA, its policies, our connection and key from charon. Idempotent, bounded. */
  down(): Promise<void>;
  /** Called once per SA when charon reports it gone while the softwire ran on it. */
  onLost(cb: (reason: string) => void): void;
  status(): IpsecStatus;
}

export type IpsecUpResult = { ok: true; overhead: number } | ({ ok: false } & Failure);

/** The `ipsec` part of `softwire status`. */
export interface IpsecStatus {
  mode: 'ikev1' | 'ikev2';
  phase: string;
  /** Bytes the negotiated ESP (+ UDP encapsulation) takes from each L2TP datagram. */
  overhead: number | null;
  sa: IpsecSaStatus | null;
  lastError: string | null;
  /** Packets from charon's socket that were dropped (malformed, unexpected), on the current connection. */
  drops: Record<string, number>;
}

/** list-sa is streamed only to a client registered for it. */
const EVENTS = ['control-log', 'ike-updown', 'child-updown', 'ike-rekey', 'child-rekey', 'list-sa'];
const CONTROL_LOG_MAX = 200;
const CLEANUP_MS = 2000;

export interface ViciGuardDeps {
  settings: IpsecSettings;
  /** charon's VICI socket, e.g. /var/run/charon.vici. */
  socket: string;
  log: Logger;
  connect?: (path: string, timeoutMs: number) => Promise<ViciPort>;
  now?: () => number;
}

function ok(m: ViciMessage): boolean {
  return str(m, 'success') === 'yes';
}

export class ViciGuard implements IpsecGuard {
  private readonly core = new IpsecCore();
  private port: ViciPort | null = null;
  private lostCb: (reason: string) => void = () => {};
  private controlLog: string[] = [];
  private overhead: number | null = null;
  /** Bumped by down(): an up() still running sees it and gives up. */
  private generation = 0;
  private readonly connect: NonNullable<ViciGuardDeps['connect']>;
  private readonly now: () => number;

  constructor(private readonly d: ViciGuardDeps) {
    this.connect = d.connect ?? connectVici;
    this.now = d.now ?? Date.now;
  }

  onLost(cb: (reason: string) => void): void {
    this.lostCb = cb;
  }

  status(): IpsecStatus {
    return {
      mode: this.d.settings.version,
      phase: this.core.phase,
      overhead: this.overhead,
      sa: this.core.sa,
      lastError: this.core.lastFailure?.reason ?? null,
      drops: { ...(this.port?.drops ?? {}) },
    };
  }

  private onEvent(port: ViciPort, name: string, msg: ViciMessage): void {
    if (port !== this.port) return;
    if (name === 'control-log') {
      const line = str(msg, 'msg');
      if (line && this.controlLog.length < CONTROL_LOG_MAX) this.controlLog.push(line);
      if (line) this.d.log.debug({ charon: line }, 'charon');
      return;
    }
    const r = this.core.onEvent(name, msg);
    if (r === 'refresh') void this.refresh().catch(() => undefined);
    else if (r) {
      this.d.log.warn(r.lost);
      this.core.failed({ reason: r.lost, permanent: false });
      this.lostCb(r.lost);
    }
  }

  private async refresh(): Promise<void> {
    const port = this.port;
    if (!port) return;
    const found: IpsecSaStatus[] = [];
    const prev = (n: string, m: ViciMessage) => {
      if (n !== 'list-sa') return;
      const sa = saFromListSa(m, new Date(this.now()));
      if (sa) found.push(sa);
    };
    const old = this.eventTap;
    this.eventTap = prev;
    try {
      // Not noblock: right after initiate the IKE_SA may still be checked out, and noblock would skip it.
      await port.request('list-sas', { ike: CONN }, 5000);
    } finally {
      this.eventTap = old;
    }
    if (found[0] && this.core.phase === 'up') this.core.sa = found[0];
    if (found[0]?.child) this.overhead = espOverhead(found[0].child.encr, found[0].child.integ, found[0].child.encap);
  }

  /** Extra listener for streamed replies (list-sa) during one command. */
  private eventTap: ((name: string, msg: ViciMessage) => void) | null = null;

  async up(sc: { address: string; port: number }, local: string, deadlineMs: number): Promise<IpsecUpResult> {
    const gen = ++this.generation;
    this.core.begin(this.now(), deadlineMs);
    this.controlLog = [];
    this.overhead = null;
    const fail = async (f: Failure): Promise<IpsecUpResult> => {
      this.core.failed(f);
      this.d.log.error({ sc: sc.address }, f.reason);
      await this.cleanup();
      return { ok: false, ...f };
    };
    let port: ViciPort;
    try {
      port = await this.connect(this.d.socket, Math.min(5000, this.core.remaining(this.now())));
    } catch (e) {
      return fail({ reason: `IPsec: ${(e as Error).message}`, permanent: false });
    }
    if (gen !== this.generation) {
      port.close();
      return { ok: false, reason: 'IPsec: stopped', permanent: false };
    }
    this.port = port;
    port.onEvent((n, m) => {
      this.eventTap?.(n, m);
      this.onEvent(port, n, m);
    });
    port.onClose((why) => {
      if (this.port !== port) return;
      this.port = null;
      if (this.core.phase === 'up') {
        const reason = `IPsec: lost contact with charon (${why}); the SA can no longer be watched`;
        this.core.failed({ reason, permanent: false });
        this.lostCb(reason);
      }
    });
    try {
      for (const ev of EVENTS) await port.register(ev, 5000);
      const s = this.d.settings;
      if (s.psk !== undefined) {
        const r = await port.request('load-shared', pskMessage(s.psk), 5000);
        if (!ok(r)) return fail({ reason: `IPsec: charon refused the pre-shared key: ${str(r, 'errmsg') ?? 'no reason given'}`, permanent: true });
      }
      if (s.caCert) {
        const r = await port.request('load-cert', { type: 'X509', flag: 'CA', data: s.caCert }, 5000);
        if (!ok(r)) return fail({ reason: `IPsec: charon refused the CA certificate: ${str(r, 'errmsg') ?? 'no reason given'}`, permanent: true });
      }
      if (s.key) {
        const r = await port.request('load-key', { type: 'any', data: s.key }, 5000);
        if (!ok(r)) return fail({ reason: `IPsec: charon refused the private key: ${str(r, 'errmsg') ?? 'no reason given'}`, permanent: true });
      }
      const lc = await port.request('load-conn', connMessage(s, { sc, local }), 5000);
      if (!ok(lc)) return fail({ reason: `IPsec: charon refused the connection: ${str(lc, 'errmsg') ?? 'no reason given'}`, permanent: true });
      this.d.log.info({ sc: sc.address, version: s.version }, `IPsec: negotiating ${s.version === 'ikev1' ? 'IKEv1' : 'IKEv2'} with ${sc.address}, ESP transport mode for UDP to port ${sc.port}`);
      const left = this.core.remaining(this.now());
      const r = await port.request('initiate', initiateMessage(left), left + 5000);
      if (gen !== this.generation) return { ok: false, reason: 'IPsec: stopped', permanent: false };
      if (!ok(r)) return fail(explainFailure(this.controlLog, str(r, 'errmsg'), sc.address));
    } catch (e) {
      if (gen !== this.generation) return { ok: false, reason: 'IPsec: stopped', permanent: false };
      return fail(explainFailure(this.controlLog, (e as Error).message, sc.address));
    }
    this.core.established(null);
    try {
      await this.refresh();
    } catch (e) {
      this.d.log.warn({ err: (e as Error).message }, 'IPsec: SA up but its details could not be read');
    }
    const sa = this.core.sa;
    // Unknown transform: assume AES-CBC + HMAC-SHA-512 + NAT-T, the largest common case.
    if (this.overhead === null) this.overhead = espOverhead('AES_CBC', 'HMAC_SHA2_512_256', true);
    this.d.log.info(
      { ike: sa ? `${sa.ike.encr}/${sa.ike.integ || sa.ike.prf}/${sa.ike.dh}` : undefined, esp: sa?.child ? `${sa.child.encr}${sa.child.integ ? `/${sa.child.integ}` : ''}` : undefined, natT: sa?.child?.encap ?? null, overhead: this.overhead },
      `IPsec: SA up with ${sc.address}${sa?.child?.encap ? ' (NAT traversal: ESP in UDP 4500)' : ''}`,
    );
    return { ok: true, overhead: this.overhead };
  }

  /** Terminates and unloads what up() put into charon, on a connection of its own (the old one may be busy). */
  private async cleanup(): Promise<void> {
    const old = this.port;
    this.port = null;
    old?.close();
    let port: ViciPort;
    try {
      port = await this.connect(this.d.socket, CLEANUP_MS);
    } catch {
      return;
    }
    try {
      await port.request('terminate', { ike: CONN, force: 'yes', timeout: '-1' }, CLEANUP_MS).catch(() => undefined);
      await port.request('unload-conn', { name: CONN }, CLEANUP_MS).catch(() => undefined);
      if (this.d.settings.psk !== undefined) await port.request('unload-shared', { id: PSK_ID }, CLEANUP_MS).catch(() => undefined);
    } finally {
      port.close();
    }
  }

  async down(): Promise<void> {
    this.generation++;
    const was = this.core.phase;
    this.core.closing();
    if (was !== 'idle' || this.port) {
      await this.cleanup();
      if (was === 'up') this.d.log.info('IPsec: SA and policies removed');
    }
    this.core.closed();
    this.overhead = null;
  }
}


/** The guard for a loaded config, or undefined when `ipsec` is off. Certificate files are read here, once. */
export function ipsecGuardFor(c: Config, psk: string | undefined, log: Logger, readFile: (p: string) => Buffer = readFileSync): IpsecGuard | undefined {
  if (c.ipsec === 'off') return undefined;
  const settings: IpsecSettings = {
    version: c.ipsec,
    psk: c.ipsecCert ? undefined : psk,
    cert: c.ipsecCert ? readFile(c.ipsecCert) : undefined,
    key: c.ipsecKey ? readFile(c.ipsecKey) : undefined,
    caCert: c.ipsecCaCert ? readFile(c.ipsecCaCert) : undefined,
    ikeProposals: c.ipsecIkeProposals,
    espProposals: c.ipsecEspProposals,
  };
  return new ViciGuard({ settings, socket: c.ipsecViciSocket, log: log.child({ part: 'ipsec' }) });
}
