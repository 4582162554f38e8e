/**
 * Splits a byte stream into lines at '\n', over Buffers: a line within one chunk is a view of it (no copy), a line
 * spanning chunks is joined once it is complete. Lines can be as long as a Buffer can be
 * (buffer.constants.MAX_LENGTH); memory holds one chunk plus the line in progress. Pure.
 */
import { constants } from 'node:buffer';

const NEWLINE = 0x0a;

export class LineTooLongError extends Error {}

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingLength = 0;

  /** The lines `chunk` completes, without their '\n'. */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let newline = chunk.indexOf(NEWLINE);
    if (newline < 0) {
      this.keep(chunk);
      return lines;
    }
    if (this.pending.length > 0) {
      this.keep(chunk.subarray(0, newline));
      lines.push(Buffer.concat(this.pending, this.pendingLength));
      this.pending = [];
      this.pendingLength = 0;
    } else {
      lines.push(chunk.subarray(0, newline));
    }
    let start = newline + 1;
    while ((newline = chunk.indexOf(NEWLINE, start)) >= 0) {
      lines.push(chunk.subarray(start, newline));
      start = newline + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
    return lines;
  }

  /** What is left after the last '\n' (a last line without terminator), if anything. */
  end(): Buffer | undefined {
    if (this.pending.length === 0) return undefined;
    const rest = Buffer.concat(this.pending, this.pendingLength);
    this.pending = [];
    this.pendingLength = 0;
    return rest;
  }

  private keep(part: Buffer): void {
    if (part.length === 0) return;
    if (this.pendingLength + part.length > constants.MAX_LENGTH) {
      throw new LineTooLongError(
        `a line is longer than ${constants.MAX_LENGTH} bytes, the most a Buffer holds`,
      );
    }
    this.pending.push(part);
    this.pendingLength += part.length;
  }
}
