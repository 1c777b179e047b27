import { createHash } from 'node:crypto';
import { decodeFail } from './errors';

/**
 * Raw AVP codec (RFC 2661 4.1) and AVP hiding (4.3).
 *
 *   |M|H| rsvd  |      Length (10 bits)     |   Vendor ID   | Attribute Type | value...
 */
export const AVP_FLAG_M = 0x8000;
export const AVP_FLAG_H = 0x4000;
export const AVP_RESERVED_MASK = 0x3c00;
export const AVP_LENGTH_MASK = 0x03ff;
export const AVP_HEADER_SIZE = 6;
export const AVP_MAX_VALUE = AVP_LENGTH_MASK - AVP_HEADER_SIZE;
/** A real control message has well under 40 AVPs; the bound keeps hostile input cheap. */
export const MAX_AVPS_PER_MESSAGE = 256;
export const RANDOM_VECTOR_TYPE = 36;

export interface RawAvp {
  mandatory: boolean;
  /** H bit as received. After decoding, `value` already holds the unhidden plaintext. */
  hidden: boolean;
  /** Reserved bits as received; non-zero means the AVP must be treated as unrecognised (4.1). */
  reserved: number;
  vendorId: number;
  type: number;
  value: Uint8Array;
}

export type Secret = Uint8Array | string;

const toBytes = (s: Secret): Uint8Array => (typeof s === 'string' ? new TextEncoder().encode(s) : s);

const md5 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/**
 * The 4.3 keystream applied to `input`: block 1 is keyed by MD5(type ‖ secret ‖ RV), every
 * later block by MD5(secret ‖ previous ciphertext block). `cipherIsInput` says which side
 * holds the ciphertext, because chaining always runs over the ciphertext.
 */
function md5Chain(attrType: number, input: Uint8Array, secret: Uint8Array, vector: Uint8Array, cipherIsInput: boolean) {
  const out = new Uint8Array(input.length);
  let key = md5(new Uint8Array([attrType >> 8, attrType & 0xff]), secret, vector);
  for (let at = 0; at < input.length; at += 16) {
    const end = Math.min(at + 16, input.length);
    for (let i = at; i < end; i++) out[i] = input[i]! ^ key[i - at]!;
    if (end < input.length) key = md5(secret, (cipherIsInput ? input : out).subarray(at, end));
  }
  return out;
}

/**
 * Hides `value` for attribute `attrType`. `padding` extra bytes (zeros) conceal the true
 * length, as 4.3 allows. Provided for test peers: RFC 5571 says Softwire AVPs SHOULD NOT be
 * hidden, and this implementation never hides its own.
 */
export function hideValue(attrType: number, value: Uint8Array, secret: Secret, vector: Uint8Array, padding = 0): Uint8Array {
  const plain = new Uint8Array(2 + value.length + padding);
  plain[0] = value.length >> 8;
  plain[1] = value.length & 0xff;
  plain.set(value, 2);
  return md5Chain(attrType, plain, toBytes(secret), vector, false);
}

export function unhideValue(attrType: number, hiddenValue: Uint8Array, secret: Secret, vector: Uint8Array): Uint8Array {
  if (hiddenValue.length < 2) decodeFail('avp-hidden-length', 'hidden value shorter than its length field');
  const plain = md5Chain(attrType, hiddenValue, toBytes(secret), vector, true);
  const len = (plain[0]! << 8) | plain[1]!;
  if (len > plain.length - 2) decodeFail('avp-hidden-length', `original length ${len} > ${plain.length - 2}`);
  return plain.subarray(2, 2 + len);
}

/** Returns a copy of `avp` with its value hidden and H set. */
export function hide(avp: RawAvp, secret: Secret, vector: Uint8Array, padding = 0): RawAvp {
  return { ...avp, hidden: true, value: hideValue(avp.type, avp.value, secret, vector, padding) };
}

export interface AvpDecodeOptions {
  /** Tunnel secret, needed only to read hidden AVPs. */
  secret?: Secret;
}

/** Splits a control message body into AVPs, unhiding hidden ones. Throws only L2tpDecodeError. */
export function decodeRawAvps(body: Uint8Array, opts: AvpDecodeOptions = {}): RawAvp[] {
  const avps: RawAvp[] = [];
  let vector: Uint8Array | undefined;
  let at = 0;
  while (at < body.length) {
    if (avps.length >= MAX_AVPS_PER_MESSAGE) decodeFail('avp-count');
    if (body.length - at < AVP_HEADER_SIZE) decodeFail('avp-length', 'truncated AVP header');
    const word = (body[at]! << 8) | body[at + 1]!;
    const len = word & AVP_LENGTH_MASK;
    if (len < AVP_HEADER_SIZE || at + len > body.length) decodeFail('avp-length', `AVP length ${len}`);
    const avp: RawAvp = {
      mandatory: (word & AVP_FLAG_M) !== 0,
      hidden: (word & AVP_FLAG_H) !== 0,
      reserved: (word & AVP_RESERVED_MASK) >> 10,
      vendorId: (body[at + 2]! << 8) | body[at + 3]!,
      type: (body[at + 4]! << 8) | body[at + 5]!,
      value: body.subarray(at + AVP_HEADER_SIZE, at + len),
    };
    if (avp.hidden) {
      if (opts.secret === undefined) decodeFail('avp-hidden-no-secret', `attribute ${avp.type}`);
      // 4.3: the Random Vector that applies is the nearest one before the hidden AVP.
      if (!vector) decodeFail('avp-hidden-no-vector', `attribute ${avp.type}`);
      avp.value = unhideValue(avp.type, avp.value, opts.secret, vector);
    } else if (avp.vendorId === 0 && avp.type === RANDOM_VECTOR_TYPE) {
      vector = avp.value;
    }
    avps.push(avp);
    at += len;
  }
  return avps;
}

/** Serialises AVPs exactly as given (a hidden AVP's value must already be hidden). */
export function encodeRawAvps(avps: readonly RawAvp[]): Uint8Array {
  let total = 0;
  for (const a of avps) {
    if (a.value.length > AVP_MAX_VALUE) throw new RangeError(`AVP ${a.type} value of ${a.value.length} bytes`);
    total += AVP_HEADER_SIZE + a.value.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const a of avps) {
    const len = AVP_HEADER_SIZE + a.value.length;
    const word = (a.mandatory ? AVP_FLAG_M : 0) | (a.hidden ? AVP_FLAG_H : 0) | ((a.reserved & 0xf) << 10) | len;
    out[at] = word >> 8;
    out[at + 1] = word & 0xff;
    out[at + 2] = a.vendorId >> 8;
    out[at + 3] = a.vendorId & 0xff;
    out[at + 4] = a.type >> 8;
    out[at + 5] = a.type & 0xff;
    out.set(a.value, at + AVP_HEADER_SIZE);
    at += len;
  }
  return out;
}

/** CHAP-style tunnel authentication response (RFC 2661 4.4.3 / 5.1.1): MD5(id ‖ secret ‖ challenge). */
export function challengeResponse(messageType: number, secret: Secret, challenge: Uint8Array): Uint8Array {
  return md5(new Uint8Array([messageType & 0xff]), toBytes(secret), challenge);
}
