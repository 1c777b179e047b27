import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { charonUnavailable } from '../lab/charon';
import { l2tpnsAvailable } from '../lab/l2tpns';
import { type GuestRun, bootGuest, readGuestFile, removeGuestDir, umlUnavailable } from '../lab/uml';

/**
 * IPsec for the softwire (RFC 5571 section 10 / RFC 3193, NAT-T RFC 3947/3948)
 * against real strongSwan on a real ESP-capable kernel. This machine's kernel has
 * no ESP, so the whole lab runs in one User-Mode Linux guest booted from this
 * machine's own files (ipsec-uml-guest.ts, shared/notes/uml-kernel.md): SI (the
 * agent + its charon) -- MID (a router, masquerading in the NAT cases) -- SC
 * (l2tpns + FreeRADIUS + charon, dropping L2TP that did not come through an SA).
 * The guest records facts; this file judges them.
 *
 * The UML kernel has nftables without the ip/inet families, so MID masquerades
 * and counts with iptables-legacy (same netfilter NAT underneath).
 */

const ROOT = resolve(__dirname, '../..');
const GUEST_BUNDLE = join(ROOT, 'dist/uml/ipsec-guest.js');

function unavailable(): string | null {
  const u = umlUnavailable() ?? charonUnavailable();
  if (u) return u;
  const l = l2tpnsAvailable();
  if (!l.ok) return l.message;
  if (!existsSync('/usr/sbin/iptables-legacy')) return '/usr/sbin/iptables-legacy missing: apt-get install iptables (the UML kernel has no nftables ip family)';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces inside the guest are made by the guest, but UML needs /dev/shm and the test writes /var/tmp)';
  return null;
}

const skip = unavailable() ?? false;

interface Facts {
  name: string;
  error?: string;
  up?: boolean;
  ping6?: true | string;
  mtu?: number;
  ipsecStatus?: {
    phase: string;
    overhead: number;
    sa: { version: string; ike: { state: string; natLocal: boolean; natRemote: boolean; encr: string; dh: string; rekeyAt: string | null }; child: { state: string; mode: string; encr: string; encap: boolean; rekeyAt: string | null } | null };
  };
  counters?: Record<string, number>;
  exitCode?: number | null;
  xfrmStateAfter?: string;
  xfrmPolicyAfter?: string;
  /** pino times of the 'IPsec: negotiating' lines (ISO strings or epoch ms). */
  attempts?: (string | number)[];
  errors?: string[];
  status?: { lastError: { layer: string; message: string } | null; ipsec?: { lastError: string | null } };
  [k: string]: unknown;
}

describe('IPsec softwire in a UML guest (strongSwan charon, l2tpns)', { skip }, () => {
  let guest: (GuestRun & { dir: string }) | null = null;
  const results = new Map<string, Facts>();

  before(async () => {
    await build({ entryPoints: [join(ROOT, 'test/interop/ipsec-uml-guest.ts')], outfile: GUEST_BUNDLE, bundle: true, platform: 'node', target: 'node20', format: 'cjs', logLevel: 'warning' });
    // Six cases; UML makes every fork and node start slow (about 7 minutes in all on this 2-core machine): generous but bounded.
    guest = await bootGuest(`node ${GUEST_BUNDLE} /mnt`, { timeoutMs: 900_000 });
    for (const line of readGuestFile(guest, 'results.jsonl').split('\n')) {
      if (!line.trim()) continue;
      const f = JSON.parse(line) as Facts;
      results.set(f.name, f);
    }
    if (!process.env.KEEP_UML) removeGuestDir(guest.dir);
  });

  function get(name: string): Facts {
    const f = results.get(name);
    const why = guest ? `guest log:\n${readGuestFile(guest, 'guest.log').slice(-3000)}\nprogress:\n${readGuestFile(guest, 'progress.log')}\nconsole tail:\n${guest.console.slice(-1500)}` : 'guest did not run';
    assert.ok(f, `no result for case ${name} (timed out: ${guest?.timedOut})\n${why}`);
    assert.equal(f.error, undefined, `case ${name} failed in the guest:\n${f.error}\n${JSON.stringify(f, null, 1).slice(0, 4000)}`);
    return f;
  }

  for (const version of ['ikev2', 'ikev1'] as const) {
    for (const nat of [false, true]) {
      const name = nat ? `${version}-nat` : version;
      test(`${version}${nat ? ' behind a NAT' : ''}: SA before SCCRQ, softwire up, ping6 across, only ${nat ? 'UDP 4500' : 'ESP'} on the wire${name === 'ikev2' ? ', SA deleted by the SC -> reconnect' : ''}, SIGTERM removes SAs and policies`, () => {
        const f = get(name);
        assert.equal(f.up, true);
        assert.equal(f.ping6, true, `ping6 across the softwire: ${String(f.ping6)}`);
        const s = f.ipsecStatus!;
        assert.equal(s.phase, 'up');
        assert.equal(s.sa.version, version);
        assert.equal(s.sa.ike.state, 'ESTABLISHED');
        assert.equal(s.sa.child?.state, 'INSTALLED');
        assert.equal(s.sa.child?.mode, 'TRANSPORT');
        assert.equal(s.sa.child?.encap, nat, 'NAT-T (UDP encapsulation) exactly when there is a NAT');
        assert.equal(s.sa.ike.natLocal, nat, 'charon saw our side NATed');
        assert.match(s.sa.child!.encr, /AES_GCM_16-256/);
        assert.ok(s.sa.child?.rekeyAt, 'rekey time reported');
        // RFC 5571 5.2.1: 1500 - 40 (IPv4/UDP/L2TP/PPP) - ESP transport AES-GCM-16 (8+8+3+2+16=37) - NAT-T UDP 8.
        assert.equal(s.overhead, nat ? 45 : 37);
        assert.equal(f.mtu, 1460 - s.overhead);
        const c = f.counters!;
        assert.equal(c.l2tpClear, 0, `no cleartext L2TP towards the SC: ${JSON.stringify(c)}`);
        assert.equal(c.l2tpClearBack, 0, `no cleartext L2TP from the SC: ${JSON.stringify(c)}`);
        if (nat) {
          assert.equal(c.esp, 0, 'behind a NAT ESP rides in UDP 4500, never bare');
          assert.ok(c.natt! > 10 && c.nattBack! > 10, `UDP 4500 both ways: ${JSON.stringify(c)}`);
        } else {
          assert.ok(c.esp! > 20, `ESP packets both ways: ${JSON.stringify(c)}`);
          assert.equal(c.natt, 0);
        }
        assert.equal(f.exitCode, 0);
        assert.equal(f.xfrmStateAfter, '', 'no xfrm state left after SIGTERM');
        assert.equal(f.xfrmPolicyAfter, '', 'no xfrm policy left after SIGTERM');
        assert.doesNotMatch(String(f.siConnsAfter), /softwire/, 'our connection is unloaded from charon');
        if (name === 'ikev2') {
          // The SC deleted the IKE SA while the softwire ran: normal reconnect through a new SA.
          const lost = f.lostLines as string[];
          assert.ok(lost.some((l) => /^ipsec down: IPsec: the (IKE|ESP) SA .* went down/.test(l)), JSON.stringify(lost));
          const k = f.afterKill as { reconnects: number; lastError: { layer: string } | null; ipsecPhase: string };
          assert.ok(k.reconnects >= 1);
          assert.equal(k.lastError?.layer, 'ipsec');
          assert.equal(k.ipsecPhase, 'up');
          assert.equal(f.ping6AfterKill, true, String(f.ping6AfterKill));
        }
      });
    }
  }

  for (const [version, nat] of [
    ['ikev2', false],
    ['ikev1', true],
  ] as const) {
    test(`${version}${nat ? ' behind a NAT' : ''} with a wrong PSK: plain-words error, backoff between attempts, no L2TP sent, nothing left behind`, () => {
      const f = get(`${version}-wrong-psk`);
      assert.ok(f.errors?.some((e) => /wrong pre-shared key/.test(e)), `error names the wrong key: ${JSON.stringify(f.errors)}\n${JSON.stringify(f.siCharonTail)}`);
      assert.equal(f.status?.lastError?.layer, 'ipsec');
      assert.match(f.status?.lastError?.message ?? '', /wrong pre-shared key/);
      assert.equal(f.attempts?.length, 2, `two attempts seen: ${JSON.stringify(f.attempts)}`);
      const ms = (x: string | number) => (typeof x === 'number' ? x : Date.parse(x));
      const gap = ms(f.attempts![1]!) - ms(f.attempts![0]!);
      // A permanent failure waits at least reconnectCap/4 = 6 s (plus the failed attempt itself): no hot loop.
      assert.ok(gap >= 6000, `attempts ${gap} ms apart`);
      assert.equal(f.counters!.l2tpClear, 0, 'no SCCRQ went out without an SA');
      assert.equal(f.exitCode, 0);
      assert.equal(f.xfrmStateAfter, '');
      assert.equal(f.xfrmPolicyAfter, '');
    });
  }
});
