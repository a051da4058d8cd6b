/** `camera.type = "directory"`: replays the image files of a folder in name order at `fps`. */
import { readFile, stat } from 'node:fs/promises';
import { listImages } from '../shared/image.js';
import { CameraError, type CameraSource, type FrameSink } from './source.js';

export class DirectorySource implements CameraSource {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private files: string[] = [];
  private index = 0;

  constructor(
    private readonly dir: string,
    private readonly fps: number,
    private readonly loop: boolean,
  ) {}

  get description(): string {
    return `directory ${this.dir}`;
  }

  async open(sink: FrameSink): Promise<void> {
    if (!this.dir) throw new CameraError('camera.directory.path is empty: set it to a folder of images');
    try {
      if (!(await stat(this.dir)).isDirectory()) throw new Error('not a directory');
      this.files = await listImages(this.dir);
    } catch (err) {
      throw new CameraError(`camera.directory.path ${this.dir} cannot be read: ${(err as Error).message}`);
    }
    if (this.files.length === 0)
      throw new CameraError(`camera.directory.path ${this.dir} has no image files (.jpg, .png, .gif, .webp)`);
    this.closed = false;
    this.schedule(sink, 0);
  }

  private schedule(sink: FrameSink, delay: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.tick(sink);
    }, delay);
  }

  private async tick(sink: FrameSink): Promise<void> {
    const started = Date.now();
    if (this.index >= this.files.length) {
      if (!this.loop) {
        sink.end();
        return;
      }
      this.index = 0;
      try {
        this.files = await listImages(this.dir);
      } catch (err) {
        sink.error(err as Error);
        return;
      }
      if (this.files.length === 0) {
        sink.error(new CameraError(`${this.dir} has no image files any more`));
        return;
      }
    }
    const file = this.files[this.index++] as string;
    let image: Buffer;
    try {
      image = await readFile(file);
    } catch (err) {
      sink.error(new CameraError(`cannot read ${file}: ${(err as Error).message}`));
      return;
    }
    if (this.closed) return;
    sink.frame(image);
    this.schedule(sink, Math.max(0, 1000 / this.fps - (Date.now() - started)));
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    return Promise.resolve();
  }
}
