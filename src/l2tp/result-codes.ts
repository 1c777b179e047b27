/** Result and error codes of RFC 2661 4.4.2 that the LAC sends or interprets. */

/** StopCCN Result Codes. */
export const StopCcnResult = {
  GENERAL_REQUEST: 1,
  GENERAL_ERROR: 2,
  ALREADY_EXISTS: 3,
  NOT_AUTHORIZED: 4,
  VERSION_UNSUPPORTED: 5,
  SHUTTING_DOWN: 6,
  FSM_ERROR: 7,
} as const;

/** CDN Result Codes (those meaningful for an incoming call). */
export const CdnResult = {
  LOST_CARRIER: 1,
  GENERAL_ERROR: 2,
  ADMINISTRATIVE: 3,
  TEMPORARY_NO_FACILITIES: 4,
  PERMANENT_NO_FACILITIES: 5,
} as const;

/** General Error Codes, carried with result code 2 (GENERAL_ERROR). */
export const ErrorCode = {
  NO_ERROR: 0,
  NO_CONTROL_CONNECTION: 1,
  LENGTH_WRONG: 2,
  FIELD_OUT_OF_RANGE: 3,
  INSUFFICIENT_RESOURCES: 4,
  INVALID_SESSION_ID: 5,
  VENDOR_SPECIFIC: 6,
  TRY_ANOTHER: 7,
  UNKNOWN_MANDATORY_AVP: 8,
} as const;

export interface ResultAdvice {
  /** The peer asks us to try another LNS (error code 7, "Try another"). */
  retryElsewhere: boolean;
  /** Retrying the same peer cannot help without a configuration change (auth, version). */
  permanent: boolean;
}

/** What a StopCCN (tunnel) or CDN (session) from the peer tells the agent about reconnecting. */
export function adviceFor(layer: 'tunnel' | 'session', result: number | undefined, error: number | undefined): ResultAdvice {
  const permanent =
    layer === 'tunnel'
      ? result === StopCcnResult.NOT_AUTHORIZED || result === StopCcnResult.VERSION_UNSUPPORTED
      : result === CdnResult.PERMANENT_NO_FACILITIES;
  return { retryElsewhere: error === ErrorCode.TRY_ANOTHER, permanent };
}
