import { TERMINAL_SCROLLBACK_BYTES } from '../protocol/index.js';

/**
 * The tail of a terminal's output, replayed to a client that attaches later. Kept as chunks so an
 * append is O(1); trimming drops whole chunks from the front and cuts the oldest one that straddles
 * the limit. Sizes are counted in UTF-16 code units, a close enough proxy for bytes here.
 */
export class ScrollbackBuffer {
  private chunks: string[] = [];
  private size = 0;

  constructor(private readonly limit: number = TERMINAL_SCROLLBACK_BYTES) {}

  append(data: string): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.size += data.length;
    while (this.size > this.limit) {
      const first = this.chunks[0];
      if (first === undefined) break;
      const excess = this.size - this.limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.slice(excess);
        this.size -= excess;
      }
    }
  }

  get length(): number {
    return this.size;
  }

  toString(): string {
    if (this.chunks.length > 1) this.chunks = [this.chunks.join('')];
    return this.chunks[0] ?? '';
  }
}
