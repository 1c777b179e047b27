import { type Config, FIELDS, type Field, flagName } from './schema';
import { ConfigError, resolveConfig } from './load';

/**
 * OpenWrt UCI -> softwire JSON config, in one place. Both the procd init script
 * (`config softwire 'main'` in /etc/config/softwire) and the netifd protocol
 * handler (`config interface 'sw6'` with `option proto 'softwire'` in
 * /etc/config/network, or the JSON netifd hands a handler) go through here, so
 * an option means the same thing and fails with the same message everywhere.
 */

/** One `config <type> ['<name>']` block. List options hold arrays, plain options strings. */
export interface UciSection {
  type: string;
  /** The given name, or uci's "@type[i]" for an anonymous section. */
  name: string;
  anonymous: boolean;
  /** Position among the sections of the same type (what "@type[index]" selects). */
  index: number;
  /** 1-based line of the `config` keyword. */
  line: number;
  options: Map<string, string | string[]>;
}

/** A file that is not UCI syntax; `line` is 1-based. */
export class UciSyntaxError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'UciSyntaxError';
  }
}

/** uci itself only allows these characters in option and section names. */
const NAME = /^[A-Za-z0-9_]+$/;
const TYPE = /^[A-Za-z0-9_-]+$/;
/** Far above any real config; bounds the work a hostile file can cause. */
const MAX_TEXT = 1 << 20;

/**
 * Splits one logical line into words the way uci's parser does: blanks separate
 * words, '#' at the start of a word starts a comment, 'single quotes' take text
 * literally, "double quotes" and bare words honour backslash escapes, and quoted
 * and bare pieces that touch form one word ('it'\''s'). A backslash or an open
 * quote at the end of a line continues the word on the next line.
 */
function tokenize(text: string, file: string): { words: string[]; line: number }[] {
  const out: { words: string[]; line: number }[] = [];
  let i = 0;
  let line = 1;
  while (i < text.length) {
    const words: string[] = [];
    const startLine = line;
    let endOfLine = false;
    while (!endOfLine && i < text.length) {
      const c = text[i];
      if (c === '\n') {
        i++;
        line++;
        endOfLine = true;
      } else if (c === ' ' || c === '\t' || c === '\r') {
        i++;
      } else if (c === '#') {
        while (i < text.length && text[i] !== '\n') i++;
      } else {
        let word = '';
        let quote: "'" | '"' | null = null;
        let quoteLine = line;
        for (;;) {
          if (i >= text.length) {
            if (quote) throw new UciSyntaxError(file, quoteLine, `unterminated ${quote === "'" ? 'single' : 'double'} quote`);
            break;
          }
          const ch = text[i];
          if (quote === "'") {
            if (ch === "'") quote = null;
            else word += ch;
            if (ch === '\n') line++;
            i++;
          } else if (ch === '\\') {
            const next = text[i + 1];
            if (next === undefined) throw new UciSyntaxError(file, line, 'backslash at end of file');
            if (next === '\n') line++;
            else if (next === '\r' && text[i + 2] === '\n') {
              i++;
              line++;
            } else word += next;
            i += 2;
          } else if (quote === '"') {
            if (ch === '"') quote = null;
            else word += ch;
            if (ch === '\n') line++;
            i++;
          } else if (ch === "'" || ch === '"') {
            quote = ch;
            quoteLine = line;
            i++;
          } else if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n' || ch === '#') {
            break;
          } else {
            word += ch;
            i++;
          }
        }
        words.push(word);
      }
    }
    if (words.length) out.push({ words, line: startLine });
  }
  return out;
}

/** Parses UCI text (one package) into its sections, in file order. */
export function parseUci(text: string, file = '<uci>'): UciSection[] {
  if (text.length > MAX_TEXT) throw new UciSyntaxError(file, 1, `file is larger than ${MAX_TEXT} bytes`);
  const sections: UciSection[] = [];
  let current: UciSection | undefined;
  for (const { words, line } of tokenize(text, file)) {
    const [keyword, ...args] = words;
    const fail = (reason: string): never => {
      throw new UciSyntaxError(file, line, reason);
    };
    switch (keyword) {
      case 'package':
        if (args.length !== 1) fail('"package" takes one name');
        break;
      case 'config': {
        if (args.length < 1 || args.length > 2) fail('"config" takes a type and an optional name');
        const [type, name] = args;
        if (!TYPE.test(type)) fail(`invalid section type "${type}"`);
        if (name !== undefined && !NAME.test(name)) fail(`invalid section name "${name}" (letters, digits and _ only)`);
        const index = sections.filter((s) => s.type === type).length;
        current = { type, name: name ?? `@${type}[${index}]`, anonymous: name === undefined, index, line, options: new Map() };
        sections.push(current);
        break;
      }
      case 'option':
      case 'list': {
        if (!current) fail(`"${keyword}" before any "config" line`);
        if (args.length !== 2) fail(`"${keyword}" takes a name and one value${args.length > 2 ? ' (quote values that hold blanks)' : ''}`);
        const [name, value] = args;
        if (!NAME.test(name)) fail(`invalid option name "${name}" (letters, digits and _ only)`);
        const options = (current as UciSection).options;
        if (keyword === 'option') options.set(name, value);
        else {
          // As uci does, a list entry after a plain option turns the option into a list.
          const prev = options.get(name);
          options.set(name, prev === undefined ? [value] : [...(Array.isArray(prev) ? prev : [prev]), value]);
        }
        break;
      }
      default:
        fail(`unknown keyword "${keyword}" (expected package, config, option or list)`);
    }
  }
  return sections;
}

/** camelCase config key -> UCI option name (hello_interval). */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Where the OpenWrt name reads better than the key (and matches what l2tp and ppp call it). */
const RENAMED: Readonly<Record<string, string>> = { sc: 'server', user: 'username', ncp: 'family' };

/** UCI option name -> field, for every key in FIELDS. */
export const UCI_OPTIONS: ReadonlyMap<string, Field> = new Map(FIELDS.map((f) => [RENAMED[f.key] ?? snakeCase(f.key), f]));

/** The UCI option name of a config key. */
export function uciName(key: string): string {
  return RENAMED[key] ?? snakeCase(key);
}

/** Options of `config softwire` sections that belong to the init script, not to the agent. */
export const SERVICE_OPTIONS: readonly string[] = ['enabled', 'respawn_threshold', 'respawn_timeout', 'respawn_retry'];

/**
 * Options of a netifd interface section that netifd (or our handler) acts on
 * itself: the agent never sees them.
 */
export const NETIFD_OPTIONS: readonly string[] = [
  'proto',
  'auto',
  'disabled',
  'ifname',
  'device',
  'force_link',
  'defaultroute',
  'peerdns',
  'metric',
  'dns',
  'dns_search',
  'dns_metric',
  'ip4table',
  'ip6table',
  'ip6assign',
  'ip6hint',
  'ip6class',
  'ip6ifaceid',
  'ip6weight',
  'ip6deprecated',
  'delegate',
  'sourcefilter',
];

export type SectionKind = 'softwire' | 'interface';

/** What a section's options look like: UCI text gives strings, netifd's JSON also numbers and booleans. */
export type UciValue = string | number | boolean | (string | number | boolean)[];

const TRUE_WORDS = ['1', 'true', 'yes', 'on', 'enabled'];
const FALSE_WORDS = ['0', 'false', 'no', 'off', 'disabled'];
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/**
 * Turns one UCI value into what resolveConfig expects for the field; values that
 * cannot be turned are passed on unchanged so resolveConfig names them with the
 * allowed range, the same message `run` gives for a bad JSON value.
 */
function toFieldValue(option: string, f: Field, raw: UciValue): { value?: unknown; problem?: string } {
  const scalar = (v: string | number | boolean): unknown => {
    if (typeof v !== 'string') return v;
    if ((f.kind === 'int' || f.kind === 'number') && DECIMAL.test(v.trim())) return Number(v);
    return v;
  };
  switch (f.kind) {
    case 'list':
    case 'lan':
      return { value: (Array.isArray(raw) ? raw : [raw]).map((v) => (typeof v === 'string' ? v : String(v))) };
    case 'bool': {
      if (typeof raw === 'boolean') return { value: raw };
      const word = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.toLowerCase() : undefined;
      if (word !== undefined && TRUE_WORDS.includes(word)) return { value: true };
      if (word !== undefined && FALSE_WORDS.includes(word)) return { value: false };
      return { problem: `${option}: ${show(raw)} is not allowed; expected 1 or 0 (also true/false, yes/no, on/off)` };
    }
    default:
      if (Array.isArray(raw)) {
        return { problem: `${option}: is given as a list (${raw.length} values); use "option ${option}", not "list ${option}"` };
      }
      return { value: scalar(raw) };
  }
}

/** resolveConfig names keys as camelCase; say the UCI option the user actually wrote. */
function renameKeys(message: string): string {
  let out = message.replace(/^([A-Za-z]+):/, (m, key: string) => (FIELDS.some((f) => f.key === key) ? `${uciName(key)}:` : m));
  for (const f of FIELDS) {
    if (/[A-Z]/.test(f.key)) out = out.replace(new RegExp(`\\b${f.key}\\b`, 'g'), uciName(f.key));
  }
  // Hints that name a flag ("use --sc HOST[:PORT]") name the UCI line instead.
  return out.replace(/--([a-z][a-z0-9-]*)(?: [A-Z][A-Z[\]:=]*)?/g, (m, flag: string) => {
    const f = FIELDS.find((x) => flagName(x.key) === flag);
    return f ? `${f.kind === 'list' || f.kind === 'lan' ? 'list' : 'option'} ${uciName(f.key)}` : m;
  });
}

export interface UciConversion {
  /** The JSON config (camelCase keys) holding exactly the options the section set. */
  json: Record<string, unknown>;
  /** The effective config (defaults filled in), as `run` would see it. */
  config: Config;
  warnings: string[];
}

/**
 * Maps one section's options to the JSON config and validates it as `run` will.
 * Throws ConfigError with one line per bad option, each starting with the UCI name.
 */
export function convertOptions(options: ReadonlyMap<string, UciValue>, kind: SectionKind): UciConversion {
  const ignored = kind === 'interface' ? NETIFD_OPTIONS : SERVICE_OPTIONS;
  const problems: string[] = [];
  const json: Record<string, unknown> = {};
  for (const [option, raw] of options) {
    if (ignored.includes(option)) continue;
    const f = UCI_OPTIONS.get(option);
    if (!f) {
      problems.push(`${option}: unknown option (known options: ${[...UCI_OPTIONS.keys()].join(', ')})`);
      continue;
    }
    const r = toFieldValue(option, f, raw);
    if (r.problem) problems.push(r.problem);
    else json[f.key] = r.value;
  }
  let loaded: ReturnType<typeof resolveConfig> | undefined;
  try {
    loaded = resolveConfig(json, {}, { forRun: true });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.problems.map(renameKeys));
  }
  if (problems.length || !loaded) {
    // One list in the order the options appear, whichever check found the problem.
    const order = [...options.keys()];
    const position = (p: string) => {
      const i = order.indexOf(p.slice(0, p.indexOf(':')));
      return i < 0 ? order.length : i;
    };
    throw new ConfigError(problems.map((p, i) => ({ p, i })).sort((a, b) => position(a.p) - position(b.p) || a.i - b.i).map((x) => x.p));
  }
  const out: Record<string, unknown> = {};
  const resolved = loaded.config as unknown as Record<string, unknown>;
  for (const key of Object.keys(json)) out[key] = resolved[key];
  return { json: out, config: loaded.config, warnings: loaded.warnings.map(renameKeys) };
}

/** Whether a section is one softwire runs from. */
export function isSoftwireSection(s: UciSection): boolean {
  return s.type === 'softwire' || (s.type === 'interface' && s.options.get('proto') === 'softwire');
}

/**
 * Picks the section to convert: by name ("main", "sw6", "@softwire[0]"), or
 * when no name is given the only softwire section in the file.
 */
export function selectSection(sections: readonly UciSection[], name?: string): UciSection {
  const candidates = sections.filter(isSoftwireSection);
  if (name !== undefined) {
    const found = sections.find((s) => s.name === name) ?? byPosition(sections, name);
    if (!found) throw new ConfigError([`section "${name}" not found (softwire sections: ${list(candidates)})`]);
    if (!isSoftwireSection(found)) {
      throw new ConfigError([`section "${name}" is a "${found.type}" section, not "config softwire" or an interface with proto softwire`]);
    }
    return found;
  }
  if (candidates.length === 1) return candidates[0];
  if (candidates.length === 0) throw new ConfigError(['no "config softwire" section and no interface with option proto \'softwire\'']);
  throw new ConfigError([`${candidates.length} softwire sections (${list(candidates)}); choose one with --section NAME`]);
}

/** uci's "@type[i]" (negative i counts from the end) selects a section by position, named or not. */
function byPosition(sections: readonly UciSection[], ref: string): UciSection | undefined {
  const m = /^@([A-Za-z0-9_-]+)\[(-?\d{1,6})\]$/.exec(ref);
  if (!m) return undefined;
  const ofType = sections.filter((s) => s.type === m[1]);
  const i = Number(m[2]);
  return ofType[i < 0 ? ofType.length + i : i];
}

function list(sections: readonly UciSection[]): string {
  return sections.length ? sections.map((s) => s.name).join(', ') : 'none';
}

/** Converts the chosen section of a UCI file's text. */
export function convertUci(text: string, file: string, sectionName?: string): UciConversion & { section: UciSection } {
  let sections: UciSection[];
  try {
    sections = parseUci(text, file);
  } catch (e) {
    if (e instanceof UciSyntaxError) throw new ConfigError([e.message]);
    throw e;
  }
  const section = selectSection(sections, sectionName);
  const kind: SectionKind = section.type === 'interface' ? 'interface' : 'softwire';
  return { ...convertOptions(section.options, kind), section };
}

/**
 * Converts the JSON netifd gives a protocol handler for an interface (option
 * names as keys; strings, numbers, booleans and arrays as declared in
 * proto_softwire_init_config).
 */
export function convertNetifdJson(data: unknown): UciConversion {
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(['netifd data: must be one JSON object']);
  const options = new Map<string, UciValue>();
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    const scalar = (x: unknown) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';
    if (scalar(v) || (Array.isArray(v) && v.every(scalar))) options.set(k, v as UciValue);
    else if (v !== null) throw new ConfigError([`${k}: ${JSON.stringify(v)} is not a string, number, boolean or list of them`]);
  }
  return convertOptions(options, 'interface');
}
