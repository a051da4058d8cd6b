import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accessRuleSchema,
  decideAccess,
  localTime,
  type AccessPolicy,
  type AccessQuestion,
  type AccessRuleInput,
  type PersonInfo,
} from '../../src/access/rules.js';
import { accessConfigSchema } from '../../src/access/config.js';

const bar = { minScore: 0.5, minMargin: 0.5, minFaceSize: 80 };

function policy(rules: AccessRuleInput[], o: Partial<AccessPolicy> = {}): AccessPolicy {
  return { timeZone: 'UTC', holidays: [], bar, rules: rules.map((r) => accessRuleSchema.parse(r)), ...o };
}

function ask(time: string, o: Partial<AccessQuestion> = {}): AccessQuestion {
  return {
    name: 'alice',
    score: 0.8,
    margin: 0.9,
    faceSize: 150,
    faces: 1,
    time: Date.parse(time),
    door: 'front',
    person: undefined,
    ...o,
  };
}

const staff: PersonInfo = { id: 'p-1', name: 'alice', groups: ['staff'], validFrom: null, validUntil: null };

test('default deny: no rules, nobody gets in', () => {
  const d = decideAccess(ask('2026-03-02T10:00:00Z'), policy([]));
  assert.deepEqual([d.result, d.reason], ['denied', 'not allowed now']);
  assert.match(d.detail, /no rule lets alice through door front/);
});

test('a person rule (by name or id) and a group rule grant; another door does not', () => {
  const p = policy([{ persons: ['alice'], doors: ['front'] }]);
  assert.equal(decideAccess(ask('2026-03-02T10:00:00Z'), p).result, 'granted');
  assert.equal(decideAccess(ask('2026-03-02T10:00:00Z', { door: 'back' }), p).result, 'denied');
  const byId = policy([{ persons: ['p-1'] }]);
  assert.equal(decideAccess(ask('2026-03-02T10:00:00Z', { person: staff }), byId).result, 'granted');
  const byGroup = policy([{ name: 'staff days', groups: ['staff'], doors: ['*'] }]);
  const g = decideAccess(ask('2026-03-02T10:00:00Z', { person: staff }), byGroup);
  assert.deepEqual([g.result, g.detail], ['granted', 'staff days']);
  // A model class name without a gallery entry has no groups.
  assert.equal(decideAccess(ask('2026-03-02T10:00:00Z'), byGroup).reason, 'not allowed now');
});

test('reasons, first that refuses: alarm, several faces, unknown, spoof, low confidence', () => {
  const p = policy([{ persons: ['alice'] }]);
  const t = '2026-03-02T10:00:00Z';
  assert.equal(decideAccess(ask(t, { alarm: 'door forced' }), p).reason, 'door forced');
  assert.equal(decideAccess(ask(t, { alarm: 'door held' }), p).reason, 'door held');
  assert.equal(decideAccess(ask(t, { faces: 2 }), p).reason, 'several faces');
  assert.equal(decideAccess(ask(t, { name: null }), p).reason, 'unknown');
  assert.equal(decideAccess(ask(t, { spoof: true }), p).reason, 'spoof suspected');
  const low = decideAccess(ask(t, { margin: 0.2 }), p);
  assert.deepEqual([low.reason, /minMargin 0.5/.test(low.detail)], ['low confidence', true]);
  assert.equal(decideAccess(ask(t, { margin: undefined }), p).reason, 'low confidence');
  assert.equal(decideAccess(ask(t, { score: 0.49 }), p).reason, 'low confidence');
  assert.equal(decideAccess(ask(t, { faceSize: 60 }), p).reason, 'low confidence');
  assert.equal(decideAccess(ask(t, { faceSize: undefined }), p).reason, 'low confidence');
  assert.equal(decideAccess(ask(t, { margin: 0.5, score: 0.5, faceSize: 80 }), p).result, 'granted');
});

test('validity: person and rule, date-only bounds are whole local days, date-times are instants', () => {
  const tz = 'Europe/Berlin';
  const p = policy([{ persons: ['alice'], validUntil: '2026-06-30' }], { timeZone: tz });
  // 23:30 in Berlin on June 30 (21:30 UTC) is still the last day.
  assert.equal(decideAccess(ask('2026-06-30T21:30:00Z'), p).result, 'granted');
  // 00:30 in Berlin on July 1 (22:30 UTC June 30) is past it.
  const late = decideAccess(ask('2026-06-30T22:30:00Z'), p);
  assert.deepEqual([late.result, late.reason], ['denied', 'expired']);
  const notYet = policy([{ persons: ['alice'], validFrom: '2026-07-01T08:00:00+02:00' }], { timeZone: tz });
  assert.equal(decideAccess(ask('2026-07-01T05:59:00Z'), notYet).reason, 'not allowed now');
  assert.equal(decideAccess(ask('2026-07-01T06:00:00Z'), notYet).result, 'granted');
  const everyone = policy([{ groups: ['staff'] }]);
  const gone = decideAccess(ask('2026-03-02T10:00:00Z', { person: { ...staff, validUntil: '2026-03-01' } }), everyone);
  assert.deepEqual([gone.reason, /access ended 2026-03-01/.test(gone.detail)], ['expired', true]);
  const early = decideAccess(ask('2026-03-02T10:00:00Z', { person: { ...staff, validFrom: '2026-03-03' } }), everyone);
  assert.equal(early.reason, 'not allowed now');
  // One expired rule and one live rule: the live one decides.
  const mixed = policy([
    { persons: ['alice'], validUntil: '2026-01-01' },
    { persons: ['alice'], days: ['mon'] },
  ]);
  assert.equal(decideAccess(ask('2026-03-02T10:00:00Z'), mixed).result, 'granted'); // a Monday
  assert.equal(decideAccess(ask('2026-03-03T10:00:00Z'), mixed).reason, 'not allowed now');
});

test('weekdays and hours are read in the kiosk time zone', () => {
  const rules = [
    { persons: ['alice'], days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, hours: [{ from: '08:00', to: '18:00' }] },
  ];
  const p = policy(
    rules.map((r) => ({ ...r, days: [...r.days] })),
    { timeZone: 'Pacific/Auckland' },
  );
  // 2026-03-01 is a Sunday in UTC; 21:00 UTC Sunday is 10:00 Monday in Auckland (NZDT, +13).
  assert.equal(decideAccess(ask('2026-03-01T21:00:00Z'), p).result, 'granted');
  // 05:30 UTC Friday = 18:30 Friday in Auckland: after hours.
  const after = decideAccess(ask('2026-03-06T05:30:00Z'), p);
  assert.deepEqual(
    [after.reason, /fri 2026-03-06 18:30 Pacific\/Auckland/.test(after.detail)],
    ['not allowed now', true],
  );
  // 18:00 is exclusive, 17:59 inclusive.
  assert.equal(decideAccess(ask('2026-03-06T04:59:00Z'), p).result, 'granted');
  assert.equal(decideAccess(ask('2026-03-06T05:00:00Z'), p).result, 'denied');
  // Saturday in Auckland although Friday in UTC.
  assert.equal(decideAccess(ask('2026-03-06T20:00:00Z'), p).result, 'denied');
});

test('DST: the schedule follows the wall clock across both changes (Europe/Berlin, America/New_York)', () => {
  const p = policy([{ persons: ['alice'], hours: [{ from: '08:00', to: '09:00' }] }], { timeZone: 'Europe/Berlin' });
  // Saturday 2026-03-28: CET (+1), 08:30 local = 07:30 UTC.
  assert.equal(decideAccess(ask('2026-03-28T07:30:00Z'), p).result, 'granted');
  assert.equal(decideAccess(ask('2026-03-28T06:30:00Z'), p).result, 'denied');
  // Sunday 2026-03-29 after the spring change: CEST (+2), 08:30 local = 06:30 UTC.
  assert.equal(decideAccess(ask('2026-03-29T06:30:00Z'), p).result, 'granted');
  assert.equal(decideAccess(ask('2026-03-29T07:30:00Z'), p).result, 'denied');
  // The skipped hour: 01:59:59 CET is followed by 03:00 CEST.
  assert.equal(localTime(Date.parse('2026-03-29T00:59:00Z'), 'Europe/Berlin').minutes, 1 * 60 + 59);
  assert.equal(localTime(Date.parse('2026-03-29T01:00:00Z'), 'Europe/Berlin').minutes, 3 * 60);
  // New York, fall back on 2026-11-01: 01:30 happens twice; a 01:00-02:00 window admits both.
  const ny = policy([{ persons: ['alice'], hours: [{ from: '01:00', to: '02:00' }] }], {
    timeZone: 'America/New_York',
  });
  assert.equal(decideAccess(ask('2026-11-01T05:30:00Z'), ny).result, 'granted'); // 01:30 EDT
  assert.equal(decideAccess(ask('2026-11-01T06:30:00Z'), ny).result, 'granted'); // 01:30 EST
  assert.equal(decideAccess(ask('2026-11-01T07:30:00Z'), ny).result, 'denied'); // 02:30 EST
});

test('a window past midnight belongs to the day it starts on', () => {
  const p = policy([{ persons: ['alice'], days: ['fri'], hours: [{ from: '22:00', to: '06:00' }] }]);
  assert.equal(decideAccess(ask('2026-03-06T23:00:00Z'), p).result, 'granted'); // Fri 23:00
  assert.equal(decideAccess(ask('2026-03-07T05:59:00Z'), p).result, 'granted'); // Sat 05:59, Friday's night
  assert.equal(decideAccess(ask('2026-03-07T06:00:00Z'), p).result, 'denied');
  assert.equal(decideAccess(ask('2026-03-07T23:00:00Z'), p).result, 'denied'); // Sat 23:00
  assert.equal(decideAccess(ask('2026-03-06T05:00:00Z'), p).result, 'denied'); // Fri 05:00 is Thursday's night
});

test('holidays (local dates) close rules unless the rule says holidays: true', () => {
  const rules: AccessRuleInput[] = [
    { persons: ['alice'], name: 'office' },
    { persons: ['bob'], name: 'security', holidays: true },
  ];
  const p = policy(rules, { timeZone: 'America/Los_Angeles', holidays: ['2026-12-25'] });
  // 2026-12-26T05:00Z is still Dec 25 in Los Angeles.
  const a = decideAccess(ask('2026-12-26T05:00:00Z'), p);
  assert.deepEqual([a.reason, /a holiday/.test(a.detail)], ['not allowed now', true]);
  assert.equal(decideAccess(ask('2026-12-26T05:00:00Z', { name: 'bob' }), p).result, 'granted');
  assert.equal(decideAccess(ask('2026-12-26T09:00:00Z'), p).result, 'granted'); // Dec 26 01:00 local
});

test('config: rules are validated with messages that say what to write', () => {
  assert.throws(() => accessRuleSchema.parse({ doors: ['front'] }), /at least one person or group/);
  assert.throws(() => accessRuleSchema.parse({ persons: ['a'], days: ['monday'] }), /mon/);
  assert.throws(() => accessRuleSchema.parse({ persons: ['a'], hours: [{ from: '8:00', to: '18:00' }] }), /HH:MM/);
  assert.throws(() => accessRuleSchema.parse({ persons: ['a'], validUntil: '2026-02-30' }), /YYYY-MM-DD/);
  assert.throws(() => accessRuleSchema.parse({ persons: ['a'], validUntil: '2026-02-01T08:00' }), /offset/);
  assert.throws(() => accessConfigSchema.parse({ timeZone: 'Mars/Olympus' }), /IANA/);
  const c = accessConfigSchema.parse({});
  assert.deepEqual([c.enabled, c.rules, c.timeZone], [false, [], 'UTC']);
});
