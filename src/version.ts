// Replaced by the bundler; read from package.json when running from source.
declare const SOFTWIRE_VERSION: string | undefined;

export const VERSION: string =
  typeof SOFTWIRE_VERSION === 'string'
    ? SOFTWIRE_VERSION
    : // eslint-disable-next-line @typescript-eslint/no-require-imports -- only when running from source
      (require('../package.json') as { version: string }).version;
