import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { createReadStream } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { parseScAddress } from '../config/load';
import { formatHostPort, L2TP_PORT, l2tpOfferText, parseL2tpAnswer } from '../sdp/l2tp';
import { MAX_SDP_BYTES, SdpError } from '../sdp/sdp';
import { addVerb, type CliIo, EXIT_NOT_REACHED, EXIT_OK, EXIT_USAGE, exitCodesHelp, processIo } from './client-verbs';

/**
 * `softwire sdp offer|answer`: the SDP side of finding the SC through a SIP
 * (or other offer/answer) system, per draft-tveretin-dispatch-l2tp-sdp-02.
 * We are the offerer: print an offer to hand to the signalling system, then
 * read its answer to learn where to send SCCRQ.
 */

/**
 * Reads at most `limit` bytes from a stream and stops there; the caller sees
 * a truncated buffer of exactly `limit` bytes and decides what that means.
 */
export function readBounded(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err?: Error) => {
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onError);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size).subarray(0, limit));
    };
    const onData = (c: Buffer | string) => {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      chunks.push(b);
      size += b.length;
      if (size >= limit) {
        stream.pause();
        finish();
      }
    };
    const onEnd = () => finish();
    const onError = (e: Error) => finish(e);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}

/** Reads an SDP document from FILE or, for "-", from `stdin`. One byte past the limit is kept so the parser can say "too long". */
export async function readSdpInput(path: string, stdin: NodeJS.ReadableStream): Promise<Buffer> {
  if (path === '-') return readBounded(stdin, MAX_SDP_BYTES + 1);
  const stream = createReadStream(path);
  try {
    return await readBounded(stream, MAX_SDP_BYTES + 1);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  } finally {
    stream.destroy();
  }
}

/**
 * The SC address and port named by the SDP answer in `path` ("-" for stdin),
 * for `softwire run --sc-sdp FILE`. Throws `SdpError` for a bad or declining
 * answer (its message carries the line number) and Error when the file cannot be read.
 */
export async function scFromSdpFile(path: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<{ host: string; port: number }> {
  const answer = parseL2tpAnswer(await readSdpInput(path, stdin));
  return { host: answer.address, port: answer.port };
}

/** Where routing is probed when no --sc is given: TEST-NET-1, which follows the IPv4 default route. */
const PROBE_TARGET = '192.0.2.1';

/**
 * The source address the kernel would pick to reach `target` (HOST[:PORT]).
 * A UDP connect() only consults the routing table: nothing is sent.
 */
export async function probeSourceAddress(target: string = PROBE_TARGET): Promise<string> {
  const { host, port } = parseScAddress(target);
  const { address, family } = await lookup(host);
  const sock = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.connect(port, address, (err?: Error) => (err ? rej(err) : res()));
    });
    const local = sock.address().address;
    if (local === '0.0.0.0' || local === '::') throw new Error(`no source address towards ${host}`);
    return local;
  } finally {
    sock.close();
  }
}

function parsePort(v: string): number {
  if (!/^[0-9]{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new InvalidArgumentError('expected a port from 1 to 65535');
  return Number(v);
}

export function registerSdpVerb(program: Command, io: CliIo = processIo()): void {
  const sdp = addVerb(program, 'sdp', io)
    .description('find the SC through SDP offer/answer (SIP): print an offer, read the answer')
    .addHelpText(
      'after',
      '\nThe SDP carries only where the tunnel goes (draft-tveretin-dispatch-l2tp-sdp-02):\n' +
        '"m=application <port> UDP l2tp" plus a c= address. Credentials and the tunnel secret\n' +
        'are not in it; they come from the softwire configuration as usual.\n' +
        '\nExamples:\n' +
        '  softwire sdp offer --address 198.51.100.7 > offer.sdp\n' +
        '  softwire sdp answer answer.sdp\n' +
        '  softwire run --sc-sdp answer.sdp --user alice --password-file /etc/softwire/pw',
    );

  addVerb(sdp, 'offer', io)
    .description('print an SDP offer for an L2TP softwire (send it to the SC through your signalling system)')
    .option('--address <ADDR>', 'our IPv4 or IPv6 address for the o= and c= lines (default: see below)')
    .option('--sc <HOST[:PORT]>', 'pick the default address as the one the kernel would use to reach this SC')
    .option('--port <N>', 'port for the m= line; must not be 0, and the SC need not honour it', parsePort, L2TP_PORT)
    .addHelpText(
      'after',
      '\nWithout --address the offer carries the source address the kernel would use to\n' +
        'reach --sc, or, without --sc, the address of the IPv4 default route (found with a\n' +
        'UDP connect(), which sends nothing). Behind NAT that is a private address; give\n' +
        '--address explicitly if the SC must see another one. The port here is only a\n' +
        'placeholder: `softwire run --sdp-offer-file FILE` writes the offer itself once the\n' +
        'tunnel socket is bound, with the real address and port, and re-offers after a\n' +
        'WAN address change.\n' +
        exitCodesHelp([
          [EXIT_OK, 'the offer was printed'],
          [EXIT_USAGE, 'wrong usage, or no address could be determined'],
        ]) +
        '\nExamples:\n' +
        '  softwire sdp offer --address 198.51.100.7\n' +
        '  softwire sdp offer --sc 2001:db8::1     # IPv6 transport; our address chosen by routing\n' +
        '  softwire sdp offer --address 2001:db8:5::7 --port 1701 > offer.sdp',
    )
    .action(async (opts: { address?: string; sc?: string; port: number }) => {
      let address = opts.address;
      if (address === undefined) {
        try {
          address = await probeSourceAddress(opts.sc);
        } catch (e) {
          io.err(`softwire: cannot determine our address${opts.sc ? ` towards ${opts.sc}` : ''} (${(e as Error).message}); give --address ADDR\n`);
          io.setExitCode(EXIT_USAGE);
          return;
        }
      }
      try {
        io.out(l2tpOfferText({ address, port: opts.port, now: new Date() }));
        io.setExitCode(EXIT_OK);
      } catch (e) {
        io.err(`softwire: ${(e as Error).message}\n`);
        io.setExitCode(EXIT_USAGE);
      }
    });

  addVerb(sdp, 'answer', io)
    .description('read an SDP answer (from FILE, or stdin for "-") and print the SC address and port it names')
    .argument('[FILE]', 'file holding the answer; "-" or nothing reads stdin', '-')
    .option('--json', 'print {"address": ..., "port": ...} instead of HOST:PORT')
    .addHelpText(
      'after',
      '\nThe SC address comes from the c= line of the "m=application <port> UDP l2tp"\n' +
        'section, or the session-level c= line; the port from that m= line. HOST:PORT is\n' +
        'printed in the form --sc accepts ([IPv6]:PORT for IPv6).\n' +
        exitCodesHelp([
          [EXIT_OK, 'the answer names an SC; it was printed'],
          [EXIT_NOT_REACHED, 'the answer declines the L2TP stream (port 0 or a=inactive)'],
          [EXIT_USAGE, 'the input cannot be read, is not valid SDP (line number and reason), or names no usable SC'],
        ]) +
        '\nExamples:\n' +
        '  softwire sdp answer answer.sdp\n' +
        '  softwire sdp answer --json < answer.sdp\n' +
        '  softwire run --sc "$(softwire sdp answer answer.sdp)"',
    )
    .action(async (file: string, opts: { json?: boolean }) => {
      const label = file === '-' ? 'stdin' : file;
      if (file === '-' && (io.stdin as { isTTY?: boolean }).isTTY) io.err('reading the SDP answer from the terminal; end it with Ctrl-D\n');
      let data: Buffer;
      try {
        data = await readSdpInput(file, io.stdin);
      } catch (e) {
        io.err(`softwire: ${(e as Error).message}\n`);
        io.setExitCode(EXIT_USAGE);
        return;
      }
      try {
        const a = parseL2tpAnswer(data);
        io.out(opts.json ? `${JSON.stringify({ address: a.address, port: a.port })}\n` : `${formatHostPort(a.address, a.port)}\n`);
        io.setExitCode(EXIT_OK);
      } catch (e) {
        if (!(e instanceof SdpError)) throw e;
        io.err(`softwire: ${label}: ${e.message}\n`);
        io.setExitCode(e.kind === 'rejected' ? EXIT_NOT_REACHED : EXIT_USAGE);
      }
    });
}
