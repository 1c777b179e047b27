'use strict';
'require rpc';
'require form';
'require network';

// LuCI protocol page for "option proto 'softwire'" (RFC 5571 Softwire Initiator):
// the options of the interface section that /lib/netifd/proto/softwire.sh passes to
// "softwire uci-config --netifd-json". Ranges are those of src/config/schema.ts in
// the softwire source tree; test/unit/luci-proto-softwire.test.ts checks they agree.
// Options the netifd handler sets itself (provision, notify_command, control_socket)
// or that do not apply under netifd (lan: odhcpd numbers the LAN from ip6assign) are
// left out on purpose; the form never touches options it does not show.

var callStatus = rpc.declare({
	object: 'luci.softwire',
	method: 'status',
	params: [ 'interface' ],
	expect: { '': {} }
});

// --- Validators: plain functions of the text, so they can be checked without a browser.

function isIPv4(s) {
	var m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
	if (!m)
		return false;
	for (var i = 1; i <= 4; i++)
		if (+m[i] > 255 || (m[i].length > 1 && m[i][0] == '0'))
			return false;
	return true;
}

function isIPv6(s) {
	var halves = s.split('::');
	if (halves.length > 2 || s.length > 45)
		return false;
	var groups = 0;
	for (var h = 0; h < halves.length; h++) {
		if (halves[h] == '')
			continue;
		var parts = halves[h].split(':');
		for (var i = 0; i < parts.length; i++) {
			// An embedded IPv4 address may end the last half (::ffff:192.0.2.1).
			if (i == parts.length - 1 && h == halves.length - 1 && parts[i].indexOf('.') >= 0) {
				if (!isIPv4(parts[i]))
					return false;
				groups += 2;
			}
			else if (/^[0-9A-Fa-f]{1,4}$/.test(parts[i])) {
				groups++;
			}
			else {
				return false;
			}
		}
	}
	return halves.length == 2 ? groups <= 7 : groups == 8;
}

function isHostname(s) {
	if (s.length > 253 || !/^[A-Za-z0-9.-]+$/.test(s))
		return false;
	var labels = s.replace(/\.$/, '').split('.');
	for (var i = 0; i < labels.length; i++)
		if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(labels[i]))
			return false;
	// All-numeric dotted names are IPv4 addresses, so they must be valid ones.
	if (/^[0-9.]+$/.test(s))
		return isIPv4(s);
	return true;
}

/**
 * One "list server" entry, as the agent's parser reads it (src/config/load.ts,
 * parseScAddress): HOST, HOST:PORT, [IPv6] or [IPv6]:PORT, or a bare IPv6 address;
 * HOST is an IPv4 address or a DNS name; PORT 1-65535 (1701 when left out).
 * Returns true or the reason it is not one.
 */
function checkServer(value) {
	var s = String(value == null ? '' : value).trim(), host = s, port = null, m;

	if (s == '')
		return _('Give the address or DNS name of the Softwire Concentrator');

	if ((m = /^\[([^\]]*)\](?::(\d*))?$/.exec(s)) != null) {
		if (!isIPv6(m[1]))
			return _('"%s" in brackets is not an IPv6 address').format(m[1]);
		if (m[2] != null)
			port = m[2];
		host = null;
	}
	else if (s.indexOf(':') != s.lastIndexOf(':')) {
		if (!isIPv6(s))
			return _('"%s" is not an IPv6 address (write [address]:port to give a port)').format(s);
		host = null;
	}
	else if ((m = /^([^:]*):(.*)$/.exec(s)) != null) {
		host = m[1];
		port = m[2];
	}

	if (host != null && !isIPv4(host) && !isHostname(host))
		return _('"%s" is not an IPv4 address or host name').format(host);

	if (port != null && (!/^\d{1,5}$/.test(port) || +port < 1 || +port > 65535))
		return _('Port must be 1-65535, not "%s"').format(port);

	return true;
}

/** The PPP user name: required (CHAP and PAP both send it), one line, at most 255 bytes. */
function checkUsername(value) {
	var s = String(value == null ? '' : value);

	if (s.trim() == '')
		return _('A PPP user name is required');
	if (/[\x00-\x1f\x7f]/.test(s))
		return _('The user name must not contain control characters');
	if (s.length > 255)
		return _('The user name is longer than 255 characters');

	return true;
}

/** The Host Name AVP (RFC 2661 4.4.3): any text, but one line. */
function checkHostAvp(value) {
	if (/[\x00-\x1f\x7f]/.test(String(value == null ? '' : value)))
		return _('The host name must not contain control characters');
	return true;
}

// Timers and counters: [UCI option, title, description, min, max, integer?, default].
// Same minimum, maximum and default as the softwire config schema.
var NUMBERS = [
	[ 'hello_interval', _('HELLO interval'), _('Seconds without traffic before an L2TP HELLO is sent (15 behind NAT when unset)'), 10, 3600, true, 60 ],
	[ 'lcp_echo_interval', _('LCP echo interval'), _('Seconds between LCP Echo-Requests (15 behind NAT when unset)'), 10, 60, true, 30 ],
	[ 'lcp_echo_failure', _('LCP echo failure threshold'), _('Unanswered LCP Echo-Requests before the link is declared dead'), 1, 100, true, 3 ],
	[ 'retransmit_initial', _('Initial retransmission timeout'), _('Seconds; doubles on each retransmission'), 0.1, 30, false, 1 ],
	[ 'retransmit_cap', _('Retransmission timeout cap'), _('Seconds'), 1, 120, false, 8 ],
	[ 'retransmit_retries', _('Retransmissions'), _('Before the tunnel is declared dead'), 1, 20, true, 5 ],
	[ 'reconnect_initial', _('Initial reconnect delay'), _('Seconds; doubles after each failure'), 0.1, 600, false, 2 ],
	[ 'reconnect_cap', _('Reconnect delay cap'), _('Seconds'), 1, 86400, false, 300 ],
	[ 'reconnect_jitter', _('Reconnect jitter'), _('Fraction of each reconnect delay drawn at random'), 0, 1, false, 0.5 ],
	[ 'mtu', _('Override MTU'), _('0 derives it from the WAN path MTU'), 0, 65535, true, 0 ],
	[ 'prefix_length_hint', _('Prefix length hint'), _('Delegated prefix length asked for in DHCPv6 (0: no hint)'), 0, 64, true, 56 ]
];

/** LuCI datatype of one NUMBERS row: "and(uinteger,range(10,3600))" or "range(0.1,30)". */
function numberDatatype(row) {
	var range = 'range(%s,%s)'.format(row[3], row[4]);
	return row[5] ? 'and(uinteger,%s)'.format(range) : range;
}

function statusText(st) {
	if (!st || st.running === false)
		return _('Agent not running') + (st && st.error ? ' (%s)'.format(st.error) : '');

	var parts = [ _('State: %s').format(st.state) ];
	if (st.sc)
		parts.push(_('SC: %s').format(st.sc.address));
	if (st.ipv6 && st.ipv6.address)
		parts.push(_('Address: %s').format(st.ipv6.address));
	if (st.ipv6 && st.ipv6.delegatedPrefix)
		parts.push(_('Prefix: %s/%d').format(st.ipv6.delegatedPrefix.prefix, st.ipv6.delegatedPrefix.length));
	if (st.lastError)
		parts.push(_('Last error: %s').format(st.lastError.message));
	return parts.join(' · ');
}

network.registerPatternVirtual(/^sw-.+$/);

return network.registerProtocol('softwire', {
	getI18n: function() {
		return _('Softwire (L2TPv2, RFC 5571)');
	},

	// The handler names the TUN device sw-<interface>, cut to 15 characters.
	getIfname: function() {
		return this._ubus('l3_device') || ('sw-' + this.sid).substring(0, 15);
	},

	// LuCI names a virtual interface's device <proto>-<interface>; ours is the TUN.
	getDevice: function() {
		return network.instantiateDevice(this.getIfname(), this);
	},

	getOpkgPackage: function() {
		return 'softwire';
	},

	isFloating: function() {
		return true;
	},

	isVirtual: function() {
		return true;
	},

	getDevices: function() {
		return null;
	},

	containsDevice: function(ifname) {
		return (network.getIfnameOf(ifname) == this.getIfname());
	},

	// Exposed for the unit test and for other pages.
	checkServer: checkServer,
	checkUsername: checkUsername,
	checkHostAvp: checkHostAvp,
	numbers: NUMBERS,
	numberDatatype: numberDatatype,
	statusText: statusText,

	renderFormOptions: function(s) {
		var sid = this.sid, o;

		o = s.taboption('general', form.DummyValue, '_softwire_status', _('Status'));
		o.modalonly = true;
		o.cfgvalue = function(section_id) {
			return statusText(this.data ? this.data[section_id] : null);
		};
		o.load = function(section_id) {
			var self = this;
			return L.resolveDefault(callStatus(section_id), null).then(function(st) {
				self.data = self.data || {};
				self.data[section_id] = st;
			});
		};

		o = s.taboption('general', form.DynamicList, 'server', _('Softwire Concentrator'),
			_('Address or DNS name, optionally with :port (default 1701); IPv6 as [address]:port. Tried in turn.'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			// The list's entry field is validated as the user types; an empty entry is not added.
			if (value == null || value === '')
				return true;
			return checkServer(value);
		};

		o = s.taboption('general', form.Value, 'username', _('PAP/CHAP username'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			return checkUsername(value);
		};

		o = s.taboption('general', form.Value, 'password', _('PAP/CHAP password'));
		o.password = true;

		o = s.taboption('general', form.ListValue, 'mode', _('Mode'),
			_('Router: ask for a delegated prefix for the LAN (give the LAN "IPv6 assignment length"); host: IPv6 for this router only.'));
		o.value('host', _('Host'));
		o.value('router', _('Router'));
		o.default = 'host';

		o = s.taboption('general', form.ListValue, 'family', _('Protocols'),
			_('Network protocols run over the softwire'));
		o.value('ipv6', _('IPv6 (IPV6CP)'));
		o.value('ipv4', _('IPv4 (IPCP)'));
		o.value('dual', _('IPv6 and IPv4'));
		o.default = 'ipv6';

		o = s.taboption('advanced', form.ListValue, 'auth', _('Authentication'));
		o.value('auto', _('CHAP, falling back to PAP'));
		o.value('chap', _('CHAP only'));
		o.value('pap', _('PAP only'));
		o.default = 'auto';

		o = s.taboption('advanced', form.Value, 'hostname', _('Host name sent to the SC'));
		o.placeholder = 'softwire';
		o.validate = function(section_id, value) {
			return checkHostAvp(value);
		};

		o = s.taboption('advanced', form.Value, 'tunnel_secret', _('Tunnel secret'),
			_('L2TP tunnel authentication; leave empty when the SC uses none'));
		o.password = true;

		for (var i = 0; i < NUMBERS.length; i++) {
			var row = NUMBERS[i];
			o = s.taboption('advanced', form.Value, row[0], row[1], row[2]);
			o.datatype = numberDatatype(row);
			o.placeholder = String(row[6]);
		}

		o = s.taboption('advanced', form.Flag, 'rapid_commit', _('DHCPv6 rapid commit'));
		o.default = o.disabled;

		o = s.taboption('advanced', form.Flag, 'ipv4_default_route', _('IPv4 default route'),
			_('Route IPv4 through the softwire when IPCP is up and the protocols are IPv6 only'));
		o.default = o.disabled;

		o = s.taboption('advanced', form.Value, 'tun_device', _('TUN device'),
			_('Default: sw-&lt;interface&gt;'));
		o.datatype = 'and(netdevname,maxlength(15))';
		o.placeholder = ('sw-' + sid).substring(0, 15);

		o = s.taboption('advanced', form.ListValue, 'log_level', _('Log level'));
		[ 'fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent' ].forEach(function(level) {
			o.value(level);
		});
		o.default = 'info';
	}
});
