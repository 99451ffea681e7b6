import { Writable } from 'node:stream';
import type { CommandIo } from '../../src/cli/command.js';

/** A Writable that keeps what was written, for asserting on CLI output and log lines. */
export class CapturedStream extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    callback();
  }
}

export function captureIo(): CommandIo & { stdout: CapturedStream; stderr: CapturedStream } {
  return { stdout: new CapturedStream(), stderr: new CapturedStream(), isTty: false };
}
