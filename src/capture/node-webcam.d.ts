// node-webcam ships no types; only the part facegate uses.
declare module 'node-webcam' {
  export interface WebcamOptions {
    width?: number;
    height?: number;
    quality?: number;
    delay?: number;
    saveShots?: boolean;
    output?: 'jpeg' | 'png' | 'bmp';
    device?: string | false;
    callbackReturn?: 'location' | 'buffer' | 'base64';
    verbose?: boolean;
    skip?: number;
  }
  export interface Webcam {
    bin: string;
    capture(location: string | null, callback: (err: Error | null, data: Buffer | string) => void): void;
    clear(): void;
  }
  export function create(options: WebcamOptions): Webcam;
  const NodeWebcam: { create: typeof create };
  export default NodeWebcam;
}
