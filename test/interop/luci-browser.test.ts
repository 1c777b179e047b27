import assert from 'node:assert/strict';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../lab/netns';
import { DISPATCHER_CGI, EMPTY_CONFIGS, LUCI_RPC_STANDIN } from '../openwrt-luci/dispatcher-standin';
import { LUCI_TEST_NETWORK as NETWORK, LuciRig, REPO, rigUnavailable } from '../openwrt-luci/rig';
import { login, ubusRpc } from '../openwrt-luci/rpc';

/**
 * The LuCI page in a real browser (Debian's chromium, driven by playwright-core),
 * rendered by LuCI's own client code (luci-base: luci.js, ui.js, form.js, uci.js,
 * rpc.js, network.js, validation.js; luci-mod-network's interfaces view; the
 * bootstrap theme) against OpenWrt's uhttpd + rpcd + ubusd + netifd built from
 * source, with the softwire and luci-proto-softwire packages and l2tpns as the SC.
 *
 * LuCI's code cannot be in this repository, so it is read from LUCI_SRC, a checkout
 * of openwrt/luci (or a fork that tracks it): modules/luci-base, modules/luci-mod-network
 * and themes/luci-theme-bootstrap are used. Without it the test is skipped;
 * test/interop/luci-rpcd.test.ts covers the server side without LuCI's code.
 * LuCI's dispatcher (ucode, needs LuCI's C module luci.core) is not run: see
 * test/openwrt-luci/dispatcher-standin.ts for the routes played instead.
 *
 * SCREENSHOT=FILE saves the edit dialog with the interface up (docs/luci-softwire.png).
 */

const LUCI_SRC = process.env.LUCI_SRC ?? '';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function skipReason(): string {
  if (!LUCI_SRC) return 'LUCI_SRC not set: LuCI\'s client code (a checkout of openwrt/luci) is needed and cannot be in this repository';
  for (const d of ['modules/luci-base/htdocs/luci-static/resources/luci.js', 'modules/luci-mod-network/htdocs', 'themes/luci-theme-bootstrap/htdocs']) {
    if (!existsSync(join(LUCI_SRC, d))) return `LUCI_SRC=${LUCI_SRC} has no ${d}`;
  }
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} missing (apt-get install chromium)`;
  return rigUnavailable();
}
const skip = skipReason();


describe('LuCI page in a real browser with LuCI\'s own code', { skip: skip || false, timeout: 20 * 60_000 }, () => {
  let rig: LuciRig;
  // playwright-core's types, loaded only when the test runs.
  let browser: import('playwright-core').Browser;
  let page: import('playwright-core').Page;
  const consoleErrors: string[] = [];

  before(async () => {
    const luci = (p: string) => join(LUCI_SRC, p);
    rig = await LuciRig.start({
      network: NETWORK,
      logins: [{ username: 'root', password: 'admin-pw', read: ['*'], write: ['*'] }],
      files: {
        '/www/cgi-bin/luci': DISPATCHER_CGI,
        '/usr/share/rpcd/ucode/luci': LUCI_RPC_STANDIN,
        ...EMPTY_CONFIGS,
        // OpenWrt's base-files: interfaces.js reads it.
        '/etc/board.json': '{ "model": { "id": "softwire-test", "name": "softwire test router" } }\n',
      },
      trees: {
        // Not its htdocs/cgi-bin/luci: that starts the dispatcher (see above).
        '/www/luci-static': luci('modules/luci-base/htdocs/luci-static'),
        '/www/luci-static/resources/view/network': luci('modules/luci-mod-network/htdocs/luci-static/resources/view/network'),
        '/www/luci-static/resources/tools': luci('modules/luci-mod-network/htdocs/luci-static/resources/tools'),
        '/www/luci-static/bootstrap': luci('themes/luci-theme-bootstrap/htdocs/luci-static/bootstrap'),
        '/www/luci-static/resources/menu-bootstrap.js': luci('themes/luci-theme-bootstrap/htdocs/luci-static/resources/menu-bootstrap.js'),
        '/usr/share/rpcd/acl.d/luci-base.json': luci('modules/luci-base/root/usr/share/rpcd/acl.d/luci-base.json'),
        '/usr/share/rpcd/acl.d/luci-mod-network.json': luci('modules/luci-mod-network/root/usr/share/rpcd/acl.d/luci-mod-network.json'),
      },
    });
    // LuCI's login: a session, with the CSRF token the dispatcher keeps in it.
    const sid = await login(rig.url, 'root', 'admin-pw');
    const token = 'f00dfeedf00dfeedf00dfeedf00dfeed';
    // The dispatcher stores it with its own ubus connection, not through the session.
    rig.ubus('session', 'set', { ubus_rpc_session: sid, values: { token } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    await context.addCookies([{ name: 'sysauth_http', value: sid, url: rig.url }]);
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  after(async () => {
    // LUCI_DEBUG=DIR: the last page state and the browser's errors, for a failing run.
    if (process.env.LUCI_DEBUG && page) {
      await page.screenshot({ path: join(process.env.LUCI_DEBUG, 'last.png') }).catch(() => {});
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(process.env.LUCI_DEBUG, 'last.html'), await page.content().catch(() => ''));
      writeFileSync(join(process.env.LUCI_DEBUG, 'console.txt'), `${consoleErrors.join('\n')}\n${rig?.logs() ?? ''}`);
    }
    await browser?.close();
    await rig?.stop();
  });

  const modal = () => page.locator('#modal_overlay .modal');
  const field = (name: string) => page.locator(`#cbi-network-sw6-${name}`);

  test('the interface list shows sw6 as a softwire interface', async () => {
    await page.goto(`${rig.url}/cgi-bin/luci/admin/network/network`);
    const row = page.locator('.cbi-section-table-row[data-sid="sw6"]');
    await row.waitFor({ timeout: 60_000 });
    // network.js knows the protocol through our module (getI18n), and netifd lists the handler.
    await waitFor('the row to name the protocol', 30_000, async () => /Softwire \(L2TPv2, RFC 5571\)/.test(await row.innerText()));
  });

  test('the edit dialog loads the section: server list, no user name', async () => {
    await page.locator('.cbi-section-table-row[data-sid="sw6"] .cbi-button-edit').click();
    await modal().waitFor({ timeout: 30_000 });
    await field('server').waitFor();
    assert.match(await field('server').innerText(), /192\.0\.2\.9/);
    assert.equal(await page.locator('#widget\\.cbid\\.network\\.sw6\\.username').inputValue(), '');
    // The status row asks the agent through luci.softwire (rpcd exec plugin).
    assert.match(await field('_softwire_status').innerText(), /Agent not running/);
  });

  test('a bad server address and a missing user name are refused with their reasons', async () => {
    // A new server entry: LuCI validates it with our checkServer as it is typed.
    const add = field('server').locator('.add-item input');
    await add.fill('300.1.1.1');
    await add.focus();
    await add.dispatchEvent('keyup');
    await waitFor('the server entry to be marked invalid', 10_000, async () => /cbi-input-invalid/.test((await add.getAttribute('class')) ?? ''));
    // LuCI puts the validator's message on the field and shows it as a tooltip on hover.
    await waitFor('our reason on the server entry', 10_000, async () => /not an IPv4 address or host name/.test((await add.getAttribute('data-tooltip')) ?? ''));
    // Shown on hover (cosmetic, for the screenshot; the message is what is checked).
    await page.mouse.move(0, 0);
    await add.hover();
    const tip = page.locator('.cbi-tooltip').first();
    await tip.waitFor({ state: 'visible', timeout: 3000 }).catch(() => {});
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, '-server.png') });
    // Save with the empty user name: refused, the field marked, nothing written.
    await add.fill('');
    await add.dispatchEvent('keyup');
    await modal().locator('.cbi-button-positive').filter({ hasText: 'Save' }).click();
    const user = page.locator('#widget\\.cbid\\.network\\.sw6\\.username');
    await waitFor('the user name to be marked invalid', 10_000, async () => /cbi-input-invalid/.test((await user.getAttribute('class')) ?? ''));
    assert.match((await user.getAttribute('data-tooltip')) ?? '', /non-empty value|PPP user name is required/);
    await page.mouse.move(0, 0);
    await user.hover();
    // Fully faded in, for the screenshot.
    await page.waitForFunction("getComputedStyle(document.querySelector('.cbi-tooltip')).opacity === '1'", undefined, { timeout: 5000 }).catch(() => {});
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, '-user.png') });
    assert.ok(await modal().isVisible(), 'the dialog stays open');
    assert.doesNotMatch(rig.read('/etc/config/network'), /username/);
  });

  test('saved and applied through rpcd, then Restart: the interface comes up and the page shows it', async () => {
    // Fix the entries: remove the bad server, add the real one, give the user name.
    // A list entry is removed by a click on its "x", drawn at its right end (::after).
    const old = field('server').locator('.item', { hasText: '192.0.2.9' });
    const box = await old.boundingBox();
    assert.ok(box);
    await old.click({ position: { x: box.width - 4, y: box.height / 2 } });
    await waitFor('the old server entry to go', 10_000, async () => (await old.count()) === 0);
    const add = field('server').locator('.add-item input');
    await add.fill('192.0.2.1');
    await field('server').locator('.add-item .cbi-button-add').click();
    await page.locator('#widget\\.cbid\\.network\\.sw6\\.username').fill('cpe1');
    await page.locator('#widget\\.cbid\\.network\\.sw6\\.mode').selectOption('router');
    await modal().locator('.cbi-button-positive').filter({ hasText: 'Save' }).click();
    await modal().waitFor({ state: 'hidden', timeout: 30_000 });
    // Staged in the session, not yet in /etc/config.
    assert.doesNotMatch(rig.read('/etc/config/network'), /cpe1/);

    await page.locator('.cbi-page-actions .cbi-button-apply').first().click();
    await waitFor('Save & Apply to write /etc/config/network', 120_000, () => /option username 'cpe1'/.test(rig.read('/etc/config/network')));
    const conf = rig.read('/etc/config/network');
    assert.match(conf, /list server '192\.0\.2\.1'/);
    assert.doesNotMatch(conf, /192\.0\.2\.9/);
    assert.match(conf, /option mode 'router'/);
    await waitFor('LuCI to confirm the apply', 60_000, async () => /Configuration changes applied/.test(await page.locator('body').innerText()));
    // After the confirmation LuCI reloads the page; load it afresh ourselves rather
    // than race that reload.
    await page.goto(`${rig.url}/cgi-bin/luci/admin/network/network`);
    const row = page.locator('.cbi-section-table-row[data-sid="sw6"]');
    await row.waitFor({ timeout: 60_000 });

    // Restart: LuCI runs /sbin/ifup sw6 through rpcd's file exec.
    await row.locator('.cbi-button.reconnect').click();
    await waitFor(
      'netifd to have sw6 up with the agent connected',
      180_000,
      () => {
        const st = rig.ubus<{ up: boolean }>('network.interface.sw6', 'status');
        return st.up;
      },
      1000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${rig.logs()}\nbrowser: ${consoleErrors.join('\n')}`);
    });
    await waitFor('the agent to report up', 120_000, async () => {
      const r = await ubusRpc(rig.url, await login(rig.url, 'root', 'admin-pw'), 'luci.softwire', 'status', { interface: 'sw6' });
      return (r.data as { state?: string })?.state === 'up';
    }, 1000);

    // The page polls interface status: sw6 shows its device once up.
    // What netifd learned from the notify script, as LuCI's own status shows it.
    await waitFor('the row to show sw6 up with its IPv6 address and prefix', 90_000, async () => {
      const text = await row.innerText();
      return /sw-sw6/.test(text) && /IPv6:/.test(text) && /IPv6-PD:/.test(text) && !/starting/.test(text);
    }, 1000);
    await row.locator('.cbi-button-edit').click();
    await modal().waitFor({ timeout: 30_000 });
    // The dialog fades in; wait until it is fully shown (for the screenshot).
    await page.waitForFunction("getComputedStyle(document.querySelector('#modal_overlay')).opacity === '1'");
    await waitFor('the status row to say up', 30_000, async () => /State: up/.test(await field('_softwire_status').innerText()), 500);
    const status = await field('_softwire_status').innerText();
    assert.match(status, /SC: 192\.0\.2\.1/);
    assert.match(status, /Prefix: /);
    if (process.env.SCREENSHOT) {
      mkdirSync(join(REPO, 'docs'), { recursive: true });
      await page.screenshot({ path: process.env.SCREENSHOT });
      assert.ok(statSync(process.env.SCREENSHOT).size > 10_000);
    }
    assert.deepEqual(consoleErrors.filter((e) => /softwire/.test(e)), [], 'no errors from our module');
  });
});
