/**
 * `camera.type = "ffmpeg"`: V4L2 devices, RTSP streams and video files through an ffmpeg
 * child process that writes MJPEG to a pipe; frames are split on JPEG markers.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { CameraError, redactUrl, type CameraSource, type FrameSink } from './source.js';
import { MjpegSplitter } from './mjpeg.js';

export interface FfmpegOptions {
  input: string;
  path: string;
  inputArgs: readonly string[];
  rtspTransport: 'tcp' | 'udp';
  quality: number;
  loop: boolean;
  fps: number;
  width: number;
  height: number;
}

/** The ffmpeg command line (pure, tested). */
export function ffmpegArgs(o: FfmpegOptions): string[] {
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(o.input);
  const isDevice = o.input.startsWith('/dev/');
  if (/^rtsps?:\/\//i.test(o.input)) args.push('-rtsp_transport', o.rtspTransport);
  if (isDevice && o.inputArgs.length === 0) args.push('-f', 'v4l2', '-video_size', `${o.width}x${o.height}`);
  if (!isUrl && !isDevice) {
    if (o.loop) args.push('-stream_loop', '-1');
    args.push('-re'); // a file plays at its own rate, like a camera
  }
  args.push(
    ...o.inputArgs,
    '-i',
    o.input,
    '-an',
    '-vf',
    `fps=${o.fps},scale=${o.width}:${o.height}`,
    '-f',
    'image2pipe',
    '-c:v',
    'mjpeg',
    '-q:v',
    String(o.quality),
    'pipe:1',
  );
  return args;
}

export class FfmpegSource implements CameraSource {
  private child: ChildProcessByStdio<null, Readable, Readable> | undefined;
  private closing = false;

  constructor(private readonly o: FfmpegOptions) {}

  get description(): string {
    return `ffmpeg ${redactUrl(this.o.input)}`;
  }

  open(sink: FrameSink): Promise<void> {
    if (!this.o.input)
      return Promise.reject(
        new CameraError('camera.ffmpeg.input is empty: set a V4L2 device (/dev/video0), an RTSP URL or a video file'),
      );
    this.closing = false;
    const splitter = new MjpegSplitter();
    let stderrTail = '';
    return new Promise((resolve, reject) => {
      const child = spawn(this.o.path, ffmpegArgs(this.o), { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      let spawned = false;
      child.once('spawn', () => {
        spawned = true;
        resolve();
      });
      child.once('error', (err: NodeJS.ErrnoException) => {
        const e =
          err.code === 'ENOENT'
            ? new CameraError(
                `ffmpeg not found ("${this.o.path}"): install it (sudo apt-get install ffmpeg) or set camera.ffmpeg.path`,
              )
            : new CameraError(`ffmpeg cannot start: ${err.message}`);
        if (!spawned) reject(e);
        else sink.error(e);
      });
      child.stdout.on('data', (chunk: Buffer) => {
        for (const jpeg of splitter.push(chunk)) sink.frame(jpeg);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderrTail = (stderrTail + chunk.toString('utf8')).slice(-2000);
      });
      child.once('close', (code, signal) => {
        this.child = undefined;
        if (this.closing || !spawned) return;
        const isFile = !/^[a-z][a-z0-9+.-]*:\/\//i.test(this.o.input) && !this.o.input.startsWith('/dev/');
        if (code === 0 && isFile && !this.o.loop) {
          sink.end();
          return;
        }
        const why = stderrTail.trim().split('\n').slice(-3).join(' | ');
        sink.error(
          new CameraError(
            `ffmpeg (${redactUrl(this.o.input)}) exited with ${signal ?? `code ${code ?? '?'}`}${why ? `: ${redactUrl(why)}` : ''}`,
          ),
        );
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
      }, 2000);
      child.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
