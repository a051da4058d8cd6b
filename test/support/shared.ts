import { existsSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** Project root (tests run from dist/test/..., so resolve from cwd, which npm sets to the root). */
export const projectRoot = process.cwd();

/** The shared data folder beside the project: faces and the MobileNet 0.25 weights. */
export const sharedDir = path.resolve(projectRoot, '..', 'shared');

export const sharedPaths = {
  orl: path.join(sharedDir, 'data', 'faces', 'orl'),
  yale: path.join(sharedDir, 'data', 'faces', 'yale'),
  bbt: path.join(sharedDir, 'data', 'faces', 'bbt'),
  lfwDev: path.join(sharedDir, 'data', 'faces', 'lfw-dev'),
  mobilenet025: path.join(sharedDir, 'models', 'mobilenet_v1_0.25_224', 'model.json'),
} as const;

/**
 * Call at the top of a test that needs ../shared. Returns false (and marks the test
 * skipped) when it is missing on a developer machine; under CI a missing ../shared
 * is a failure, never a skip.
 */
export function requireShared(t: TestContext): boolean {
  if (existsSync(sharedDir)) return true;
  if (process.env.CI) {
    throw new Error(`../shared is missing at ${sharedDir}; CI must provide it (faces and models for tests)`);
  }
  t.skip(`../shared not found at ${sharedDir}`);
  return false;
}
