import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runInNewContext } from 'node:vm';

/**
 * Loads openwrt/luci-proto-softwire's protocol module outside a browser, to check
 * what it declares (options, datatypes, validators) against the agent's schema.
 * LuCI compiles a module's body into a function whose parameters are the modules
 * it names in its 'require' lines; this does the same with recording stand-ins for
 * rpc, form and network. It says nothing about how LuCI renders the page: that is
 * test/interop/luci-browser.test.ts, with LuCI's own code in a real browser.
 */

export const LUCI_PKG = resolve(__dirname, '../../openwrt/luci-proto-softwire');
export const PROTO_JS = join(LUCI_PKG, 'htdocs/luci-static/resources/protocol/softwire.js');

export interface RecordedOption {
  tab: string;
  /** The form class's name: Value, DynamicList, ListValue, Flag, DummyValue. */
  widget: string;
  name: string;
  title: string;
  datatype?: string;
  placeholder?: string;
  default?: unknown;
  rmempty?: boolean;
  password?: boolean;
  choices: string[];
  validate?: (sectionId: string, value: unknown) => true | string;
}

export interface ProtoModule {
  name: string;
  def: Record<string, unknown> & {
    checkServer(v: unknown): true | string;
    checkUsername(v: unknown): true | string;
    checkHostAvp(v: unknown): true | string;
  };
  /** The options renderFormOptions adds, in order, for an interface section named `sid`. */
  options(sid?: string): RecordedOption[];
}

/** LuCI's String.prototype.format for the conversions the module uses (%s, %d, %f). */
function format(this: string, ...args: unknown[]): string {
  let i = 0;
  return this.replace(/%([sdf])/g, (_m, c: string) => {
    const v = args[i++];
    return c === 'd' ? String(Math.trunc(Number(v))) : String(v);
  });
}

export function loadProto(): ProtoModule {
  const src = readFileSync(PROTO_JS, 'utf8');
  const requires = [...src.matchAll(/^'require ([\w.]+)';$/gm)].map((m) => m[1]);
  let registered: { name: string; def: ProtoModule['def'] } | undefined;
  const widget = (name: string) => ({ name, enabled: '1', disabled: '0' });
  const form = Object.fromEntries(['Value', 'DynamicList', 'ListValue', 'Flag', 'DummyValue'].map((n) => [n, widget(n)]));
  const stand: Record<string, unknown> = {
    rpc: { declare: () => () => Promise.resolve({}) },
    form,
    network: {
      registerPatternVirtual: () => {},
      registerProtocol: (name: string, def: ProtoModule['def']) => {
        registered = { name, def };
        return def;
      },
      getIfnameOf: () => null,
    },
  };
  for (const r of requires) if (!(r in stand)) throw new Error(`softwire.js requires '${r}', which this loader does not stand in for`);
  const context = {
    _: (s: string) => s,
    L: { resolveDefault: (p: Promise<unknown>, d: unknown) => p.catch(() => d) },
    stand,
  };
  // A fresh realm has its own String; give it LuCI's format.
  const body = `String.prototype.format = ${format.toString()};\n(function(${requires.join(', ')}) {\n${src}\n})(${requires.map((r) => `stand.${r}`).join(', ')})`;
  runInNewContext(body, context, { filename: PROTO_JS });
  if (!registered) throw new Error('softwire.js did not call network.registerProtocol');
  const { name, def } = registered;
  return {
    name,
    def,
    options(sid = 'sw6') {
      const out: RecordedOption[] = [];
      const section = {
        taboption(tab: string, cls: { name: string; enabled: string; disabled: string }, optName: string, title: string) {
          const o: RecordedOption & { value(k: string): void; enabled: string; disabled: string } = {
            tab,
            widget: cls.name,
            name: optName,
            title,
            choices: [],
            enabled: cls.enabled,
            disabled: cls.disabled,
            value(k: string) {
              this.choices.push(k);
            },
          };
          out.push(o);
          return o;
        },
      };
      (def.renderFormOptions as (this: unknown, s: unknown) => void).call({ sid }, section);
      return out;
    },
  };
}
