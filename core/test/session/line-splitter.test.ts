import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { CappedLineSplitter, NdjsonWriter, type SplitLine } from '../../src/protocol/index.js';

function splitAll(chunks: string[], cap: number): SplitLine[] {
  const splitter = new CappedLineSplitter(cap);
  return [...chunks.flatMap((c) => splitter.push(Buffer.from(c, 'utf8'))), ...splitter.end()];
}

describe('CappedLineSplitter', () => {
  it('gives the same lines however the stream is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => !s.includes('\n') && s.trim() !== ''),
          {
            maxLength: 20,
          },
        ),
        fc.array(fc.nat(50), { maxLength: 10 }),
        (lines, cuts) => {
          const text = lines.map((l) => `${l}\n`).join('');
          const bytes = Buffer.from(text, 'utf8');
          const splitter = new CappedLineSplitter(1024);
          const out: SplitLine[] = [];
          let start = 0;
          for (const cut of [...cuts, bytes.length]) {
            const end = Math.min(bytes.length, start + cut);
            out.push(...splitter.push(bytes.subarray(start, end)));
            start = end;
          }
          out.push(...splitter.push(bytes.subarray(start)), ...splitter.end());
          assert.deepEqual(
            out,
            lines.map((l) => ({ kind: 'line', text: l.endsWith('\r') ? l.slice(0, -1) : l })),
          );
        },
      ),
    );
  });

  it('drops a line over the cap, reports its size once and carries on', () => {
    const big = 'x'.repeat(5000);
    const out = splitAll(['{"a":1}\n', big.slice(0, 2000), big.slice(2000), '\n{"b":2}\n'], 1024);
    assert.deepEqual(out, [
      { kind: 'line', text: '{"a":1}' },
      { kind: 'oversize', bytes: 5000 },
      { kind: 'line', text: '{"b":2}' },
    ]);
  });

  it('keeps a last line that has no newline', () => {
    assert.deepEqual(splitAll(['one\ntwo'], 100), [
      { kind: 'line', text: 'one' },
      { kind: 'line', text: 'two' },
    ]);
  });
});

describe('NdjsonWriter', () => {
  it('holds lines while the stream is full and delivers all of them in order', async () => {
    const stream = new PassThrough({ highWaterMark: 64 });
    const writer = new NdjsonWriter(stream);
    const writes = Array.from({ length: 200 }, (_, i) => writer.write({ i, pad: 'y'.repeat(50) }));
    assert.ok(writer.queuedBytes > 0, 'backpressure kept lines in the writer');
    const received: string[] = [];
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => received.push(chunk));
    await Promise.all(writes);
    const lines = received.join('').trim().split('\n');
    assert.equal(lines.length, 200);
    assert.equal(writer.queuedBytes, 0);
    assert.match(lines[199] ?? '', /"i":199/);
  });
});
