/**
 * The bounded frame queue between capture and recognition. Capture never waits for
 * inference: when the queue is full the oldest frame is dropped and counted.
 */
import type { Frame } from '../shared/messages.js';

export class FrameQueue {
  private readonly items: Frame[] = [];
  private waiter: ((f: Frame | undefined) => void) | undefined;
  private closed = false;
  /** Frames dropped because the consumer was behind. */
  dropped = 0;

  constructor(
    readonly capacity: number,
    private readonly onDrop: (frame: Frame) => void = () => undefined,
  ) {
    if (!(capacity >= 1)) throw new RangeError('queue capacity must be at least 1');
  }

  get length(): number {
    return this.items.length;
  }

  push(frame: Frame): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(frame);
      return;
    }
    this.items.push(frame);
    while (this.items.length > this.capacity) {
      const old = this.items.shift();
      this.dropped++;
      if (old) this.onDrop(old);
    }
  }

  /** The next frame; undefined once the queue is closed and empty. One consumer at a time. */
  take(): Promise<Frame | undefined> {
    const f = this.items.shift();
    if (f) return Promise.resolve(f);
    if (this.closed) return Promise.resolve(undefined);
    if (this.waiter) return Promise.reject(new Error('FrameQueue supports one consumer'));
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  close(): void {
    this.closed = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(undefined);
    }
  }
}
