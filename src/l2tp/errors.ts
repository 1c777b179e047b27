/**
 * The one exception type the L2TP decoders throw. Input comes from the network and may be
 * hostile, so every malformation maps to a short `reason` that the edge can use directly
 * as a drop-counter key; anything else escaping a decoder is a bug.
 */
export type L2tpDecodeReason =
  | 'short' // fewer bytes than the fixed part needs
  | 'version' // Ver field is not 2
  | 'control-flags' // control message without L or S, or with O
  | 'length' // header Length field inconsistent with the datagram
  | 'offset' // Offset Size points past the end of the message
  | 'too-long' // message larger than we are willing to parse
  | 'avp-length' // AVP length field below 6 or past the end of the message
  | 'avp-count' // more AVPs than the per-message bound
  | 'avp-value' // a known AVP whose value has the wrong size (typeAvps lists it as malformed instead)
  | 'avp-hidden-no-secret' // H bit set but no tunnel secret is configured
  | 'avp-hidden-no-vector' // H bit set but no Random Vector AVP came before it
  | 'avp-hidden-length' // the unhidden original length does not fit
  | 'message-type' // first AVP is not a well-formed Message Type AVP
  | 'missing-avp'; // a required AVP is absent from a received message

export class L2tpDecodeError extends Error {
  override readonly name = 'L2tpDecodeError';
  constructor(
    readonly reason: L2tpDecodeReason,
    detail?: string,
  ) {
    super(detail ? `${reason}: ${detail}` : reason);
  }
}

export function decodeFail(reason: L2tpDecodeReason, detail?: string): never {
  throw new L2tpDecodeError(reason, detail);
}
