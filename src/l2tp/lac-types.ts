import type { TimerAction } from '../core/actions';
import type { Secret } from './avp';
import type { Bearer, Framing } from './avps';
import type { ChannelConfig } from './channel';
import type { ControlMessage } from './messages';
import { adviceFor } from './result-codes';

/**
 * The types of the LAC core (lac.ts) shared by its pieces: the tunnel (tunnel.ts), the
 * session (session.ts) and the data path (data.ts). lac.ts re-exports the public ones.
 */

export type PeerAddressPolicy = 'first-reply' | 'follow' | 'ignore';

export interface LacConfig {
  hostName: string;
  vendorName?: string;
  firmwareRevision?: number;
  /** Framing Capabilities in SCCRQ; RFC 5571 5.1.1.1 says both bits SHOULD be set. */
  framingCapabilities?: Framing;
  /** Bearer Capabilities in SCCRQ; omitted unless set (not relevant to Softwires). */
  bearerCapabilities?: Bearer;
  /** Our Receive Window Size, advertised in SCCRQ. */
  receiveWindowSize?: number;
  /** Tunnel secret: enables tunnel authentication and reading hidden AVPs. */
  secret?: Secret;
  /** Send a HELLO after this long with nothing received; 0 disables (RFC 5571 5.1.2: 60 s). */
  helloIntervalMs?: number;
  channel?: Partial<Omit<ChannelConfig, 'receiveWindow'>>;
  /** (Tx) Connect Speed in ICCN; RFC 5571 5.1.1.1 says 0. */
  txConnectSpeed?: number;
  /** Framing Type in ICCN; RFC 5571 5.1.1.1: sync set, async clear. */
  framingType?: Framing;
  bearerType?: Bearer;
  /** Ask for sequenced data (Sequencing Required AVP in ICCN) and send Ns on data. */
  dataSequencing?: boolean;
  /** Place the call (ICRQ) as soon as the tunnel is up. Default true. */
  autoSession?: boolean;
  peerAddressPolicy?: PeerAddressPolicy;
  /** How long to keep acknowledging after the last exchange of a teardown (RFC 2661 5.7/5.8). */
  lingerMs?: number;
  /** Source of randomness for IDs and challenges (the driver passes the system's CSPRNG; tests a seeded one). */
  random: (n: number) => Uint8Array;
}

export const TUNNEL_STATES = ['idle', 'wait-ctl-reply', 'established', 'closing', 'closed'] as const;
export type TunnelState = (typeof TUNNEL_STATES)[number];
export const SESSION_STATES = ['idle', 'wait-reply', 'established'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export type DownReason =
  | 'local-close'
  | 'peer-stopccn'
  | 'peer-cdn'
  | 'auth-failed'
  | 'max-retries'
  | 'queue-full'
  | 'protocol-error'
  | 'unknown-mandatory-avp'
  | 'version-unsupported'
  | 'tunnel-down';

export interface TunnelInfo {
  localTunnelId: number;
  remoteTunnelId: number;
  peerHostName: string;
  peerVendorName?: string;
  peerFirmwareRevision?: number;
  peerReceiveWindow: number;
  authenticated: boolean;
}

export interface SessionInfo {
  localSessionId: number;
  remoteSessionId: number;
  localTunnelId: number;
  remoteTunnelId: number;
  callSerialNumber: number;
  sequencing: boolean;
}

export interface DownAction {
  type: 'down';
  layer: 'tunnel' | 'session';
  reason: DownReason;
  resultCode?: number;
  errorCode?: number;
  message?: string;
  /** Peer's error code 7: it asks us to try another SC. */
  retryElsewhere?: boolean;
  /** The peer's code says retrying unchanged will not help (auth, protocol version). */
  permanent?: boolean;
}

export type LacAction =
  | { type: 'send'; bytes: Uint8Array }
  | TimerAction
  | { type: 'tunnel-up'; info: TunnelInfo }
  | { type: 'session-up'; info: SessionInfo }
  | { type: 'frame'; data: Uint8Array; priority: boolean }
  | DownAction
  | { type: 'peer-address'; from: string }
  /** Teardown finished (acks and linger done): the edge may release the socket. */
  | { type: 'closed' };

export const TIMER_HELLO = 'hello';
export const TIMER_LINGER = 'linger';

export interface LacCounters {
  ctrlIn: number;
  ctrlOut: number;
  zlbOut: number;
  retransmissions: number;
  duplicates: number;
  helloOut: number;
  dataIn: number;
  dataOut: number;
  /** Datagrams dropped, keyed by reason (decode reasons, 'unknown-tunnel', 'wrong-peer', ...). */
  drops: Record<string, number>;
}

export interface LacStatus {
  tunnel: {
    state: TunnelState;
    localId: number;
    remoteId: number | undefined;
    peerHostName: string | undefined;
    peerWindow: number;
    cwnd: number;
    unacknowledged: number;
  };
  session: {
    state: SessionState;
    localId: number | undefined;
    remoteId: number | undefined;
    sequencing: boolean;
  };
  peer: string | undefined;
  counters: LacCounters;
}

/** A control message the channel delivered in order, with the header's Session ID. */
export interface Delivered {
  sessionId: number;
  msg: ControlMessage;
}

/** Why and how a tunnel or session is cleared: the Result Code we send and the reason we report. */
export interface Teardown {
  reason: DownReason;
  result: number;
  error?: number;
  message?: string;
}


/** A 'down' action; with the peer's codes (fromPeer) it carries their advice (RFC 2661 4.4.2). */
export function downAction(
  layer: 'tunnel' | 'session',
  d: { reason: DownReason; result?: number; error?: number; message?: string },
  fromPeer: boolean,
): DownAction {
  const a: DownAction = { type: 'down', layer, reason: d.reason };
  if (d.result !== undefined) a.resultCode = d.result;
  if (d.error !== undefined) a.errorCode = d.error;
  if (d.message !== undefined) a.message = d.message;
  if (fromPeer) Object.assign(a, adviceFor(layer, d.result, d.error));
  return a;
}
