import { type ViciMessage, section, str } from './vici-codec';

/**
 * The IPsec step of a softwire attempt (RFC 5571 section 5 step 0, RFC 3193),
 * without I/O: what to ask charon for, how to read its answers and events, and
 * the phase the SA is in. The guard (guard.ts) carries these messages over VICI.
 *
 * The SA protects UDP between our address (any port: the selector follows the
 * port the L2TP socket really gets) and the SC's L2TP port, in transport mode;
 * charon detects a NAT and moves to UDP 4500 encapsulation (RFC 3947/3948) by itself.
 */

export const CONN = 'softwire';
export const CHILD = 'l2tp';
export const PSK_ID = 'softwire-psk';

export interface IpsecSettings {
  version: 'ikev1' | 'ikev2';
  psk?: string;
  /** PEM/DER bytes read by the edge; the local certificate authenticates us instead of the PSK. */
  cert?: Buffer;
  /** Private key of `cert`. */
  key?: Buffer;
  caCert?: Buffer;
  ikeProposals: readonly string[];
  espProposals: readonly string[];
}

export interface Peer {
  sc: { address: string; port: number };
  local: string;
}

/** The load-conn message: one IKE connection with one transport-mode CHILD for L2TP. */
export function connMessage(s: IpsecSettings, p: Peer): ViciMessage {
  const auth = s.cert ? 'pubkey' : 'psk';
  const local: ViciMessage = { auth };
  if (s.cert) local.certs = [s.cert];
  const remote: ViciMessage = { auth };
  if (s.caCert) remote.cacerts = [s.caCert];
  return {
    [CONN]: {
      version: s.version === 'ikev1' ? '1' : '2',
      local_addrs: [p.local],
      remote_addrs: [p.sc.address],
      proposals: [...s.ikeProposals],
      // One try per attempt: a failure goes back to the agent, whose backoff paces retries.
      keyingtries: '1',
      dpd_delay: '30s',
      unique: 'replace',
      mobike: 'no',
      aggressive: 'no',
      local,
      remote,
      children: {
        [CHILD]: {
          mode: 'transport',
          local_ts: ['dynamic[udp]'],
          remote_ts: [`dynamic[udp/${p.sc.port}]`],
          esp_proposals: [...s.espProposals],
          // Trap: the transport policies stay in the kernel from load-conn until unload-conn, SA
          // or not. So when the SA dies, L2TP (user data, then our goodbyes) is held and dropped
          // instead of leaving in cleartext before the agent has noticed; the agent still
          // decides what happens next (it tears down and unloads, then dials anew).
          start_action: 'trap',
          dpd_action: 'clear',
          close_action: 'none',
        },
      },
    },
  };
}

export function pskMessage(psk: string): ViciMessage {
  // No owners: the key is used with whatever identity the SC presents (usually its address).
  return { id: PSK_ID, type: 'IKE', data: psk, owners: [] };
}

export function initiateMessage(timeoutMs: number): ViciMessage {
  return { child: CHILD, ike: CONN, timeout: String(Math.max(1000, Math.round(timeoutMs))), 'init-limits': 'no', loglevel: '1' };
}

export interface Failure {
  reason: string;
  /** Retrying unchanged will not help (wrong key, no common proposal, selectors refused). */
  permanent: boolean;
}

/**
 * Turns charon's control log of a failed initiate into words a user can act on.
 * The patterns are charon's own log lines (strongSwan 5.9), checked in the UML
 * interop test for IKEv1 and IKEv2.
 */
export function explainFailure(log: readonly string[], errmsg: string | undefined, scAddress: string): Failure {
  const all = log.join('\n');
  const has = (re: RegExp) => re.test(all);
  if (has(/AUTHENTICATION_FAILED|INVALID_HASH_INFORMATION|authentication of .* failed|MAC verification failed|tried \d+ shared key/))
    return { reason: `IPsec: the SC rejected our authentication: wrong pre-shared key (or identity) for ${scAddress}`, permanent: true };
  if (has(/NO_PROPOSAL_CHOSEN|no acceptable proposal|received proposals unacceptable/))
    return { reason: `IPsec: no proposal chosen: the SC accepts none of our IKE/ESP algorithms; compare ipsecIkeProposals/ipsecEspProposals with the SC's`, permanent: true };
  if (has(/TS_UNACCEPTABLE|no acceptable traffic selectors|traffic selectors .* unacceptable/))
    return { reason: `IPsec: the SC refused the traffic selectors (transport-mode UDP to its L2TP port)`, permanent: true };
  if (has(/no shared key found|no private key found|no trusted .* key found/))
    return { reason: `IPsec: charon has no key to authenticate to ${scAddress} (pre-shared key or certificate missing)`, permanent: true };
  // IKEv1 Main Mode gives no error for a wrong key: the SC cannot decrypt our third
  // message (ID+HASH, encrypted with a key derived from the PSK) and stays silent.
  // The SC's encrypted reply (its own key differs) cannot be decrypted either: "decryption failed?".
  if ((has(/retransmit \d+ of request message ID 0, seq 3/) || has(/invalid HASH_V1 payload length, decryption failed/)) && !has(/IKE_SA .* established/))
    return { reason: `IPsec: the SC answered the first IKEv1 exchanges but not our authentication: most likely a wrong pre-shared key for ${scAddress}`, permanent: true };
  if (has(/giving up after \d+ retransmits|retransmit \d+ of request message ID 0, seq 1|sending retransmit \d+ of request message ID 0/) && !has(/IKE_SA .* established/))
    return { reason: `IPsec: peer unreachable: ${scAddress} does not answer IKE (UDP 500/4500); is IPsec enabled on the SC and the path open?`, permanent: false };
  if (errmsg && /timed? ?out/i.test(errmsg)) return { reason: `IPsec: no SA with ${scAddress} within the deadline (${errmsg})`, permanent: false };
  return { reason: `IPsec: charon could not establish the SA with ${scAddress}${errmsg ? `: ${errmsg}` : ''}`, permanent: false };
}

export interface IpsecSaStatus {
  version: string;
  ike: { state: string; encr: string; integ: string; prf: string; dh: string; natLocal: boolean; natRemote: boolean; rekeyAt: string | null };
  child: { state: string; mode: string; encr: string; integ: string; encap: boolean; spiIn: string; spiOut: string; rekeyAt: string | null; bytesIn: number; bytesOut: number } | null;
}

function alg(m: ViciMessage | undefined, name: string, size: string): string {
  const a = str(m, name);
  if (!a) return '';
  const k = str(m, size);
  return k ? `${a}-${k}` : a;
}

function at(now: Date, seconds: string | undefined): string | null {
  const n = Number(seconds);
  return seconds !== undefined && Number.isFinite(n) ? new Date(now.getTime() + n * 1000).toISOString() : null;
}

/** Reads our SA out of a list-sa event ({<ike name>: {...}}); null when it is not ours. */
export function saFromListSa(msg: ViciMessage, now: Date): IpsecSaStatus | null {
  const ike = section(msg, CONN);
  if (!ike) return null;
  let child: IpsecSaStatus['child'] = null;
  const kids = section(ike, 'child-sas');
  for (const k of Object.keys(kids ?? {})) {
    const c = section(kids, k);
    if (str(c, 'name') !== CHILD) continue;
    child = {
      state: str(c, 'state') ?? '',
      mode: str(c, 'mode') ?? '',
      encr: alg(c, 'encr-alg', 'encr-keysize'),
      integ: str(c, 'integ-alg') ?? '',
      encap: str(c, 'encap') === 'yes',
      spiIn: str(c, 'spi-in') ?? '',
      spiOut: str(c, 'spi-out') ?? '',
      rekeyAt: at(now, str(c, 'rekey-time')),
      bytesIn: Number(str(c, 'bytes-in') ?? 0) || 0,
      bytesOut: Number(str(c, 'bytes-out') ?? 0) || 0,
    };
  }
  return {
    version: str(ike, 'version') === '1' ? 'ikev1' : 'ikev2',
    ike: {
      state: str(ike, 'state') ?? '',
      encr: alg(ike, 'encr-alg', 'encr-keysize'),
      integ: str(ike, 'integ-alg') ?? '',
      prf: str(ike, 'prf-alg') ?? '',
      dh: str(ike, 'dh-group') ?? '',
      natLocal: str(ike, 'nat-local') === 'yes',
      natRemote: str(ike, 'nat-remote') === 'yes',
      rekeyAt: at(now, str(ike, 'rekey-time') ?? str(ike, 'reauth-time')),
    },
    child,
  };
}

/**
 * Worst-case bytes ESP in transport mode adds to each L2TP datagram (RFC 4303:
 * SPI+sequence, IV, padding to the cipher block, pad length + next header, ICV),
 * plus the UDP header of NAT traversal (RFC 3948). Unknown transforms get the
 * largest common case so the softwire MTU errs small, never into fragmentation.
 */
export function espOverhead(encr: string, integ: string, encap: boolean): number {
  const e = encr.toUpperCase();
  let iv = 16;
  let block = 16;
  let icv = 0;
  if (/GCM|CCM|CHACHA20/.test(e)) {
    iv = 8;
    block = 4;
    const m = /_(8|12|16)\b|GCM_(8|12|16)|CCM_(8|12|16)/.exec(e);
    icv = m ? Number(m[1] ?? m[2] ?? m[3]) : 16;
  } else if (/CTR/.test(e)) {
    iv = 8;
    block = 4;
  } else if (/CBC/.test(e) && /3DES|DES|BLOWFISH|CAST/.test(e)) {
    iv = 8;
    block = 8;
  }
  if (!icv) {
    const t = /_(\d+)$/.exec(integ.toUpperCase());
    icv = t ? Number(t[1]) / 8 : 32;
  }
  return 8 + iv + (block - 1) + 2 + icv + (encap ? 8 : 0);
}

export type Phase = 'idle' | 'connecting' | 'up' | 'closing';

/**
 * The SA's phase and the decisions that depend on it: whether an event from
 * charon means the SA we rely on is gone (then the softwire must go through the
 * normal reconnect path) and whether the deadline for bringing it up has passed.
 */
export class IpsecCore {
  phase: Phase = 'idle';
  private deadlineAt = 0;
  lastFailure: Failure | null = null;
  sa: IpsecSaStatus | null = null;

  begin(now: number, deadlineMs: number): void {
    this.phase = 'connecting';
    this.deadlineAt = now + deadlineMs;
    this.lastFailure = null;
    this.sa = null;
  }

  /** Milliseconds left to bring the SA up. */
  remaining(now: number): number {
    return Math.max(0, this.deadlineAt - now);
  }

  established(sa: IpsecSaStatus | null): void {
    if (this.phase === 'connecting') {
      this.phase = 'up';
      this.sa = sa;
    }
  }

  failed(f: Failure): void {
    this.lastFailure = f;
    this.phase = 'idle';
  }

  closing(): void {
    this.phase = 'closing';
  }

  closed(): void {
    this.phase = 'idle';
    this.sa = null;
  }

  /**
   * An event from charon. Returns the reason when it ends the SA the softwire runs
   * on (IKE_SA or our CHILD_SA down while up); 'refresh' when status should be re-read.
   */
  onEvent(name: string, msg: ViciMessage): { lost: string } | 'refresh' | null {
    if (this.phase !== 'up') return null;
    const ike = section(msg, CONN);
    if (!ike) return null;
    const up = str(msg, 'up') === 'yes';
    if (name === 'ike-updown' && !up) return { lost: 'IPsec: the IKE SA with the SC went down (deleted by the SC, or dead peer detection found it silent)' };
    if (name === 'child-updown' && !up) {
      const kids = section(ike, 'child-sas');
      const ours = Object.keys(kids ?? {}).some((k) => str(section(kids, k), 'name') === CHILD);
      if (ours) return { lost: 'IPsec: the ESP SA protecting L2TP went down (deleted by the SC or a failed rekey)' };
      return null;
    }
    if (name === 'ike-rekey' || name === 'child-rekey') return 'refresh';
    return null;
  }
}
