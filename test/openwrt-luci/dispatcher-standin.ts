/**
 * /www/cgi-bin/luci for the browser test: what LuCI's ucode dispatcher answers for
 * the interface page, as a busybox-sh CGI under OpenWrt's uhttpd.
 *
 * Why a stand-in: LuCI's dispatcher (modules/luci-base/ucode/dispatcher.uc) and its
 * rpcd plugin import the C module "luci.core" (modules/luci-base/src), and this
 * repository may neither hold LuCI's code nor a script that builds it. Everything the
 * page does over ubus (uci, network, file exec, session, luci.softwire) goes to the
 * real rpcd; only these dispatcher routes are played here, each doing what LuCI's
 * own controller does:
 *
 *   admin/network/network    the page: header.ut + view.ut's markup and "new LuCI(env)"
 *                            for view network/interfaces, session from the sysauth cookie
 *   admin/menu               a menu with Network -> Interfaces (the theme's menu bar)
 *   admin/translations/<l>   no translations (English)
 *   admin/uci/apply_rollback uci apply with rollback, returns a confirm token (uci.uc)
 *   admin/uci/apply_unchecked uci commit of every changed package, then uci apply
 *   admin/uci/confirm        uci confirm for the session the token belongs to
 *   admin/uci/revert         uci revert of every changed package
 *
 * (LUCI_RPC_STANDIN below stands in for one method of LuCI's rpcd ucode plugin.)
 */
export const DISPATCHER_CGI = `#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
. /usr/share/libubox/jshn.sh

query() { printf '%s' "$QUERY_STRING" | tr '&' '\\n' | sed -n "s/^$1=//p" | head -n 1 | tr -cd 'A-Za-z0-9'; }
cookie_sid() { printf '%s' "$HTTP_COOKIE" | tr ';' '\\n' | sed -n 's/^ *sysauth_http=//p' | head -n 1 | tr -cd 'A-Za-z0-9'; }
reply() { printf 'Status: %s\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s' "$1" "$2"; }
# A session rpcd knows that may write uci "network" (what the page needs).
may_write() {
	ubus call session access "{\\"ubus_rpc_session\\":\\"$1\\",\\"scope\\":\\"uci\\",\\"object\\":\\"network\\",\\"function\\":\\"write\\"}" 2>/dev/null | grep -q '"access": true'
}
# ubus exit status -> HTTP, as uci.uc's ubus_state_to_http.
http_of() {
	case "$1" in
	0) echo '200 OK' ;; 2) echo '400 Invalid argument' ;; 4) echo '404 Not found' ;;
	5) echo '204 No data' ;; 6) echo '403 Permission denied' ;; *) echo '500 Error' ;;
	esac
}
changed_configs() {
	json_load "$(ubus call uci changes "{\\"ubus_rpc_session\\":\\"$1\\"}" 2>/dev/null)"
	json_select changes 2>/dev/null && json_get_keys keys && echo $keys
}

case "$PATH_INFO" in
/admin/uci/apply_rollback)
	sid="$(query sid)"
	may_write "$sid" || { reply '403 Forbidden' 'login required'; exit 0; }
	ubus call uci apply "{\\"ubus_rpc_session\\":\\"$sid\\",\\"rollback\\":true,\\"timeout\\":90}" >/dev/null 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		tok="$(head -c 16 /dev/urandom | md5sum | cut -c 1-32)"
		echo "$tok $sid $(( $(date +%s) + 90 ))" >/tmp/luci-rollback
		printf 'Content-Type: application/json\\r\\n\\r\\n{"token":"%s"}' "$tok"
	else
		reply "$(http_of "$rc")" ''
	fi
	;;
/admin/uci/confirm)
	tok="$(query token)"
	read -r want sid deadline </tmp/luci-rollback 2>/dev/null
	if [ -z "$want" ] || [ "$(date +%s)" -gt "$deadline" ]; then reply '204 No data' ''; exit 0; fi
	[ "$tok" = "$want" ] || { reply '403 Permission denied' ''; exit 0; }
	ubus call uci confirm "{\\"ubus_rpc_session\\":\\"$sid\\"}" >/dev/null 2>&1
	rc=$?
	rm -f /tmp/luci-rollback
	reply "$(http_of "$rc")" ''
	;;
/admin/uci/apply_unchecked)
	sid="$(query sid)"
	may_write "$sid" || { reply '403 Forbidden' 'login required'; exit 0; }
	for c in $(changed_configs "$sid"); do
		ubus call uci commit "{\\"ubus_rpc_session\\":\\"$sid\\",\\"config\\":\\"$c\\"}" >/dev/null 2>&1
	done
	ubus call uci apply "{\\"ubus_rpc_session\\":\\"$sid\\",\\"rollback\\":false}" >/dev/null 2>&1
	reply "$(http_of $?)" ''
	;;
/admin/uci/revert)
	sid="$(query sid)"
	may_write "$sid" || { reply '403 Forbidden' 'login required'; exit 0; }
	for c in $(changed_configs "$sid"); do
		ubus call uci revert "{\\"ubus_rpc_session\\":\\"$sid\\",\\"config\\":\\"$c\\"}" >/dev/null 2>&1
	done
	reply '200 OK' ''
	;;
/admin/menu)
	printf 'Content-Type: application/json\\r\\n\\r\\n'
	cat <<'MENU'
{"satisfied":true,"children":{"admin":{"title":"Administration","satisfied":true,"children":{
"status":{"title":"Status","order":10,"satisfied":true,"action":{"type":"firstchild"},"children":{}},
"network":{"title":"Network","order":50,"satisfied":true,"action":{"type":"firstchild"},"children":{
"network":{"title":"Interfaces","order":10,"satisfied":true,"action":{"type":"view","path":"network/interfaces"}}}},
"logout":{"title":"Log out","order":999,"satisfied":true,"action":{"type":"function"}}}}}}
MENU
	;;
/admin/translations/*)
	printf 'Content-Type: text/javascript\\r\\n\\r\\n'
	;;
/admin/network/network)
	sid="$(cookie_sid)"
	may_write "$sid" || { reply '403 Forbidden' 'login required'; exit 0; }
	json_load "$(ubus call session get "{\\"ubus_rpc_session\\":\\"$sid\\",\\"keys\\":[\\"token\\"]}")"
	json_select values && json_get_var token token
	printf 'Content-Type: text/html; charset=UTF-8\\r\\n\\r\\n'
	cat <<PAGE
<!DOCTYPE html>
<html lang="en" data-darkmode="false">
<head>
<meta charset="utf-8">
<title>router - Interfaces - LuCI</title>
<meta name="viewport" content="initial-scale=1.0">
<link rel="stylesheet" href="/luci-static/bootstrap/cascade.css">
<script src="/cgi-bin/luci/admin/translations/en"></script>
<script src="/luci-static/resources/cbi.js"></script>
</head>
<body class="lang_en Interfaces" data-page="admin-network-network">
<header>
<a class="brand" href="/">router</a>
<ul class="nav" id="topmenu" style="display:none"></ul>
<div id="indicators" class="pull-right"></div>
</header>
<div id="maincontent" class="container">
<div id="tabmenu" style="display:none"></div>
<script src="/luci-static/resources/luci.js"></script>
<script>
L = new LuCI({"media":"/luci-static/bootstrap","resource":"/luci-static/resources","scriptname":"/cgi-bin/luci",
"pathinfo":"/admin/network/network","documentroot":"/www","requestpath":["admin","network","network"],
"dispatchpath":["admin","network","network"],"pollinterval":5,"ubuspath":"/ubus/","sessionid":"$sid","token":"$token",
"nodespec":{"action":{"type":"view","path":"network/interfaces"},"title":"Interfaces","satisfied":true,"readonly":false},
"apply_rollback":90,"apply_holdoff":1,"apply_timeout":5,"apply_display":1,"rollback_token":null});
</script>
<div id="view">
<div class="spinning">Loading view...</div>
<script>L.require('ui').then(function(ui) { ui.instantiateView('network/interfaces'); });</script>
</div>
</div>
<footer><span>softwire test router (OpenWrt uhttpd, rpcd, ubusd, netifd)</span>
<ul class="breadcrumb pull-right" id="modemenu" style="display:none"></ul></footer>
<script>L.require('menu-bootstrap')</script>
</body>
</html>
PAGE
	;;
*)
	reply '404 Not Found' "no route $PATH_INFO"
	;;
esac
`;

/**
 * /usr/share/rpcd/ucode/luci for the browser test: LuCI's rpcd ucode plugin "luci"
 * imports luci.core (C) too, so it cannot run here. Its getFeatures, which luci.js
 * asks at start (and shows an error banner without), is answered with what this
 * router has: IPv6, none of the optional daemons. The page needs nothing else of it.
 */
export const LUCI_RPC_STANDIN = `'use strict';
import { access } from 'fs';

return {
	luci: {
		getFeatures: {
			call: function() {
				return { ipv6: !!access('/proc/net/if_inet6'), odhcpd: false, dnsmasq: false, firewall: false, firewall4: false, ipset: false };
			}
		}
	}
};
`;

/** Empty packages the interface page loads (system, wireless, dhcp, firewall). */
export const EMPTY_CONFIGS: Record<string, string> = {
  '/etc/config/system': "config system\n\toption hostname 'router'\n",
  '/etc/config/wireless': '',
  '/etc/config/dhcp': '',
  '/etc/config/firewall': '',
  '/etc/config/luci': "config core 'main'\n\toption lang 'en'\n",
};
