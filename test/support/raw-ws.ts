/**
 * A WebSocket client written on a bare TCP socket (node:net), for clients the `ws` library cannot play: one
 * that stops answering pings (half-open) or stops reading what the server sends (slow), while the test
 * decides exactly when. It speaks just enough RFC 6455: the handshake, masked text frames out, and
 * unfragmented text, ping and close frames in.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;

export class RawWsClient {
  /** Text frames received so far. */
  readonly texts: string[] = [];
  /** Pings received (and answered while `answerPings`). */
  pings = 0;
  closeCode: number | null = null;
  answerPings = true;
  readonly closed: Promise<void>;
  private buffered: Buffer = Buffer.alloc(0);

  private constructor(
    private readonly socket: Socket,
    rest: Buffer,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    if (rest.length > 0) this.onData(rest);
  }

  /** Handshakes on `url` (ws://host:port/path) offering `protocols`; rejects unless the answer is 101. */
  static open(url: string, protocols: string[]): Promise<RawWsClient> {
    const target = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(target.port), target.hostname);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const status = head.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '';
        if (!status.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${status}`));
          return;
        }
        resolve(new RawWsClient(socket, head.subarray(end + 4)));
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('connect', () =>
        socket.write(
          [
            `GET ${target.pathname} HTTP/1.1`,
            `Host: ${target.host}`,
            'Upgrade: websocket',
            'Connection: Upgrade',
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
            'Sec-WebSocket-Version: 13',
            `Sec-WebSocket-Protocol: ${protocols.join(', ')}`,
            '',
            '',
          ].join('\r\n'),
        ),
      );
    });
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  sendText(text: string): void {
    this.writeFrame(OPCODE_TEXT, Buffer.from(text, 'utf8'));
  }

  /**
   * Becomes a client that is gone without a word: nothing more is read from the socket, so pings go
   * unanswered and output piles up in the kernel's buffers, then in the server's.
   */
  stopReading(): void {
    this.answerPings = false;
    this.socket.pause();
  }

  /** Reads again (e.g. to see the end of a socket the server dropped). */
  resumeReading(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const frame = this.nextFrame();
      if (!frame) return;
      if (frame.opcode === OPCODE_TEXT) this.texts.push(frame.payload.toString('utf8'));
      else if (frame.opcode === OPCODE_PING) {
        this.pings += 1;
        if (this.answerPings) this.writeFrame(OPCODE_PONG, frame.payload);
      } else if (frame.opcode === OPCODE_CLOSE) {
        this.closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
      }
    }
  }

  /** Server frames are never masked; the ws server does not fragment the messages it sends here. */
  private nextFrame(): { opcode: number; payload: Buffer } | null {
    const b = this.buffered;
    if (b.length < 2) return null;
    const opcode = (b[0] ?? 0) & 0x0f;
    let length = (b[1] ?? 0) & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return null;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return null;
      length = Number(b.readBigUInt64BE(2));
      offset = 10;
    }
    if (b.length < offset + length) return null;
    const payload = b.subarray(offset, offset + length);
    this.buffered = b.subarray(offset + length);
    return { opcode, payload };
  }

  private writeFrame(opcode: number, payload: Buffer): void {
    if (this.socket.destroyed) return;
    const mask = randomBytes(4);
    const lengthBytes = payload.length < 126 ? 0 : payload.length < 65536 ? 2 : 8;
    const header = Buffer.alloc(2 + lengthBytes + 4);
    header[0] = 0x80 | opcode;
    if (lengthBytes === 0) header[1] = 0x80 | payload.length;
    else if (lengthBytes === 2) {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(payload.length, 2);
    } else {
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(payload.length), 2);
    }
    mask.copy(header, 2 + lengthBytes);
    const masked = Buffer.alloc(payload.length);
    for (let i = 0; i < payload.length; i++) masked[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
    this.socket.write(Buffer.concat([header, masked]));
  }
}
