/** `camera.type = "webcam"`: node-webcam (fswebcam on Linux), polled at `fps`. */
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import NodeWebcam from 'node-webcam';
import { CameraError, type CameraSource, type FrameSink } from './source.js';

export interface WebcamOptions {
  device: string;
  command: string;
  skipFrames: number;
  fps: number;
  width: number;
  height: number;
}

// node-webcam runs its command through a shell: allow only plain paths and names.
const SAFE = /^[A-Za-z0-9_./:-]*$/;

let instances = 0;

export class WebcamSource implements CameraSource {
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  // node-webcam's in-memory mode decodes the JPEG as text (corrupting it): capture to a file.
  private readonly file = path.join(tmpdir(), `facegate-webcam-${process.pid}-${++instances}.jpg`);

  constructor(private readonly o: WebcamOptions) {}

  get description(): string {
    return `webcam ${this.o.device || '(default)'}`;
  }

  private capture(): Promise<Buffer> {
    const cam = NodeWebcam.create({
      width: this.o.width,
      height: this.o.height,
      quality: 90,
      delay: 0,
      saveShots: false,
      output: 'jpeg',
      device: this.o.device || false,
      callbackReturn: 'location',
      verbose: false,
      skip: this.o.skipFrames,
    });
    cam.bin = this.o.command;
    return new Promise<void>((resolve, reject) => {
      cam.capture(this.file, (err) => {
        if (err)
          reject(
            new CameraError(
              `${this.o.command} could not capture from ${this.o.device || 'the default camera'}: ${err.message.split('\n')[0] ?? ''}`,
            ),
          );
        else resolve();
      });
    }).then(async () => {
      const data = await readFile(this.file).catch(() => Buffer.alloc(0));
      await rm(this.file, { force: true });
      if (data.length === 0)
        throw new CameraError(`${this.o.command} returned no image from ${this.o.device || 'the default camera'}`);
      return data;
    });
  }

  async open(sink: FrameSink): Promise<void> {
    if (!SAFE.test(this.o.device) || !SAFE.test(this.o.command))
      throw new CameraError(
        'camera.webcam.device and camera.webcam.command may contain only letters, digits and _ . / : -',
      );
    this.closed = false;
    const first = await this.capture().catch((err: Error) => {
      throw new CameraError(
        `${err.message}. Check that a camera is plugged in and ${this.o.command} is installed (sudo apt-get install fswebcam), or set camera.type`,
      );
    });
    sink.frame(first);
    const loop = async (): Promise<void> => {
      while (!this.closed) {
        const started = Date.now();
        try {
          const img = await this.capture();
          if (this.closed) return;
          sink.frame(img);
        } catch (err) {
          if (!this.closed) sink.error(err as Error);
          return;
        }
        await new Promise<void>((r) => {
          this.timer = setTimeout(r, Math.max(0, 1000 / this.o.fps - (Date.now() - started)));
        });
      }
    };
    void loop();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await rm(this.file, { force: true });
  }
}
