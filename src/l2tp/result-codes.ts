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

/** What a CDN that arrives while PPP authenticates means (issue 16 item 6). */
export type AuthCdnVerdict =
  /** The SC rejected the login: retrying with the same credentials will not help. */
  | { kind: 'auth-rejected' }
  /** Not about the credentials (resources, protocol errors, call failures): retry. */
  | { kind: 'transient'; retryElsewhere: boolean }
  /** Not about the credentials, but the SC says retrying it cannot help (result 5). */
  | { kind: 'permanent' };

/**
 * Classifies a CDN received during the authentication phase by its Result and Error
 * Code (RFC 2661 4.4.2). Many SCs answer a rejected login with a CDN alone and no
 * CHAP Failure or PAP Nak: l2tpns sends result 3 (administrative), an xl2tpd whose
 * pppd exits after a failed login sends result 1 (carrier lost), and vendor SCs send
 * result 2 with error 0 or 6 (vendor specific). Those, and a CDN without a Result
 * Code, are read as a rejected login. Everything that names another cause is not:
 * temporary lack of facilities (4), insufficient resources or "try another" (error 4
 * or 7), protocol errors (errors 1, 2, 3, 5, 8) and the call-level results 6 to 11.
 */
export function classifyAuthCdn(result: number | undefined, error: number | undefined): AuthCdnVerdict {
  if (result === undefined) return { kind: 'auth-rejected' };
  if (result === CdnResult.PERMANENT_NO_FACILITIES) return { kind: 'permanent' };
  if (result === CdnResult.LOST_CARRIER || result === CdnResult.ADMINISTRATIVE) return { kind: 'auth-rejected' };
  if (result === CdnResult.GENERAL_ERROR) {
    if (error === undefined || error === ErrorCode.NO_ERROR || error === ErrorCode.VENDOR_SPECIFIC) return { kind: 'auth-rejected' };
    return { kind: 'transient', retryElsewhere: error === ErrorCode.TRY_ANOTHER };
  }
  return { kind: 'transient', retryElsewhere: error === ErrorCode.TRY_ANOTHER };
}
