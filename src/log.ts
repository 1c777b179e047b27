import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Paths whose values are replaced before a line is written. Secrets reach the
 * logger only by accident (a whole config object logged at debug), so the list
 * covers every name a secret travels under.
 */
export const REDACT_PATHS = [
  'password',
  'secret',
  'tunnelSecret',
  'ipsecPsk',
  '*.ipsecPsk',
  '*.password',
  '*.secret',
  '*.tunnelSecret',
  '*.*.password',
  '*.*.secret',
  '*.*.tunnelSecret',
];

export interface LogOptions {
  level?: LevelWithSilent;
  /** Where JSON lines go; stdout by default. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? 'info';
  if (!LOG_LEVELS.includes(level)) {
    throw new Error(`log level "${String(level)}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return pino(
    {
      name: 'softwire',
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
