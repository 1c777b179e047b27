import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';

/**
 * The control socket: a Unix stream socket speaking one JSON object per line.
 * A request is {"cmd": "...", ...args}; each gets exactly one reply
 * {"ok": true, ...} or {"ok": false, "error": "..."}. The socket file is
 * created mode 0600 (a missing directory 0700): only the user the agent runs as
 * (and root) may connect, because anyone who can connect can take the softwire
 * down. Linux checks write permission on the socket file itself at connect(), so
 * the file mode alone is the gate even in a directory others can read.
 */

export interface ControlRequest {
  cmd: string;
  [arg: string]: unknown;
}

export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string };

export type ControlHandler = (req: ControlRequest) => Promise<ControlReply> | ControlReply;

/** Longest request line accepted; anything longer is a client bug or an attack. */
const MAX_LINE = 64 * 1024;
const MAX_CLIENTS = 16;

export class ControlServer {
  private readonly server: net.Server;
  private readonly clients = new Set<net.Socket>();

  private constructor(
    readonly path: string,
    handler: ControlHandler,
  ) {
    this.server = net.createServer((sock) => this.accept(sock, handler));
    this.server.maxConnections = MAX_CLIENTS;
  }

  static async listen(path: string, handler: ControlHandler): Promise<ControlServer> {
    const dir = dirname(path);
    // 0755, not 0700: the default resolv file lives in the same run directory and a
    // resolver running as its own user (dnsmasq) must read it; the socket's own 0600
    // is what keeps other users off the control channel (Linux checks it on connect).
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (existsSync(path)) {
      // A live agent answers; a stale file from a crash does not and is removed.
      if (await isAlive(path)) throw new Error(`control socket ${path} is in use: is another softwire running?`);
      unlinkSync(path);
    }
    const s = new ControlServer(path, handler);
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((res, rej) => {
        s.server.once('error', rej);
        s.server.listen(path, () => res());
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(path, 0o600);
    return s;
  }

  private accept(sock: net.Socket, handler: ControlHandler): void {
    this.clients.add(sock);
    sock.setEncoding('utf8');
    let buf = '';
    let queue = Promise.resolve();
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE && !buf.includes('\n')) {
        sock.end(`${JSON.stringify({ ok: false, error: 'request too long' })}\n`);
        return;
      }
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        // Replies go out in request order even when a handler is slow (e.g. wait).
        queue = queue.then(() => this.answer(sock, line, handler));
        nl = buf.indexOf('\n');
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.clients.delete(sock));
  }

  private async answer(sock: net.Socket, line: string, handler: ControlHandler): Promise<void> {
    let reply: ControlReply;
    try {
      const req = JSON.parse(line) as unknown;
      if (!req || typeof req !== 'object' || typeof (req as ControlRequest).cmd !== 'string') {
        reply = { ok: false, error: 'request must be a JSON object with a "cmd" string' };
      } else {
        reply = await handler(req as ControlRequest);
      }
    } catch (e) {
      reply = { ok: false, error: e instanceof SyntaxError ? `bad JSON: ${e.message}` : (e as Error).message };
    }
    if (!sock.destroyed) sock.write(`${JSON.stringify(reply)}\n`);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

function isAlive(path: string): Promise<boolean> {
  return new Promise((res) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      res(true);
    });
    c.once('error', () => res(false));
  });
}

/** Sends one request and resolves with its reply. `timeoutMs` bounds the whole exchange. */
export function controlRequest(path: string, req: ControlRequest, timeoutMs = 5000): Promise<ControlReply> {
  return new Promise((res, rej) => {
    const c = net.connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      rej(new Error(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.setEncoding('utf8');
    c.once('connect', () => c.write(`${JSON.stringify(req)}\n`));
    c.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      c.destroy();
      try {
        res(JSON.parse(buf.slice(0, nl)) as ControlReply);
      } catch (e) {
        rej(new Error(`bad reply from ${path}: ${(e as Error).message}`));
      }
    });
    c.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint =
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? ' (is "softwire run" running with this --control-socket?)'
          : e.code === 'EACCES'
            ? ' (only the user softwire runs as, and root, may use the control socket)'
            : '';
      rej(new Error(`cannot reach ${path}: ${e.code ?? e.message}${hint}`));
    });
  });
}
