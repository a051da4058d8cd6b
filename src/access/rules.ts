/**
 * Who may open which door, when: access rules (declared in config, default deny) and the
 * pure decision `decideAccess()`. Wall-clock questions (weekday, hour, holiday, a date-only
 * validity) are answered in the kiosk's time zone through Intl, so daylight-saving changes
 * move the schedule with the clocks on the wall.
 */
import {
  WEEKDAYS,
  accessRuleSchema,
  assertTimeZone,
  isValidityBound,
  isCalendarDate,
  timeWindowSchema,
  type AccessRule,
  type AccessRuleInput,
  type Weekday,
} from './config.js';

export {
  WEEKDAYS,
  accessRuleSchema,
  assertTimeZone,
  isValidityBound,
  timeWindowSchema,
  type AccessRule,
  type AccessRuleInput,
  type Weekday,
};

/** What the access decision knows about a person (the gallery provides it; a model's class names have no groups). */
export interface PersonInfo {
  readonly id: string;
  readonly name: string;
  readonly groups: readonly string[];
  readonly validFrom: string | null;
  readonly validUntil: string | null;
}

/** Looks a recognised label up (by name or id). */
export interface PersonDirectory {
  lookup(nameOrId: string): PersonInfo | undefined;
}

export const DENIAL_REASONS = [
  'unknown',
  'not allowed now',
  'expired',
  'low confidence',
  'several faces',
  'spoof suspected',
  'door forced',
  'door held',
] as const;
export type DenialReason = (typeof DENIAL_REASONS)[number];

export type AccessDecision =
  | {
      readonly result: 'granted';
      readonly reason: null;
      /** Which rule let the person in (its name, or its index). */
      readonly detail: string;
    }
  | { readonly result: 'denied'; readonly reason: DenialReason; readonly detail: string };

/** The stricter bar to open a door (src/access/config.ts declares it). */
export interface OpenBar {
  readonly minScore: number;
  readonly minMargin: number;
  readonly minFaceSize: number;
}

export interface AccessQuestion {
  /** The multi-frame decision: a name, or null for an unknown face. */
  readonly name: string | null;
  /** Mean similarity over the voted frames. */
  readonly score: number;
  /** Mean probability margin over the second-best person, voted frames; undefined = not known (refused). */
  readonly margin: number | undefined;
  /** Smallest face box side over the voted frames, pixels; undefined = not known (refused). */
  readonly faceSize: number | undefined;
  /** Faces in the frame that completed the decision. */
  readonly faces: number;
  /** Time of the decision, ms since the epoch. */
  readonly time: number;
  readonly door: string;
  /** The person behind `name` (undefined when the directory does not know them). */
  readonly person: PersonInfo | undefined;
  /** A door-contact alarm in progress. */
  readonly alarm?: 'door forced' | 'door held' | null;
  /** Liveness says the face is not live (reserved: no liveness check exists yet). */
  readonly spoof?: boolean;
}

export interface AccessPolicy {
  readonly timeZone: string;
  readonly holidays: readonly string[];
  readonly rules: readonly AccessRule[];
  readonly bar: OpenBar;
}

/** Wall-clock fields of an instant in a time zone. */
export interface LocalTime {
  readonly date: string; // YYYY-MM-DD
  readonly weekday: Weekday;
  readonly minutes: number; // 0..1439
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock date, weekday and minute of `ms` in `timeZone` (DST-correct through Intl). */
export function localTime(ms: number, timeZone: string): LocalTime {
  let f = formatters.get(timeZone);
  if (!f) {
    assertTimeZone(timeZone);
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(ms))) parts[p.type] = p.value;
  const weekday = (parts.weekday ?? '').slice(0, 3).toLowerCase() as Weekday;
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    weekday,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

/** The day before a YYYY-MM-DD date, and its weekday. */
function previousDay(date: string): { date: string; weekday: Weekday } {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  const weekday = WEEKDAYS[(d.getUTCDay() + 6) % 7] as Weekday;
  return { date: d.toISOString().slice(0, 10), weekday };
}

/** Where `ms` stands against a validity span: before it starts, inside, or after it ended. */
export function validityAt(
  ms: number,
  local: LocalTime,
  from: string | null,
  until: string | null,
): 'before' | 'valid' | 'after' {
  if (from !== null) {
    if (isCalendarDate(from) ? local.date < from : ms < Date.parse(from)) return 'before';
  }
  if (until !== null) {
    if (isCalendarDate(until) ? local.date > until : ms > Date.parse(until)) return 'after';
  }
  return 'valid';
}

/** Whether the rule's days, hours and holidays admit the local time (validity aside). */
export function scheduleAdmits(rule: AccessRule, local: LocalTime, holidays: readonly string[]): boolean {
  const dayOk = (date: string, weekday: Weekday): boolean =>
    rule.days.includes(weekday) && (rule.holidays || !holidays.includes(date));
  for (const w of rule.hours) {
    const from = minutesOf(w.from);
    const to = minutesOf(w.to);
    if (from < to) {
      if (local.minutes >= from && local.minutes < to && dayOk(local.date, local.weekday)) return true;
    } else if (from > to) {
      // Runs past midnight: the evening part belongs to today, the morning part to yesterday.
      if (local.minutes >= from && dayOk(local.date, local.weekday)) return true;
      const y = previousDay(local.date);
      if (local.minutes < to && dayOk(y.date, y.weekday)) return true;
    }
  }
  return false;
}

function ruleLabel(rule: AccessRule, i: number): string {
  return rule.name || `rule ${i + 1}`;
}

/** Whether a rule names the person (by id or name, or through one of their groups) and the door. */
export function ruleMatches(rule: AccessRule, person: PersonInfo, door: string): boolean {
  const who =
    rule.persons.includes(person.id) ||
    rule.persons.includes(person.name) ||
    rule.groups.some((g) => person.groups.includes(g));
  return who && (rule.doors.includes('*') || rule.doors.includes(door));
}

/**
 * Decides whether a door opens for one multi-frame decision. Default deny: only a rule that
 * names the person (or a group of theirs) and the door, is valid now and whose schedule
 * admits the local time, grants. The checks run from the most basic to the most specific,
 * so the reason given is the first that refuses.
 */
export function decideAccess(q: AccessQuestion, policy: AccessPolicy): AccessDecision {
  const deny = (reason: DenialReason, detail: string): AccessDecision => ({ result: 'denied', reason, detail });
  if (q.alarm)
    return deny(
      q.alarm,
      `the door contact reports ${q.alarm === 'door forced' ? 'a forced door' : 'a door held open'}`,
    );
  if (q.faces > 1) return deny('several faces', `${q.faces} faces in view: one person at a time`);
  if (q.name === null) return deny('unknown', 'nobody enrolled matched');
  if (q.spoof) return deny('spoof suspected', 'the liveness check refused the face');
  const bar = policy.bar;
  if (!(q.score >= bar.minScore))
    return deny('low confidence', `score ${q.score.toFixed(3)} below access.open.minScore ${bar.minScore}`);
  if (q.margin === undefined || !(q.margin >= bar.minMargin))
    return deny(
      'low confidence',
      `margin over the second-best ${q.margin === undefined ? 'unknown' : q.margin.toFixed(3)} below access.open.minMargin ${bar.minMargin}`,
    );
  if (q.faceSize === undefined || !(q.faceSize >= bar.minFaceSize))
    return deny(
      'low confidence',
      `face ${q.faceSize === undefined ? 'size unknown' : `${Math.round(q.faceSize)} px`} below access.open.minFaceSize ${bar.minFaceSize}`,
    );
  const person = q.person ?? { id: q.name, name: q.name, groups: [], validFrom: null, validUntil: null };
  const local = localTime(q.time, policy.timeZone);
  const own = validityAt(q.time, local, person.validFrom, person.validUntil);
  if (own === 'after') return deny('expired', `${person.name}'s access ended ${person.validUntil}`);
  if (own === 'before') return deny('not allowed now', `${person.name}'s access starts ${person.validFrom}`);
  const rules = policy.rules.map((r, i) => ({ r, i })).filter(({ r }) => ruleMatches(r, person, q.door));
  if (rules.length === 0) return deny('not allowed now', `no rule lets ${person.name} through door ${q.door}`);
  let expired = 0;
  for (const { r, i } of rules) {
    const v = validityAt(q.time, local, r.validFrom, r.validUntil);
    if (v === 'after') {
      expired++;
      continue;
    }
    if (v === 'valid' && scheduleAdmits(r, local, policy.holidays))
      return { result: 'granted', reason: null, detail: ruleLabel(r, i) };
  }
  if (expired === rules.length) return deny('expired', `every rule for ${person.name} at door ${q.door} has ended`);
  const holiday = policy.holidays.includes(local.date) ? ', a holiday' : '';
  return deny(
    'not allowed now',
    `outside ${person.name}'s schedule (${local.weekday} ${local.date} ${String(Math.floor(local.minutes / 60)).padStart(2, '0')}:${String(local.minutes % 60).padStart(2, '0')} ${policy.timeZone}${holiday})`,
  );
}
