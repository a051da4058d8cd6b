/**
 * The `access` section of the kiosk configuration (included by src/config/schema.ts):
 * the rules, the stricter bar to open a door, the time zone and holidays, the access log.
 */
import { z } from 'zod';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
/** A date-time with an explicit offset or Z: absolute, whatever the kiosk's zone. */
const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

export function isCalendarDate(s: string): boolean {
  if (!DATE_RE.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** True when `s` is a usable validity bound: a calendar date (YYYY-MM-DD, local) or a date-time with offset. */
export function isValidityBound(s: string): boolean {
  return isCalendarDate(s) || (DATETIME_RE.test(s) && !Number.isNaN(Date.parse(s)));
}

const validity = (what: string) =>
  z
    .string()
    .refine(isValidityBound, 'use YYYY-MM-DD (a day in access.timeZone) or a date-time with offset (2026-05-01T08:00Z)')
    .nullable()
    .describe(what)
    .default(null);

const hhmm = z
  .string()
  .regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'use HH:MM, 00:00 to 24:00')
  .describe('wall-clock time in access.timeZone, HH:MM');

export const timeWindowSchema = z
  .object({
    from: hhmm.default('00:00'),
    to: hhmm.default('24:00'),
  })
  .strict()
  .describe(
    'a window of the day, from inclusive to exclusive; a window that ends before it starts (22:00-06:00) runs past midnight and belongs to the day it starts on',
  );

export const accessRuleSchema = z
  .object({
    name: z.string().describe('a label for logs and the admin page').default(''),
    persons: z.array(z.string().min(1)).describe('person names or ids the rule applies to').default([]),
    groups: z.array(z.string().min(1)).describe('groups the rule applies to (every member)').default([]),
    doors: z.array(z.string().min(1)).describe('door ids the rule opens; "*" = every door').default(['*']),
    days: z
      .array(z.enum(WEEKDAYS))
      .describe('weekdays the rule applies on')
      .default([...WEEKDAYS]),
    hours: z
      .array(timeWindowSchema)
      .min(1, 'give at least one window, or leave hours out for the whole day')
      .describe('windows of the day the rule applies in')
      .default([{ from: '00:00', to: '24:00' }]),
    holidays: z
      .boolean()
      .describe('whether the rule also applies on the days listed in access.holidays')
      .default(false),
    validFrom: validity('first day (or instant) the rule applies; null = always has'),
    validUntil: validity('last day (inclusive, or instant) the rule applies; null = never ends'),
  })
  .strict()
  .refine((r) => r.persons.length + r.groups.length > 0, {
    message: 'a rule names at least one person or group',
    path: ['persons'],
  });
export type AccessRule = z.output<typeof accessRuleSchema>;
export type AccessRuleInput = z.input<typeof accessRuleSchema>;

/** Throws a RangeError naming the zone when it is not an IANA time zone this Node knows. */
export function assertTimeZone(timeZone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new RangeError(`unknown time zone "${timeZone}": use an IANA name such as Europe/Berlin or UTC`);
  }
}

export const accessConfigSchema = z
  .object({
    enabled: z
      .boolean()
      .describe('decide door access on the kiosk and drive the door outputs (door section); off = greet only')
      .default(false),
    door: z
      .string()
      .min(1)
      .regex(/^[^/+#]+$/, 'must not contain /, + or #')
      .describe('id of the door this kiosk opens (rules name doors by id)')
      .default('door'),
    timeZone: z
      .string()
      .refine(
        (tz) => {
          try {
            assertTimeZone(tz);
            return true;
          } catch {
            return false;
          }
        },
        { message: 'unknown time zone: use an IANA name such as Europe/Berlin or UTC' },
      )
      .describe('IANA time zone of the schedules, holidays and date-only validity (Europe/Berlin); DST follows it')
      .default('UTC'),
    holidays: z
      .array(z.string().refine((d) => /^\d{4}-\d{2}-\d{2}$/.test(d) && isValidityBound(d), 'use YYYY-MM-DD'))
      .describe('days (YYYY-MM-DD, in access.timeZone) on which only rules with holidays: true apply')
      .default([]),
    rules: z
      .array(accessRuleSchema)
      .describe('who may open which door when; nobody not granted by a rule gets in (default deny)')
      .default([]),
    open: z
      .object({
        minScore: z
          .number()
          .min(-1)
          .max(1)
          .describe('mean similarity over the voted frames a person needs to open the door (greeting needs less)')
          .default(0.5),
        minMargin: z
          .number()
          .min(0)
          .max(1)
          .describe(
            'mean probability margin over the second-best person, over the voted frames, needed to open the door',
          )
          .default(0.5),
        minFaceSize: z
          .number()
          .nonnegative()
          .describe('smallest face box side (pixels) over the voted frames needed to open the door')
          .default(80),
      })
      .strict()
      .describe('the stricter bar to open than to greet: a door opens only on a multi-frame decision that passes it')
      .prefault({}),
    log: z
      .object({
        retentionDays: z
          .number()
          .int()
          .positive()
          .describe('access-log entries older than this many days are deleted')
          .default(90),
      })
      .strict()
      .describe('the access log in the kiosk database')
      .prefault({}),
  })
  .strict()
  .describe('door access: rules, the bar to open, the access log')
  .prefault({});

export type AccessConfig = z.output<typeof accessConfigSchema>;
