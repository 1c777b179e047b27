import { getSystemErrorName } from 'node:util';

/**
 * A failed netlink operation. The message names the operation and its object
 * ("add route 2001:db8::/48 unreachable: EEXIST") so that a log line alone says
 * what went wrong; `errno` (positive, as in os.constants.errno) and `code` are
 * set when the kernel gave an error number.
 */
export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  readonly errno: number | undefined;
  readonly code: string | undefined;

  constructor(
    readonly operation: string,
    detail: string,
    errno?: number,
  ) {
    super(`${operation}: ${detail}`);
    this.errno = errno;
    this.code = errno === undefined ? undefined : errnoName(errno);
  }

  /** From a kernel error number (either sign). */
  static fromErrno(operation: string, errno: number): NetlinkError {
    const positive = Math.abs(errno);
    return new NetlinkError(operation, errnoName(positive), positive);
  }

  /** Wraps anything thrown below us, keeping errno/code if it had them. */
  static wrap(operation: string, e: unknown): NetlinkError {
    if (e instanceof NetlinkError) return e.operation === operation ? e : new NetlinkError(operation, e.message, e.errno);
    const err = e as { errno?: unknown; message?: unknown };
    if (typeof err?.errno === 'number' && err.errno !== 0) return NetlinkError.fromErrno(operation, err.errno);
    return new NetlinkError(operation, typeof err?.message === 'string' ? err.message : String(e));
  }
}

function errnoName(positive: number): string {
  try {
    // getSystemErrorName wants the negative libuv form.
    return getSystemErrorName(-positive);
  } catch {
    return `errno ${positive}`;
  }
}
