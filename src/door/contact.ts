/**
 * The door contact: forced-open and held-open alarms. An opening is authorised while the
 * door is released (a pulse) and for graceMs after it; a door that opens otherwise is
 * `door forced`; an authorised opening still open after heldOpenMs is `door held`. Closing
 * the door clears the alarm. Inputs (a GPIO line, an MQTT topic) only report open/closed.
 */
export type ContactAlarm = 'door forced' | 'door held';

export interface ContactOptions {
  readonly heldOpenMs: number;
  readonly graceMs: number;
}

export class ContactMonitor {
  private isOpen: boolean | null = null;
  private releasedUntil = -Infinity;
  private heldTimer: NodeJS.Timeout | undefined;
  private currentAlarm: ContactAlarm | null = null;

  constructor(
    private readonly o: ContactOptions,
    private readonly onChange: (s: { open: boolean | null; alarm: ContactAlarm | null }) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get open(): boolean | null {
    return this.isOpen;
  }
  get alarm(): ContactAlarm | null {
    return this.currentAlarm;
  }

  /** The door is released (unlocked) until `untilMs`. */
  released(untilMs: number): void {
    this.releasedUntil = Math.max(this.releasedUntil, untilMs);
  }

  contact(open: boolean): void {
    if (open === this.isOpen) return;
    const first = this.isOpen === null;
    this.isOpen = open;
    if (open) {
      // A door found open at start is not "forced": it is watched for being held open.
      const authorised = first || this.now() <= this.releasedUntil + this.o.graceMs;
      if (!authorised) this.currentAlarm = 'door forced';
      else {
        clearTimeout(this.heldTimer);
        this.heldTimer = setTimeout(() => {
          if (this.isOpen && this.currentAlarm === null) {
            this.currentAlarm = 'door held';
            this.emit();
          }
        }, this.o.heldOpenMs);
        this.heldTimer.unref();
      }
    } else {
      clearTimeout(this.heldTimer);
      this.currentAlarm = null;
    }
    this.emit();
  }

  private emit(): void {
    this.onChange({ open: this.isOpen, alarm: this.currentAlarm });
  }

  stop(): void {
    clearTimeout(this.heldTimer);
  }
}
