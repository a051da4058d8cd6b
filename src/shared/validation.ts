/** How a zod validation failure is shown to a user: one `path: message` line per issue. */
import type { z } from 'zod';

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('\n');
}
