/**
 * Differential fuzzing of the lean blob reader against Node's own HTTP client (llhttp): the same
 * response bytes, valid seeds and random mutations of them, written by a raw TCP server on
 * loopback to both clients. They must agree on accept/refuse, and when both accept, on the status
 * and the body bytes. The lean reader may be stricter only in the ways listed in STRICTER.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { leanGet } from './lean-http.ts';

type Verdict = { ok: true; status: number; body: Buffer } | { ok: false; error: string };

/** Valid responses the mutations start from. */
const SEEDS: readonly string[] = [
  'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nDocker-Content-Digest: sha256:abc\r\n\r\nhello world',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c="q \\" x"\r\nhello\r\n6;e\r\n world\r\n0;last=1\r\nX-Trailer: t\r\nDigest:  d \r\n\r\n',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/10\r\nContent-Length: 5\r\n\r\nhello',
  'HTTP/1.1 200 \r\nX-Empty:\r\nX-Tabs:\t\ta b\t \r\nContent-Length:\t 5  \r\n\r\nhello',
  'HTTP/1.1 404 Not Found\r\nWarning: 299 - "a"\r\nWarning: 299 - "b"\r\nSet-Cookie: a\r\nset-cookie: b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
  'HTTP/1.0 200 OK\r\nServer: x\r\n\r\nclose-delimited body',
  'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n000A\r\n0123456789\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Length: 3\r\n\r\nabc',
  'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n0\r\n\r\nHTTP/1.1',
  'HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
];

/** Bytes that matter to an HTTP parser, for insertions and replacements. */
const INTERESTING = [...'\r\n\0 \t:;="\\,-0aAfF9', '\x01', '\x0b', '\x7f', '\x80', '\xff'];

/**
 * Where the lean reader refuses on purpose what llhttp accepts, recognised by the lean reader's
 * error message and checked against the bytes so that a wrong refusal cannot hide behind it.
 */
const STRICTER: readonly { why: string; message: RegExp; input: RegExp }[] = [
  {
    why: 'only one plain `chunked` transfer coding (llhttp reads other codings as close-delimited)',
    message: /unsupported Transfer-Encoding/,
    input: /transfer-encoding:/i,
  },
  {
    why: 'no tab after a Content-Length (llhttp 9.3, Node 20, refuses it; 9.4, Node 22 and 24, takes it)',
    message: /invalid Content-Length/,
    input: /content-length:[ \t]*\d+ *\t/i,
  },
  {
    why: 'no empty lines before a status line',
    message: /empty line before the status line/,
    input: /(^|\r\n\r\n)[\r\n]/,
  },
  {
    why: 'only HTTP/1.0 and HTTP/1.1 (llhttp also takes e.g. HTTP/2.0)',
    message: /HTTP version/,
    input: /HTTP\/(?!1\.[01] )\d\.\d /,
  },
  { why: 'status codes 100–599 only', message: /status code \d+ outside/, input: /HTTP\/\d\.\d (0\d\d|[6-9]\d\d)/ },
  {
    why: 'no control characters in the reason phrase',
    message: /control character in the reason phrase/,
    input: /HTTP\/\d\.\d \d\d\d [^\r\n]*[\0-\x08\x0b\x0c\x0e-\x1f\x7f]/,
  },
  {
    why: 'a CR ends a status line only before LF (llhttp takes CR CR)',
    message: /bare CR in the status line/,
    input: /HTTP\/\d\.\d [^\n]*\r\r/,
  },
  {
    why: 'no 101 to a request that asked for no upgrade',
    message: /101 Switching Protocols/,
    input: /HTTP\/\d\.\d 101/,
  },
];

/**
 * Where a mutation lands: `near` picks one of the places parsers care about (a delimiter, a line
 * start, the end) and moves up to two bytes from it; otherwise anywhere.
 */
type Place = { near: true; anchor: number; offset: number } | { near: false; at: number };
type Mutation =
  | { kind: 'insert' | 'replace'; place: Place; byte: string }
  | { kind: 'delete'; place: Place; length: number }
  | { kind: 'duplicate-line' | 'truncate'; place: Place };

function position(input: string, place: Place): number {
  if (!place.near) return place.at % (input.length + 1);
  const anchors = [0, input.length];
  for (let i = 0; i < input.length; i++) if (':;=" \t\r\n'.includes(input[i] as string)) anchors.push(i, i + 1);
  const at = (anchors[place.anchor % anchors.length] as number) + place.offset;
  return Math.max(0, Math.min(input.length, at));
}

function mutate(input: string, m: Mutation): string {
  const at = position(input, m.place);
  switch (m.kind) {
    case 'insert':
      return input.slice(0, at) + m.byte + input.slice(at);
    case 'replace':
      return input.slice(0, at) + m.byte + input.slice(at + 1);
    case 'delete':
      return input.slice(0, at) + input.slice(at + m.length);
    case 'truncate':
      return input.slice(0, at);
    case 'duplicate-line': {
      const lines = input.split('\r\n');
      const i = at % lines.length;
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\r\n');
    }
  }
}

const placeArb: fc.Arbitrary<Place> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      near: fc.constant(true as const),
      anchor: fc.nat(),
      offset: fc.integer({ min: -2, max: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ near: fc.constant(false as const), at: fc.nat() }) },
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constantFrom('insert' as const, 'replace' as const),
      place: placeArb,
      byte: fc.constantFrom(...INTERESTING),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      place: placeArb,
      length: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constantFrom('duplicate-line' as const, 'truncate' as const), place: placeArb }),
  },
);

const responseArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.constantFrom(...SEEDS), fc.array(mutationArb, { minLength: 1, maxLength: 2 }))
      .map(([seed, ms]) => ms.reduce(mutate, seed)),
  },
  { weight: 1, arbitrary: fc.constantFrom(...SEEDS) },
  {
    weight: 1,
    arbitrary: fc
      .array(
        fc.constantFrom(...INTERESTING, 'HTTP/1.1 200 OK', 'Content-Length: 3', 'Transfer-Encoding: chunked', '\r\n'),
        { maxLength: 12 },
      )
      .map((parts) => parts.join('')),
  },
);

/** One loopback server; each request path names the case whose bytes it writes, then it closes. */
class RawServer {
  private readonly cases = new Map<number, { bytes: Buffer; pieces: readonly number[] }>();
  private readonly server = net.createServer((socket) => this.answer(socket));
  private next = 0;
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  add(bytes: Buffer, pieces: readonly number[]): number {
    this.cases.set(this.next, { bytes, pieces });
    return this.next++;
  }

  remove(id: number): void {
    this.cases.delete(id);
  }

  close(): void {
    this.server.close();
  }

  private answer(socket: net.Socket): void {
    socket.on('error', () => undefined);
    let head = '';
    const onData = (data: Buffer) => {
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const entry = this.cases.get(Number(/^GET \/(\d+) /.exec(head)?.[1]));
      if (entry === undefined) return socket.destroy();
      // Written in pieces, so that both parsers see lines and framing cut across reads.
      const cuts = [...new Set(entry.pieces.map((p) => p % (entry.bytes.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      const write = (i: number) => {
        if (socket.destroyed) return;
        if (i >= cuts.length) {
          socket.end(entry.bytes.subarray(from));
          return;
        }
        const to = cuts[i] as number;
        socket.write(entry.bytes.subarray(from, to));
        from = to;
        setImmediate(() => write(i + 1));
      };
      write(0);
    };
    socket.on('data', onData);
  }
}

function viaNode(port: number, id: number): Promise<Verdict> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let res: http.IncomingMessage | undefined;
    const req = http.get({ host: '127.0.0.1', port, path: `/${id}`, agent: false }, (r) => {
      res = r;
      r.on('data', (d: Buffer) => parts.push(d));
      r.on('error', () => undefined);
      r.on('close', () =>
        resolve(
          r.complete
            ? { ok: true, status: r.statusCode ?? 0, body: Buffer.concat(parts) }
            : { ok: false, error: 'incomplete body' },
        ),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (res === undefined) resolve({ ok: false, error: `${err.code ?? ''} ${err.message}` });
    });
  });
}

async function viaLean(port: number, id: number): Promise<Verdict> {
  try {
    const res = await leanGet({
      url: new URL(`http://127.0.0.1:${port}/${id}`),
      headers: {},
      connect: { timeout: 5000 },
      headersTimeoutMs: 5000,
      bodyTimeoutMs: 5000,
    });
    const parts: Buffer[] = [];
    await res.body.pump((chunk) => {
      parts.push(Buffer.from(chunk));
      return undefined;
    });
    return { ok: true, status: res.statusCode, body: Buffer.concat(parts) };
  } catch (err) {
    return {
      ok: false,
      error: err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}` : String(err),
    };
  }
}

function show(v: Verdict): string {
  return v.ok ? `accepted ${v.status} ${JSON.stringify(v.body.toString('latin1'))}` : `refused (${v.error})`;
}

describe('lean reader against llhttp (differential fuzz)', () => {
  const server = new RawServer();
  before(() => server.start());
  after(() => server.close());

  /** Both readers on the same bytes; returns why they disagree, or undefined. */
  async function compare(response: string, pieces: readonly number[]): Promise<string | undefined> {
    const bytes = Buffer.from(response, 'latin1');
    const [nodeId, leanId] = [server.add(bytes, pieces), server.add(bytes, pieces)];
    const [node, lean] = await Promise.all([viaNode(server.port, nodeId), viaLean(server.port, leanId)]);
    server.remove(nodeId);
    server.remove(leanId);
    const context = `${JSON.stringify(response)}: llhttp ${show(node)}, lean ${show(lean)}`;
    if (node.ok && lean.ok) {
      if (node.status !== lean.status || !node.body.equals(lean.body)) return `different results for ${context}`;
      return undefined;
    }
    if (lean.ok) return `lean accepted what llhttp refused: ${context}`;
    if (node.ok && !STRICTER.some((s) => s.message.test(lean.error) && s.input.test(response)))
      return `lean refused what llhttp accepted, for no listed reason: ${context}`;
    return undefined;
  }

  it('agrees with llhttp on every seed, read whole and cut into pieces', async () => {
    for (const seed of SEEDS) {
      assert.equal(await compare(seed, []), undefined);
      assert.equal(await compare(seed, [1, 7, 19, 33, 61]), undefined);
    }
  });

  it('agrees with llhttp on the classic traps', async () => {
    const ok = 'Content-Length: 5\r\n\r\nhello';
    const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    for (const trap of [
      `HTTP/1.1 200 OK\n${ok}`,
      `HTTP/1.1 200 OK\r\nContent-Length: 5\n\r\nhello`,
      `HTTP/1.1 200 OK\r\nX: a\0b\r\n${ok}`,
      `HTTP/1.1 200 OK\r\nX: a\x0bb\r\n${ok}`,
      `HTTP/1.1 200 OK\r\nX: a\x7f\r\n${ok}`,
      `HTTP/1.1 200 OK\r\nX: a\rb\r\n${ok}`,
      `HTTP/1.1 200 OK\r\nX : a\r\n${ok}`,
      `HTTP/1.1 200 OK\r\nX\xe9: a\r\n${ok}`,
      `HTTP/1.1 200 OK\r\n: a\r\n${ok}`,
      `HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n${ok}`,
      `HTTP/1.1 200 OK\r\nContent-Length: 5\r\n${ok}`,
      `HTTP/1.1 200 OK\r\nContent-Length: 5\t\r\n\r\nhello`,
      `HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello`,
      `HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello`,
      `HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello`,
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${ok}`,
      `HTTP/1.1 100 Continue\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nHTTP/1.1 200 OK\r\n${ok}`,
      `HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n${ok}`,
      `${chunked}5\nhello\r\n0\r\n\r\n`,
      `${chunked}5\r\nhello\n0\r\n\r\n`,
      `${chunked}5\r\nhelloXX0\r\n\r\n`,
      `${chunked}5 \r\nhello\r\n0\r\n\r\n`,
      `${chunked}5; a=b\r\nhello\r\n0\r\n\r\n`,
      `${chunked}5;\r\nhello\r\n0\r\n\r\n`,
      `${chunked}5;;a=b"q"\r\nhello\r\n0\r\n\r\n`,
      `${chunked}fffffffffffffffff\r\nhello\r\n0\r\n\r\n`,
      `${chunked}5\r\nhello\r\n0\r\nX: \0\r\n\r\n`,
      `${chunked}5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n`,
      `${chunked}5\r\nhello\r\n0\r\nX: y\r\n folded\r\n\r\n`,
      `${chunked}5\r\nhello\r\n0\r\n\n`,
    ]) {
      assert.equal(await compare(trap, []), undefined);
    }
  });

  it('agrees with llhttp on random and mutated responses (1,000 cases)', async () => {
    await fc.assert(
      fc.asyncProperty(responseArb, fc.array(fc.nat(), { maxLength: 4 }), async (response, pieces) => {
        const why = await compare(response, pieces);
        assert.equal(why, undefined, why);
      }),
      // KIMG_FUZZ_RUNS=20000 for a deeper run by hand.
      { numRuns: Number(process.env['KIMG_FUZZ_RUNS'] ?? 1000) },
    );
  });
});
