/**
 * The JSON-RPC that LuCI's rpc.js speaks to uhttpd's /ubus endpoint: one "call" with
 * [session, object, method, args]; the answer is [status] or [status, data]
 * (status 0 = OK, 6 = permission denied, ...), or a JSON-RPC error (-32002: access
 * denied by the session's ACL).
 */
export const NULL_SESSION = '00000000000000000000000000000000';

export interface RpcAnswer {
  status?: number;
  data?: unknown;
  error?: { code: number; message: string };
}

export async function ubusRpc(base: string, sid: string, object: string, method: string, args: object = {}): Promise<RpcAnswer> {
  const res = await fetch(`${base}/ubus`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'call', params: [sid, object, method, args] }),
  });
  const body = (await res.json()) as { result?: [number, unknown?]; error?: { code: number; message: string } };
  if (body.error) return { error: body.error };
  return { status: body.result?.[0], data: body.result?.[1] };
}

/** session.login as LuCI's login does it; returns the session id. */
export async function login(base: string, username: string, password: string): Promise<string> {
  const r = await ubusRpc(base, NULL_SESSION, 'session', 'login', { username, password, timeout: 600 });
  const sid = (r.data as { ubus_rpc_session?: string } | undefined)?.ubus_rpc_session;
  if (r.status !== 0 || !sid) throw new Error(`login as ${username} failed: ${JSON.stringify(r)}`);
  return sid;
}
